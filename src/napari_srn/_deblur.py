"""``deblur()`` for in-memory images: layout, dtype and channel handling around the tiled runner."""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._inference import Runner
from ._validate import (
    IntensityRange,
    check_dtype_and_shape,
    check_image,
    check_overlap,
    check_tile_size,
    intensity_range,
    normalize_channel_axis,
)
from .model.weights import load_model, resolve_device

__all__ = ["Progress", "auto_tile_size", "deblur", "iter_deblur"]

ModelLike = str | os.PathLike | torch.nn.Module

#: Peak memory growth of a single-tile float32 deblur, in bytes per pixel per unit of network
#: width: 30.5 measured by ``benchmarks/bench_deblur.py --calibrate`` on the CPU (976 bytes/pixel
#: for width 32; docs/performance.md), rounded up.
BYTES_PER_PIXEL_PER_WIDTH = 32.0
#: Largest automatic tile on the CPU: a 1024-pixel tile takes about 20 s on 2 cores with the
#: default model, which keeps progress and Cancel responsive.
CPU_TILE_CAP = 1024
GPU_TILE_CAP = 4096


@dataclass(frozen=True)
class Progress:
    """One step of :func:`iter_deblur`: ``done`` of ``total`` model calls finished."""

    done: int
    total: int


def _as_model(
    model: ModelLike, device: str | torch.device | None
) -> tuple[torch.nn.Module, torch.device]:
    if isinstance(model, torch.nn.Module):
        if device is None:
            param = next(model.parameters(), None)
            dev = param.device if param is not None else torch.device("cpu")
        else:
            dev = resolve_device(device)
            model = model.to(dev)
        return model.eval(), dev
    if isinstance(model, (str, os.PathLike)):
        dev = resolve_device(device)
        return load_model(model, device=dev), dev
    raise TypeError(
        f"model must be a name (see napari_srn.list_models()), a path to a .safetensors file, "
        f"or a torch.nn.Module, got {type(model).__name__}"
    )


def auto_tile_size(model: torch.nn.Module, device: torch.device, batch: int = 1) -> int:
    """Largest tile (core side, a multiple of the model's divisor) that fits in free memory.

    Uses half of the available RAM on the CPU (capped at :data:`CPU_TILE_CAP` so progress and
    cancellation stay responsive) and 80 % of free GPU memory on CUDA (half precision halves
    the activations), capped at :data:`GPU_TILE_CAP`.
    """
    import psutil

    divisor = int(getattr(model, "divisor", 1))
    halo = int(getattr(model, "halo", 0))
    width = getattr(getattr(model, "config", None), "width", 32)
    per_px = BYTES_PER_PIXEL_PER_WIDTH * width * batch
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget, cap, per_px = 0.8 * free, GPU_TILE_CAP, per_px / 2
    else:
        budget, cap = 0.5 * psutil.virtual_memory().available, CPU_TILE_CAP
    side = int(math.sqrt(budget / per_px)) - 2 * halo
    step = max(divisor, 8)
    return max(step * 4, min(cap, side // step * step))


def _channel_groups(
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


def _pad_to(x: np.ndarray, divisor: int) -> np.ndarray:
    h, w = x.shape[-2:]
    ph, pw = -h % divisor, -w % divisor
    if not (ph or pw):
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="reflect")


def _layout(a, cax: int | None):
    """View of ``a`` as ``(..., C, H, W)`` (numpy or dask)."""
    if cax is None:
        return a[..., None, :, :]
    return np.moveaxis(np.moveaxis(a, cax, -1), -1, -3)


@dataclass
class _Plan:
    """Everything decided before any pixel is processed (shared by the eager and lazy paths)."""

    net: torch.nn.Module
    device: torch.device
    cax: int | None
    tile: int
    halo: int
    src: Any  # (..., C, H, W) view of the input
    colour: Any  # its colour channels (alpha excluded)
    alpha: bool
    groups: list[slice]
    model_channels: int | None
    rng: IntensityRange

    @property
    def divisor(self) -> int:
        return int(getattr(self.net, "divisor", 1))

    @property
    def replicate(self) -> bool:
        """A color model on a one-channel group: replicate to RGB, average back."""
        return self.model_channels == 3 and self.colour.shape[-3] == 1


def _plan(arr, model, channel_axis, tile_size, overlap, device, in_range) -> _Plan:
    cax = normalize_channel_axis(arr, channel_axis)
    net, dev = _as_model(model, device)
    divisor = int(getattr(net, "divisor", 1))
    tile = check_tile_size(tile_size, divisor)
    halo = check_overlap(overlap, int(getattr(net, "halo", 0)))
    src = _layout(arr, cax)
    alpha = src.shape[-3] == 4
    colour = src[..., :3, :, :] if alpha else src
    model_channels = getattr(net, "in_channels", None)
    groups = _channel_groups(colour.shape[-3], model_channels, cax)
    rng = intensity_range(colour, in_range)
    if tile is None:
        tile = auto_tile_size(net, dev, 3 if model_channels == 3 and colour.shape[-3] == 1 else 1)
    return _Plan(net, dev, cax, tile, halo, src, colour, alpha, groups, model_channels, rng)


def iter_deblur(
    image: np.ndarray,
    *,
    model: ModelLike = "default",
    channel_axis: int | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    in_range: tuple[float, float] | None = None,
) -> Generator[Progress, None, np.ndarray]:
    """Generator form of :func:`deblur` for in-memory images: yields :class:`Progress` after
    every tile and returns the deblurred image (``result = yield from iter_deblur(...)``, or the
    ``StopIteration`` value). Stop iterating to cancel between tiles; nothing is written to
    ``image``.

    Input is validated before the generator is returned, so bad arguments raise at once.
    """
    arr = check_image(image)
    p = _plan(arr, model, channel_axis, tile_size, overlap, device, in_range)
    out = np.empty_like(arr)
    dst = _layout(out, p.cax)
    if p.alpha:
        dst[..., 3, :, :] = p.src[..., 3, :, :]
    runner = Runner(p.net, p.device, p.tile, p.halo)
    frames = list(np.ndindex(*p.src.shape[:-3]))
    padded = tuple(n + (-n % p.divisor) for n in p.src.shape[-2:])
    total = len(frames) * len(p.groups) * runner.n_tiles(padded)
    return _run(runner, frames, p.groups, p.colour, dst, out, p.rng, p.model_channels, total)


def _deblur_lazy(arr, model, channel_axis, tile_size, overlap, device, in_range, store_level=None):
    """Lazy path: the same plan, then one dask graph (see napari_srn._lazy).

    Returns ``(result, plan)``. ``store_level(tag, out)`` is handed to ``lazy_predict`` for each
    channel group (see :func:`napari_srn.deblur_to_zarr`).
    """
    import dask.array as da

    from ._lazy import ModelRef, lazy_predict

    check_dtype_and_shape(arr.dtype, arr.shape)
    p = _plan(arr, model, channel_axis, tile_size, overlap, device, in_range)
    if isinstance(model, (str, os.PathLike)):  # workers load it themselves, once each
        dev = None if device is None else str(p.device)
        ref = ModelRef(str(p.net.source), str(p.net.sha256), dev)
    else:
        ref = p.net
    height, width = p.src.shape[-2:]
    pad = [(0, 0)] * (p.src.ndim - 2) + [(0, -height % p.divisor), (0, -width % p.divisor)]
    parts = []
    for i, group in enumerate(p.groups):
        hook = None
        if store_level is not None:
            hook = functools.partial(lambda i, s, out: store_level(f"g{i}-level{s}", out), i)
        x = p.colour[..., group, :, :].map_blocks(p.rng.to_model, dtype=np.float32)
        if p.replicate:
            x = da.concatenate([x] * 3, axis=-3)
        if any(pad[-1]) or any(pad[-2]):
            x = da.pad(x, pad, mode="reflect")
        y = lazy_predict(x, ref, tile=p.tile, halo=p.halo, device=p.device, store_level=hook)
        y = y[..., :height, :width]
        if p.replicate:
            y = da.clip(y, 0.0, 1.0).mean(axis=-3, keepdims=True)
        parts.append(y.map_blocks(p.rng.from_model, dtype=arr.dtype))
    if p.alpha:
        parts.append(p.src[..., 3:4, :, :])
    out = da.concatenate(parts, axis=-3) if len(parts) > 1 else parts[0]
    if p.cax is None:
        return out[..., 0, :, :], p
    return np.moveaxis(np.moveaxis(out, -3, -1), -1, p.cax), p


def _run(
    runner: Runner,
    frames: list[tuple[int, ...]],
    groups: list[slice],
    colour: np.ndarray,
    dst: np.ndarray,
    out: np.ndarray,
    rng: IntensityRange,
    model_channels: int | None,
    total: int,
) -> Generator[Progress, None, np.ndarray]:
    done = 0
    height, width = colour.shape[-2:]
    padded = (height + (-height % runner.divisor), width + (-width % runner.divisor))
    remaining = len(frames) * len(groups)
    for idx in frames:
        for group in groups:
            x = _pad_to(rng.to_model(colour[idx][group]), runner.divisor)
            if model_channels == 3 and x.shape[0] == 1:
                x = np.repeat(x, 3, axis=0)
            while True:  # retried with smaller tiles if the GPU runs out of memory
                start = done
                try:
                    gen = runner.run(x)
                    while True:
                        try:
                            next(gen)
                        except StopIteration as stop:
                            y = stop.value
                            break
                        done += 1
                        yield Progress(done, total)
                    break
                except torch.cuda.OutOfMemoryError:
                    smaller = _smaller_tile(runner, padded)
                    warnings.warn(
                        f"out of GPU memory with tile_size={runner.tile}; retrying this frame "
                        f"with tile_size={smaller}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    runner.tile = smaller
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    done = start
                    total = done + remaining * runner.n_tiles(padded)
            remaining -= 1
            if model_channels == 3 and group.stop - group.start == 1:
                y = np.clip(y, 0.0, 1.0).mean(axis=0, keepdims=True)
            dst[idx][group] = rng.from_model(y[:, :height, :width])
    return out


def _smaller_tile(runner: Runner, shape: tuple[int, int]) -> int:
    """Half the current tile (or of the image, for a single tile), or raise if at the floor."""
    current = runner.tile if runner.tile is not None else max(shape)
    current = min(current, max(shape))
    step = max(runner.divisor, 8)
    smaller = current // 2 // step * step
    if smaller < 2 * step:
        raise MemoryError(
            f"out of GPU memory even with tile_size={current}; free GPU memory, use a "
            "narrower model, or pass device='cpu'"
        )
    return smaller


def deblur(
    image: np.ndarray,
    *,
    model: ModelLike = "default",
    channel_axis: int | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int, int], object] = False,
    in_range: tuple[float, float] | None = None,
):
    """Remove camera shake and motion blur with a scale-recurrent network (SRN-DeblurNet).

    Parameters
    ----------
    image : ndarray, dask array, zarr array, or path to a zarr store
        ``(..., H, W)`` gray or ``(..., H, W, C)`` (see ``channel_axis``) image; leading axes
        (time, z, ...) are deblurred frame by frame. dtype uint8, uint16, other integers,
        float32 or float64 (float16 too). Not modified. A dask or zarr array (zarr 2 or 3
        stores; for an OME-Zarr image, its full-resolution level) is processed **lazily**:
        the result is a dask array, and computing part of it runs the network only on the
        tiles that part needs.
    model : str, path or torch.nn.Module, optional
        ``"default"``, a name from :func:`napari_srn.list_models`, a ``.safetensors`` file
        written by napari-srn, or a loaded model (see :func:`napari_srn.load_model`).
    channel_axis : int or None, optional
        Axis holding colour channels (scikit-image convention); None means grayscale. With 4
        channels the last is alpha and is copied through untouched. A color model takes RGB
        as is, and a gray image is replicated to RGB, deblurred, and averaged back to one
        channel. A gray model deblurs each channel as a separate gray image (as the authors'
        code does for RGB). With None and a last axis of 3 or 4 entries, the image is taken
        as RGB(A) with a warning.
    tile_size : int or None, optional
        Side in pixels of the region each model call writes (a multiple of the model's
        divisor, 16 for the default model); None chooses it from free memory (at most 1024 on
        the CPU). Each scale of the network is tiled separately, so tiles do not change the
        result beyond the small edge effect that ``overlap`` controls.
    overlap : int or None, optional
        Context in pixels read on each side of a tile and then discarded; None uses the
        model's ``halo`` (48 for the default model).
    device : str, torch.device or None, optional
        None uses CUDA when available (with bf16/fp16 autocast and channels-last), else the
        CPU. Asking for a device that is not available raises ValueError.
    progress : bool or callable, optional
        True shows a tqdm bar on stderr when there is more than one tile or frame; a callable
        is called as ``progress(done, total)`` after every tile. Ignored for lazy input (use
        :func:`napari_srn.deblur_to_zarr`, or dask's diagnostics when computing).
    in_range : (float, float), optional
        Input values that map to the model's 0 and 1; None chooses as described below. Give it
        for lazy input to skip the pass over the data that finding the range takes, or to map
        separately processed images the same way.

    Returns
    -------
    ndarray or dask array
        Same shape and dtype as ``image`` (a dask array with chunks on the tile grid for
        lazy input). uint8 maps 0..255 to the model's [0, 1]; floats
        already in [0, 1] are used as they are; other data (uint16 microscopy, floats outside
        [0, 1]) map their own min..max over the whole array to [0, 1] and back, so the output
        stays within the input's range.

    Raises
    ------
    TypeError
        For a bool, complex or non-numeric image, or a wrongly typed argument.
    ValueError
        For an empty or 1-D image, NaN or infinite values, a channel count the model cannot
        take, a bad ``tile_size``/``overlap``, or an unavailable device.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_srn import deblur
    >>> from napari_srn.sample import blurred_sample
    >>> blurred = blurred_sample()
    >>> sharp = deblur(blurred, channel_axis=-1, device="cpu")  # doctest: +SKIP
    >>> sharp.shape == blurred.shape and sharp.dtype == blurred.dtype  # doctest: +SKIP
    True
    """
    from .io.zarr import is_lazy_source, open_lazy

    if is_lazy_source(image):
        lazy, _ = _deblur_lazy(
            open_lazy(image), model, channel_axis, tile_size, overlap, device, in_range
        )
        return lazy
    gen = iter_deblur(
        image,
        model=model,
        channel_axis=channel_axis,
        tile_size=tile_size,
        overlap=overlap,
        device=device,
        in_range=in_range,
    )
    bar = None
    try:
        while True:
            try:
                step = next(gen)
            except StopIteration as stop:
                return stop.value
            if callable(progress):
                progress(step.done, step.total)
            elif progress and step.total > 1:
                if bar is None:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=step.total, desc="deblur", unit="tile", leave=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
