"""The plan: everything decided before any pixel is processed, shared by the eager and the lazy
path (the model, read once into :class:`NetFacts`; its device and precision, resolved once;
layout, channel groups, tile, overlap and intensity range), from the input and one
:class:`~napari_srn.inference.options.DeblurOptions`."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..model.srn import SRN
from ..model.weights import load_model, resolve_device
from ..tiling import fitting_tile, padded_size, tile_step, tiles_to_try
from .intensity import IntensityRange, intensity_range
from .memory import last_level_cache_bytes, memory_limits
from .options import DeblurOptions, ModelLike
from .precision import Precision, resolve_precision
from .validate import GuessedAxis, MaybeLazy, normalize_channel_axis

__all__ = [
    "MAX_TILES",
    "ModelLike",
    "NetFacts",
    "Plan",
    "auto_tile_size",
    "channel_groups",
    "check_overlap",
    "check_tile_count",
    "check_tile_fits",
    "check_tile_size",
    "layout",
    "make_plan",
    "resolve_model",
    "unlayout",
]

#: Peak memory growth of a single-tile float32 deblur, in bytes per pixel per unit of network
#: width: 30.5 measured by ``benchmarks/bench_deblur.py --calibrate`` on the CPU (976 bytes/pixel
#: for width 32; 29.2 for width 16), rounded up; docs/performance.md.
BYTES_PER_PIXEL_PER_WIDTH = 32.0
#: The same under bfloat16 autocast, as a fraction of float32: 21.9 / 29.2 bytes/pixel/width
#: measured (width 16, 2-core EPYC): the model's float32 inputs, outputs and ConvLSTM state stay.
HALF_PRECISION_MEMORY = 0.75
#: Largest automatic tile on the CPU: a 1024-pixel tile takes a few seconds on 2 cores with the
#: default model, which keeps progress and Cancel responsive.
CPU_TILE_CAP = 1024
#: On the CPU the network is memory-bound: a tile whose activations (width x side^2 x bytes)
#: outgrow the last-level cache by more than this factor runs slower per pixel (measured on a
#: 2-core Xeon with 48 MiB L3, float32: 1024-pixel tiles 0.31-0.34 MP/s, 768-896 0.43-0.53
#: MP/s; docs/performance.md), so the automatic tile stays within it, down to CPU_TILE_MIN.
CACHE_FACTOR = 1.25
CPU_TILE_MIN = 512
GPU_TILE_CAP = 4096
#: The most tiles (frames x channel groups x rows x columns) a lazy run may have: each is
#: dozens of dask tasks (43 for a 3-scale SRN), and 10,000 tiles took 21 s and 0.4 GB to set
#: up on 2 cores, so this many take minutes and over 1 GB before the first tile is computed.
#: A 100,000 x 100,000 image in 1024-pixel tiles is 9,604 tiles.
MAX_TILES = 1 << 15


@dataclass(frozen=True)
class NetFacts:
    """What the pipeline needs to know about a network, read from it once: an
    :class:`~napari_srn.SRN`, or any module that declares ``divisor`` and ``halo`` (a plain
    network, run once on the whole frame)."""

    divisor: int = 1
    halo: int = 0
    width: int = 32  # what memory scales with (an unknown module counts as width 32)
    in_channels: int | None = None  # None: takes any number
    scales: int | None = None  # an SRN's levels; None for a plain network
    lstm: bool = False

    @classmethod
    def of(cls, net: torch.nn.Module) -> NetFacts:
        config = getattr(net, "config", None)
        scales = net.config.scales if isinstance(net, SRN) else None
        return cls(
            divisor=int(getattr(net, "divisor", 1)),
            halo=int(getattr(net, "halo", 0)),
            width=int(getattr(config, "width", 32)),
            in_channels=getattr(net, "in_channels", None),
            scales=None if scales is None else int(scales),
            lstm=getattr(net, "lstm", None) is not None,
        )

    @property
    def step(self) -> int:
        """What a tile must be a multiple of."""
        return tile_step(self.divisor)


def as_model(
    model: ModelLike, device: str | torch.device | None
) -> tuple[torch.nn.Module, torch.device]:
    """The network in eval mode and its device (a module given without a device stays where
    it is)."""
    if isinstance(model, torch.nn.Module):
        if device is None:
            param = next(model.parameters(), None)
            dev = param.device if param is not None else torch.device("cpu")
        else:
            dev = resolve_device(device)
            model = model.to(dev)
        return model.eval(), dev
    dev = resolve_device(device)  # a name or path: DeblurOptions checked the type
    return load_model(model, device=dev), dev


def resolve_model(options: DeblurOptions) -> tuple[torch.nn.Module, torch.device, Precision]:
    """The network (loaded, in eval mode), its device and the precision it runs in, as
    :func:`make_plan` resolves them for ``options``: what a run will use and record."""
    net, dev = as_model(options.model, options.device)
    return net, dev, resolve_precision(options.precision, dev)


def _bytes_per_pixel(net: NetFacts, batch: int, policy: Precision) -> float:
    """Peak memory of one tile per pixel of its padded window (the calibrated model above)."""
    per_px = BYTES_PER_PIXEL_PER_WIDTH * net.width * batch
    return per_px * HALF_PRECISION_MEMORY if policy.activation_bytes == 2 else per_px


def _memory_budget(device: torch.device) -> tuple[float, str]:
    """Bytes a deblur may use on ``device``, and where that figure comes from."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free), f"free on {device}"
    limits = memory_limits()  # RAM, cgroup, ulimit -v and -d: the tightest holds
    where = min(limits, key=lambda name: limits[name])
    return float(limits[where]), where


def _cpu_cap(net: NetFacts, policy: Precision) -> int:
    """:data:`CPU_TILE_CAP`, lowered (to multiples of 128, not below :data:`CPU_TILE_MIN`) so
    that one activation of the tile fits in :data:`CACHE_FACTOR` times the last-level cache."""
    cache = last_level_cache_bytes()
    if cache is None:
        return CPU_TILE_CAP
    side = math.sqrt(CACHE_FACTOR * cache / (net.width * policy.activation_bytes))
    return int(max(CPU_TILE_MIN, min(CPU_TILE_CAP, side // 128 * 128)))


def auto_tile_size(
    model: torch.nn.Module,
    device: torch.device,
    batch: int = 1,
    *,
    precision: str | Precision = "auto",
) -> int:
    """Largest tile (core side, a multiple of the model's divisor) that fits in free memory.

    Uses half of the memory available to this process on the CPU (RAM, lowered to a cgroup's
    limit in containers and batch jobs and to what ``ulimit -v`` and ``ulimit -d`` leave;
    capped at :data:`CPU_TILE_CAP` so progress and cancellation stay responsive, and lower
    where the tile's activations would outgrow the last-level cache, see
    :data:`CACHE_FACTOR`) and 80 % of free GPU memory on CUDA, capped at
    :data:`GPU_TILE_CAP`; under half precision a pixel takes :data:`HALF_PRECISION_MEMORY` of
    its float32 bytes.

    Parameters
    ----------
    model : torch.nn.Module
        The network (an :class:`~napari_srn.SRN`'s width, divisor and halo are used).
    device : torch.device
        Where it runs.
    batch : int, optional
        Images per model call (3 when a gray image goes through a color model).
    precision : str or Precision, optional
        As for :func:`napari_srn.deblur`.

    Returns
    -------
    int
        The tile side in pixels.
    """
    return _auto_tile(NetFacts.of(model), batch, resolve_precision(precision, device))


def _auto_tile(net: NetFacts, batch: int, policy: Precision) -> int:
    """:func:`auto_tile_size` for a network's facts and a resolved precision."""
    per_px = _bytes_per_pixel(net, batch, policy)
    budget, _ = _memory_budget(policy.device)
    budget, cap = (
        (0.8 * budget, GPU_TILE_CAP)
        if policy.device.type == "cuda"
        else (0.5 * budget, _cpu_cap(net, policy))
    )
    side = int(math.sqrt(budget / per_px)) - 2 * net.halo
    step = net.step
    return max(step * 4, min(cap, side // step * step))


def check_tile_fits(
    net: NetFacts, tile: int, frame: tuple[int, int], batch: int, policy: Precision
) -> None:
    """Refuse, before any work, an explicit tile whose window cannot fit in memory (it would
    fail minutes later with an allocator error, or be killed without a word)."""
    halo = net.halo
    h, w = (min(tile + 2 * halo, n + 2 * halo) for n in frame)
    per_px = _bytes_per_pixel(net, batch, policy)
    need = per_px * h * w
    budget, where = _memory_budget(policy.device)
    if need <= budget:
        return
    step = net.step
    fits = (int(math.sqrt(0.5 * budget / per_px)) - 2 * halo) // step * step
    hint = f"use tile_size={fits} or less" if fits >= step else "use a smaller model or a GPU"
    raise ValueError(
        f"tile_size={tile} needs about {need / 1e9:.1f} GB per tile on {policy.device} but "
        f"only {budget / 1e9:.1f} GB are {where}; {hint}, or leave tile_size unset to choose it "
        "automatically"
    )


def check_tile_size(tile_size: int | None, step: int) -> int | None:
    """Check ``tile_size`` (an int or None, see :class:`DeblurOptions`) against the model:
    tiles are multiples of ``step`` (:func:`~napari_srn.tiling.tile_step`); None means
    automatic."""
    if tile_size is None:
        return None
    fixes = tiles_to_try(tile_size, step)
    if fixes:
        raise ValueError(
            f"tile_size must be a positive multiple of {step}, got {tile_size}. "
            f"Try {' or '.join(map(str, fixes))}, or None to choose from free memory"
        )
    return int(tile_size)


def check_overlap(overlap: int | None, default: int) -> int:
    """The halo per tile side: ``overlap`` (checked by :class:`DeblurOptions`) rounded up to a
    multiple of 8, as the level-by-level tilers need; None means the model's halo."""
    if overlap is None:
        return default
    return int(-(-overlap // 8) * 8)


def _decide_tile(
    net: NetFacts,
    policy: Precision,
    tile: int | None,
    shape: tuple[int, ...],
    groups: int,
    halo: int,
    batch: int,
    lazy: bool,
) -> int:
    """The tile: the caller's (checked against memory) or the automatic one; for a lazy plan,
    at most :data:`MAX_TILES` of them (before any per-tile list is made), with cores large
    enough for the context their neighbours read."""
    explicit = tile is not None
    if tile is None:
        tile = _auto_tile(net, batch, policy)
    if lazy:
        check_tile_count(shape, tile, groups)
        tile = _lazy_tile(net, shape, tile, halo, explicit)
    if explicit:
        check_tile_fits(net, tile, (shape[-2], shape[-1]), batch, policy)
    return tile


def _lazy_tile(net: NetFacts, shape: tuple[int, ...], tile: int, halo: int, explicit: bool) -> int:
    """``tile``, raised where the dask graph needs larger cores (with a warning if it was the
    caller's)."""
    if net.scales is None:  # a plain network: its chunks only need the overlap
        return tile
    frame = padded_size(shape, net.divisor)
    fits = fitting_tile(frame, tile, halo, scales=net.scales, lstm=net.lstm, divisor=net.divisor)
    if explicit and fits != tile:
        warnings.warn(
            f"tile_size={tile} is too small for an overlap of {halo} pixels on a dask or "
            f"zarr input (each tile must hold the context its neighbours read); using "
            f"tile_size={fits}. Pass tile_size={fits} or more (or a smaller overlap) to "
            "silence this",
            UserWarning,
            stacklevel=6,
        )
    return fits


def check_tile_count(shape: tuple[int, ...], tile: int, groups: int) -> None:
    """Refuse (ValueError) a lazy run of more than :data:`MAX_TILES` tiles: ``shape`` is the
    input's ``(..., C, H, W)`` layout, each frame and channel group tiled in ``tile``-pixel
    cores. From the shape alone (Python integers), before a per-tile list is made."""
    frames = math.prod(shape[:-3])
    rows, cols = (-(-n // tile) for n in shape[-2:])
    total = frames * groups * rows * cols
    if total > MAX_TILES:
        dims = " x ".join(str(n) for n in shape[-2:])
        raise ValueError(
            f"{dims} pixels in tiles of {tile} make {total:,} tiles ({frames:,} frame(s), "
            f"{groups} channel group(s)); napari-srn takes at most {MAX_TILES:,} tiles in one "
            "lazy run (each is dozens of dask tasks to set up). Deblur a part of the array at "
            "a time (a slice of the dask array), or use a larger tile_size"
        )


def channel_groups(
    n_channels: int, model_channels: int | None, channel_axis: int | None
) -> list[slice]:
    """Which channels go through the model together (alpha excluded by the caller)."""
    if model_channels is None or model_channels == n_channels:
        return [slice(0, n_channels)]
    if model_channels == 1:
        return [slice(i, i + 1) for i in range(n_channels)]
    if model_channels == 3 and n_channels == 1:
        return [slice(0, 1)]
    raise ValueError(
        f"a {model_channels}-channel model cannot take {n_channels} channels "
        f"(channel_axis={channel_axis}); use a gray model, which deblurs each channel "
        "separately, or select 1, 3 (RGB) or 4 (RGBA) channels"
    )


def layout(a: Any, cax: int | None) -> Any:
    """View of ``a`` as ``(..., C, H, W)`` (numpy or dask)."""
    if cax is None:
        return a[..., None, :, :]
    return np.moveaxis(np.moveaxis(a, cax, -1), -1, -3)


def unlayout(a: Any, cax: int | None) -> Any:
    """Inverse of :func:`layout`."""
    if cax is None:
        return a[..., 0, :, :]
    return np.moveaxis(np.moveaxis(a, -3, -1), -1, cax)


@dataclass
class Plan:
    """Everything decided before any pixel is processed (shared by the eager and lazy paths)."""

    options: DeblurOptions  # as the caller gave them
    net: torch.nn.Module
    facts: NetFacts
    precision: Precision  # resolved once, on the plan's device: what every tile runs
    cax: int | None
    tile: int
    halo: int
    src: Any  # (..., C, H, W) view of the input
    color: Any  # its color channels (alpha excluded)
    alpha: bool
    groups: list[slice]
    intensity: IntensityRange

    @property
    def device(self) -> torch.device:
        return self.precision.device

    @property
    def divisor(self) -> int:
        return self.facts.divisor

    @property
    def replicate(self) -> bool:
        """A color model on a one-channel group: replicate to RGB, average back."""
        return self.facts.in_channels == 3 and self.color.shape[-3] == 1

    @property
    def padded(self) -> tuple[int, int]:
        """Frame size padded to the model's divisor."""
        return padded_size(self.src.shape, self.divisor)


def make_plan(
    arr: MaybeLazy,
    options: DeblurOptions,
    *,
    lazy: bool = False,
    alpha: bool | None = None,
) -> Plan:
    """Check ``options`` against ``arr`` (numpy or dask) and decide everything.

    ``lazy``: the plan is for the dask graph, whose tile cores must be large enough for the
    context their neighbours read; a smaller tile (which the in-memory path takes) is raised
    to the smallest that works, with a warning. ``alpha``: the last channel is transparency,
    copied through (an image file says so); None: with 4 channels (RGBA), or 2 when the
    channel axis was guessed (gray+alpha)."""
    cax = normalize_channel_axis(arr, options.channel_axis)
    net, _, policy = resolve_model(options)
    facts = NetFacts.of(net)
    tile = check_tile_size(options.tile_size, facts.step)
    halo = check_overlap(options.overlap, facts.halo)
    src = layout(arr, cax)
    n = src.shape[-3]
    if alpha is None:  # RGBA, or a guessed gray+alpha
        alpha = n == 4 or (n == 2 and isinstance(cax, GuessedAxis))
    color = src[..., : n - 1, :, :] if alpha else src
    groups = channel_groups(color.shape[-3], facts.in_channels, cax)
    batch = 3 if facts.in_channels == 3 and color.shape[-3] == 1 else 1
    tile = _decide_tile(facts, policy, tile, src.shape, len(groups), halo, batch, lazy)
    # after the tile count: a pass over all the data
    intensity = intensity_range(color, options.in_range)
    return Plan(options, net, facts, policy, cax, tile, halo, src, color, alpha, groups, intensity)
