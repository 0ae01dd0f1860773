"""Lazy deblurring: the level-by-level tiler of :mod:`.eager` as a dask graph.

For an SRN, each level's prediction is a dask array whose chunks are exactly the tile cores the
eager runner uses (``level_tiles``); one ``map_overlap`` per level reads each core with its halo
from three inputs: the frame resized to the level, the next coarser prediction (upsampled inside
the task, with one extra pixel of context) and, for the ConvLSTM variant, its state. Computing one
region of the result therefore runs the network only on the tiles (of every level) that region
depends on, and the result equals the eager path's to float rounding.

The model never travels inside the tasks: a model loaded from a file is named by a
:class:`ModelRef` and loaded once per process (per dask worker) on that worker's own device; a
model object given in memory is put in the graph once, as a single dependency. Every task runs
the precision the plan resolved, on its own device (:meth:`.precision.Precision.on`), so a
store records what ran.

What happens to each coarse level is the *sink*'s choice (:class:`Sink`): kept in the graph
(:func:`deblur_lazy` without a sink, the in-memory result of :func:`napari_srn.deblur`), or
written to disk and read back so that memory stays bounded by the tiles
(:class:`napari_srn.io.ome_zarr.OmeZarrSink`).
"""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import dask
import dask.array as da
import numpy as np
import torch
from torch.nn import functional as F

from ..model.srn import SRN, downscale
from ..tiling import generic_chunks, level_chunks, window_pad
from .plan import NetFacts, Plan, unlayout
from .precision import Precision

__all__ = [
    "ModelRef",
    "Sink",
    "deblur_lazy",
    "lazy_predict",
    "level_graph",
    "split_level",
]


class Sink(Protocol):
    """Where the coarse levels of a lazy SRN go: ``level(tag, out)`` receives each coarse
    level's raw output (``tag`` names the channel group and level, e.g. ``"g0-level2"``) and
    returns the array the next level reads instead."""

    def level(self, tag: str, out: da.Array) -> da.Array: ...


@dataclass(frozen=True)
class ModelRef:
    """A model named by its file, loaded once per process on ``device`` (None: CUDA if there)."""

    name_or_path: str
    sha256: str
    device: str | None

    def load(self) -> tuple[torch.nn.Module, torch.device]:
        return _load_ref(self.name_or_path, self.sha256, self.device)

    @classmethod
    def of(cls, net: torch.nn.Module, device: str | None) -> ModelRef:
        """The reference of a model loaded by :func:`napari_srn.load_model`."""
        return cls(str(net.source), str(net.sha256), device)


#: The model a task receives: a :class:`ModelRef`, or the ``(module, device)`` of the graph node
#: that :func:`_model_node` made for a module given in memory.
TaskModel = ModelRef | tuple[torch.nn.Module, torch.device]


@functools.lru_cache(maxsize=4)
def _load_ref(name_or_path: str, sha256: str, device: str | None) -> tuple[SRN, torch.device]:
    from ..model.weights import load_model

    model = load_model(name_or_path, device=device)
    if model.sha256 != sha256:
        raise ValueError(
            f"weights file {name_or_path!r} changed after the computation was set up "
            f"(SHA-256 {model.sha256}, expected {sha256})"
        )
    return model, next(model.parameters()).device


def _resolve(model: TaskModel, policy: Precision) -> tuple[torch.nn.Module, Precision]:
    """The task's network and the plan's precision on the network's device."""
    net, dev = model.load() if isinstance(model, ModelRef) else model
    return net, policy.on(dev)


def _margins(block_info: dict, depth: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Context actually present before/after a block on each spatial axis (none at borders)."""
    loc, num = block_info["chunk-location"][-2:], block_info["num-chunks"][-2:]
    return tuple(  # type: ignore[return-value]
        (depth if i > 0 else 0, depth if i < n - 1 else 0) for i, n in zip(loc, num, strict=True)
    )


def _upsampled(window: np.ndarray, margin: tuple, target: tuple, size: tuple) -> torch.Tensor:
    """Upsample a coarser window 2x and cut the part aligned with a finer window.

    ``margin`` is the coarser window's context before each axis, ``target`` the finer window's,
    ``size`` the finer window's size.
    """
    t = torch.from_numpy(np.ascontiguousarray(window))[None]
    up = F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
    r0, c0 = 2 * margin[0] - target[0], 2 * margin[1] - target[1]
    return up[..., r0 : r0 + size[0], c0 : c0 + size[1]]


def _level_block(
    xs: np.ndarray,
    *coarser: np.ndarray,
    model: TaskModel,
    policy: Precision,
    halo: int,
    channels: int,
    has_prev: bool,
    lstm: bool,
    block_info: Any = None,
) -> np.ndarray:
    """One tile of one level for every frame in the block; see the module docstring."""
    net, p = _resolve(model, policy)
    assert isinstance(net, SRN)
    m = _margins(block_info[0], halo)
    core = tuple(n * (4 if lstm else 1) for n in block_info[None]["chunk-shape"][-2:])
    h, w = xs.shape[-2:]
    lead = xs.shape[:-3]
    if lstm:  # output packed at a quarter of the level: 16 * C prediction + 2 * K state channels
        out = np.empty((*lead, *block_info[None]["chunk-shape"][-3:]), np.float32)
    else:
        out = np.empty((*lead, channels, *core), np.float32)
    prev_src = coarser[0] if has_prev else None
    state_src = coarser[1] if has_prev and lstm else None
    if has_prev:
        pm_axes = _margins(block_info[1], halo // 2 + 1)
        pm = (pm_axes[0][0], pm_axes[1][0])
    with torch.inference_mode(), p.autocast():
        for idx in np.ndindex(*lead):
            x = p.to_device(xs[idx])
            if prev_src is None:
                prev = x
            else:
                prev = p.tensor(_upsampled(prev_src[idx], pm, (m[0][0], m[1][0]), (h, w)))
            state = None
            if state_src is not None:
                sm = _margins(block_info[2], halo // 8 + 1)
                st = _upsampled(
                    state_src[idx],
                    (sm[0][0], sm[1][0]),
                    (m[0][0] // 4, m[1][0] // 4),
                    (h // 4, w // 4),
                )
                c, hh = torch.chunk(st, 2, dim=1)
                state = (p.tensor(c), p.tensor(hh))
            y, state = net.level(x, prev, state)
            y = y.float()[..., m[0][0] : m[0][0] + core[0], m[1][0] : m[1][0] + core[1]]
            if lstm:
                assert state is not None
                q0, q1 = m[0][0] // 4, m[1][0] // 4
                st = torch.cat(state, dim=1).float()
                st = st[..., q0 : q0 + core[0] // 4, q1 : q1 + core[1] // 4]
                y = torch.cat([F.pixel_unshuffle(y, 4), st], dim=1)
            out[idx] = y[0].cpu().numpy()
    return out


def _downsample_block(block: np.ndarray, factor: int, pyramid: str) -> np.ndarray:
    """1/factor resize (:func:`~napari_srn.model.srn.downscale`) of a block whose sides are
    multiples of ``factor``; equal to the same resize of the whole image, since each output
    pixel reads only its own factor x factor cell (for ``"bilinear"`` as for ``"area"``)."""
    if factor == 1:
        return block
    t = torch.from_numpy(np.ascontiguousarray(block))
    shape = t.shape
    t = t.reshape(-1, *shape[-3:])
    size = (shape[-2] // factor, shape[-1] // factor)
    out = downscale(t, size, pyramid)
    return out.reshape(*shape[:-2], *size).numpy()


def _unpack_prediction(block: np.ndarray, channels: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(block[..., : 16 * channels, :, :]))
    shape = t.shape
    y = F.pixel_shuffle(t.reshape(-1, *shape[-3:]), 4)
    return y.reshape(*shape[:-3], *y.shape[-3:]).numpy()


def _spatial_depth(chunks: tuple[tuple[int, ...], ...], depth: int) -> dict[int, int]:
    """Overlap on the spatial axes that have neighbours (a single chunk has none)."""
    ndim = len(chunks)
    return {i: (depth if i >= ndim - 2 and len(chunks[i]) > 1 else 0) for i in range(ndim)}


def _check_chunks(chunks: tuple[tuple[int, ...], ...], need: int, what: str) -> None:
    for axis in chunks[-2:]:
        if len(axis) > 1 and min(axis) < need:
            raise ValueError(
                f"tiles of {min(axis)} pixels are smaller than the {need} pixels of context that "
                f"{what} needs from each neighbour; use a larger tile_size or a smaller overlap"
            )


def _model_node(
    model: ModelRef | torch.nn.Module, device: torch.device | None
) -> tuple[torch.nn.Module, object]:
    """(network, what the tasks receive): a ModelRef as is, or the module as one graph node."""
    if isinstance(model, ModelRef):
        return model.load()[0], model
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    # one graph node holding the model: sent once to each worker, not with every task
    name = f"napari-srn-model-{uuid.uuid4().hex}"  # unique: never shared with another graph
    return model, dask.delayed((model, device), pure=True, name=name)


def lazy_predict(
    x: da.Array,
    model: ModelRef | torch.nn.Module,
    *,
    tile: int | None,
    halo: int,
    policy: Precision | None = None,
    sink: Sink | None = None,
    tag: str = "g0",
) -> da.Array:
    """Lazy prediction for ``x``: float32 ``(..., C, H, W)`` in [0, 1], H and W multiples of the
    model's divisor. Returns a float32 dask array of the same shape whose spatial chunks are the
    tile cores of the finest level.

    ``policy``: the precision every task runs (default: the float32 reference on the CPU),
    moved to the task's device. ``sink.level(f"{tag}-level{s}", out)``, if a sink is given,
    receives each coarse level's raw output (s >= 1) and returns the array to use in its place.
    """
    policy = Precision.reference() if policy is None else policy
    net, node = _model_node(model, policy.device)
    if not isinstance(net, SRN):
        return _lazy_generic(x, net, node, tile=tile, halo=halo, policy=policy)
    pred = state = None
    for s in reversed(range(net.config.scales)):
        out = level_graph(x, s, pred, state, net, node, tile=tile, halo=halo, policy=policy)
        if sink is not None and s > 0:
            out = sink.level(f"{tag}-level{s}", out)
        pred, state = split_level(out, net, tile)
    assert pred is not None
    return pred


def level_graph(
    x: da.Array,
    s: int,
    pred: da.Array | None,
    state: da.Array | None,
    net: SRN,
    node: object,
    *,
    tile: int | None,
    halo: int,
    policy: Precision,
) -> da.Array:
    """The raw output of level ``s`` (for the ConvLSTM variant, packed at a quarter of the
    level with its state; see :func:`split_level`)."""
    cfg = net.config
    lstm = net.lstm is not None
    ndim = x.ndim
    height, width = x.shape[-2:]
    lead_chunks = tuple((1,) * n for n in x.shape[:-3])
    size = (height >> s, width >> s)
    cores = (level_chunks(size[0], tile, halo), level_chunks(size[1], tile, halo))
    full = tuple(tuple(c << s for c in axis) for axis in cores)
    src = x.rechunk((*lead_chunks, x.shape[-3], *full))
    xs = src.map_blocks(
        _downsample_block, 1 << s, cfg.pyramid, chunks=(*src.chunks[:-2], *cores), dtype=np.float32
    )
    _check_chunks(xs.chunks, halo, "the overlap")
    args, depths = [xs], [_spatial_depth(xs.chunks, halo)]
    if pred is not None:
        half = tuple(tuple(c // 2 for c in axis) for axis in cores)
        args.append(pred.rechunk((*pred.chunks[:-2], *half)))
        depths.append(_spatial_depth(args[-1].chunks, halo // 2 + 1))
        _check_chunks(args[-1].chunks, halo // 2 + 1, "upsampling the coarser level")
        if lstm:
            assert state is not None
            eighth = tuple(tuple(c // 8 for c in axis) for axis in cores)
            args.append(state.rechunk((*state.chunks[:-2], *eighth)))
            depths.append(_spatial_depth(args[-1].chunks, halo // 8 + 1))
            _check_chunks(args[-1].chunks, halo // 8 + 1, "upsampling the ConvLSTM state")
    if lstm:
        k = 2 * net.lstm.channels  # type: ignore[union-attr]
        quarter = tuple(tuple(c // 4 for c in axis) for axis in cores)
        out_chunks = (*lead_chunks, (16 * cfg.channels + k,), *quarter)
    else:
        out_chunks = (*lead_chunks, (cfg.channels,), *cores)
    return da.map_overlap(
        _level_block,
        *args,
        depth=depths,
        boundary="none",
        trim=False,
        align_arrays=False,
        allow_rechunk=False,
        chunks=out_chunks,
        dtype=np.float32,
        meta=np.empty((0,) * ndim, np.float32),
        model=node,
        policy=policy,
        halo=halo,
        channels=cfg.channels,
        has_prev=pred is not None,
        lstm=lstm,
        token=f"napari-srn-level{s}",  # a prefix: dask appends a hash of the inputs
    )


def split_level(out: da.Array, net: SRN, tile: int | None) -> tuple[da.Array, da.Array | None]:
    """(prediction, ConvLSTM state or None) from a level's raw output."""
    if net.lstm is None:
        return out, None
    c = net.config.channels
    cores = tuple(tuple(4 * n for n in axis) for axis in out.chunks[-2:])
    pred = da.map_blocks(
        _unpack_prediction, out, c, chunks=(*out.chunks[:-3], (c,), *cores), dtype=np.float32
    )
    return pred, out[..., 16 * c :, :, :]


def _generic_block(
    window: np.ndarray,
    *,
    model: TaskModel,
    policy: Precision,
    halo: int,
    divisor: int,
    block_info: Any = None,
) -> np.ndarray:
    """A plain model on one tile: pad the window to the divisor like the eager tiler does."""
    net, p = _resolve(model, policy)
    m = _margins(block_info[0], halo)
    core = block_info[None]["chunk-shape"][-2:]
    loc, num = block_info[0]["chunk-location"][-2:], block_info[0]["num-chunks"][-2:]
    pads = [
        window_pad(-n % divisor, i == 0, i == count - 1)
        for i, n, count in zip(loc, window.shape[-2:], num, strict=True)
    ]
    out = np.empty((*window.shape[:-2], *core), np.float32)
    with torch.inference_mode(), p.autocast():
        for idx in np.ndindex(*window.shape[:-3]):
            w = window[idx]
            if any(n for pair in pads for n in pair):
                w = np.pad(w, [(0, 0), *pads], mode="reflect")
            y = p.to_numpy(net(p.to_device(w)))
            r0, c0 = pads[0][0] + m[0][0], pads[1][0] + m[1][0]
            out[idx] = y[..., r0 : r0 + core[0], c0 : c0 + core[1]]
    return out


def _lazy_generic(
    x: da.Array,
    net: torch.nn.Module,
    ref: object,
    *,
    tile: int | None,
    halo: int,
    policy: Precision,
) -> da.Array:
    divisor = NetFacts.of(net).divisor
    lead = tuple((1,) * n for n in x.shape[:-3])
    cores = tuple(generic_chunks(n, tile, halo, divisor) for n in x.shape[-2:])
    src = x.rechunk((*lead, x.shape[-3], *cores))
    _check_chunks(src.chunks, halo, "the overlap")
    return da.map_overlap(
        _generic_block,
        src,
        depth=_spatial_depth(src.chunks, halo),
        boundary="none",
        trim=False,
        allow_rechunk=False,
        chunks=src.chunks,
        dtype=np.float32,
        meta=np.empty((0,) * x.ndim, np.float32),
        model=ref,
        policy=policy,
        halo=halo,
        divisor=divisor,
        token="napari-srn-generic",
    )


def _reflect_pad(x: da.Array, pad: list[tuple[int, int]]) -> da.Array:
    """``np.pad(x, pad, mode="reflect")``, lazily. ``da.pad`` is right only when each pad is
    shorter than its axis; a smaller frame (a few pixels) is padded whole, as numpy does."""
    if all(after < n for (_, after), n in zip(pad, x.shape, strict=True)):
        return da.pad(x, pad, mode="reflect")
    whole = x.rechunk({x.ndim - 2: -1, x.ndim - 1: -1})
    chunks = (
        *whole.chunks[:-2],
        *((n + a,) for n, (_, a) in zip(x.shape[-2:], pad[-2:], strict=True)),
    )
    return whole.map_blocks(np.pad, pad_width=pad, mode="reflect", chunks=chunks, dtype=x.dtype)


def deblur_lazy(plan: Plan, sink: Sink | None = None) -> da.Array:
    """The lazy result of ``plan`` (see :func:`napari_srn.deblur`): a dask array of the input's
    shape and dtype, every task running the plan's precision; ``sink`` receives the coarse
    levels."""
    p = plan
    model = task_model(plan)
    height, width = p.src.shape[-2:]
    pad = [(0, 0)] * (p.src.ndim - 2) + [(0, p.padded[0] - height), (0, p.padded[1] - width)]
    parts = []
    for i, group in enumerate(p.groups):
        x = p.color[..., group, :, :].map_blocks(p.intensity.to_model, dtype=np.float32)
        if p.replicate:
            x = da.concatenate([x] * 3, axis=-3)
        if any(pad[-1]) or any(pad[-2]):
            x = _reflect_pad(x, pad)
        y = lazy_predict(
            x,
            model,
            tile=p.tile,
            halo=p.halo,
            policy=p.precision,
            sink=sink,
            tag=f"g{i}",
        )
        y = y[..., :height, :width]
        if p.replicate:
            y = da.clip(y, 0.0, 1.0).mean(axis=-3, keepdims=True)
        parts.append(y.map_blocks(p.intensity.from_model, dtype=p.src.dtype))
    if p.alpha:
        parts.append(p.src[..., -1:, :, :])  # RGBA or grey+alpha
    out = da.concatenate(parts, axis=-3) if len(parts) > 1 else parts[0]
    return unlayout(out, p.cax)


def task_model(plan: Plan) -> ModelRef | torch.nn.Module:
    """What the tasks receive: a model named by a file as a :class:`ModelRef` (each worker
    loads it itself, once, on its own device unless the options name one), a module as is."""
    model, device = plan.options.model, plan.options.device
    if isinstance(model, (str, os.PathLike)):
        return ModelRef.of(plan.net, None if device is None else str(plan.device))
    return plan.net
