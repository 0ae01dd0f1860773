"""What a run does for one layer with given settings, and the widget's line that says it.

Decisions (documented in ``docs/napari.md``):

* **Mode** ``auto`` deblurs a single in-memory image now (in a worker thread, with progress and
  Cancel) and everything else lazily: stacks (any leading T/Z axes), dask- or zarr-backed
  layers and multiscale layers get a dask-backed result whose frames are deblurred when viewed.
* **Multiscale** layers: lazily, each level is deblurred at its own resolution with one shared
  intensity range (the full-resolution level, seen when zoomed in, is exactly ``deblur`` of
  level 0; coarser levels are an overview). Compute now and Save to OME-Zarr use the
  full-resolution level only.
* **Intensity range** of lazy (and saved) input: uint8 maps 0..255 and an in-memory array its
  own min..max, as in ``deblur``. For other dtypes backed by dask or zarr (or multiscale), the
  job samples :data:`~.settings.SAMPLE_FRAMES` frames spread over the data under ``auto``
  (a min/max pass would read the whole stack); ``contrast limits`` uses the layer's (float
  limits inside [0, 1] use 0..1), ``data type range`` the dtype's full range.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ...inference.options import DeblurOptions
from .layers import LayerInfo, check_axes, check_layer, guess_axes
from .models import check_tile
from .settings import SAMPLE_FRAMES, WEIGHTS_FILE, Settings

__all__ = [
    "RunChoice",
    "choose_run",
    "deblur_options",
    "decide",
    "describe",
    "nonempty_range",
    "zarr_axes",
]


@dataclass(frozen=True)
class RunChoice:
    """What a run will do for one layer with given settings: the widget's choice, from which
    the library then makes its own plan of the work (:class:`napari_srn.inference.plan.Plan`)."""

    lazy: bool
    channel_axis: int | None
    in_range: tuple[float, float] | None
    levels: str  # "single", "full resolution" (of a multiscale layer) or "each level"
    save_to: str | None
    summary: str  # shown in the widget
    axes: str = ""  # the layer's axes (T, Z, C, Y, X), as checked
    channels_first: int | None = None  # a C axis whose channels are deblurred as gray frames
    sample_range: bool = False  # in_range is found by the job, from SAMPLE_FRAMES frames
    frames: int = 1  # 2-D frames deblurred (channels deblurred as gray images count)


def nonempty_range(low: float, high: float) -> tuple[float, float]:
    """``(low, high)``, widened to ``(low, low + 1)`` when it is empty (a flat image or equal
    contrast limits), so that the library can map it."""
    return (low, high) if high > low else (low, low + 1.0)


def _lazy_in_range(info: LayerInfo, intensity: str = "auto") -> tuple[float, float] | str | None:
    """The intensity range for lazy or saved work: a pair, None (deblur's own rule) or
    ``"sample"`` (the job samples frames)."""
    if intensity == "data type range":
        if info.dtype.kind in "ui":
            limits = np.iinfo(info.dtype)
            return (float(limits.min), float(limits.max))
        return (0.0, 1.0)
    if intensity == "auto":
        if info.dtype == np.uint8 or (info.backing == "numpy" and not info.multiscale):
            return None  # deblur's own rule: 0..255, or the in-memory array's min..max
        return "sample"
    low, high = info.contrast_limits
    if info.dtype.kind == "f" and low >= 0.0 and high <= 1.0:
        return (0.0, 1.0)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{info.name!r} has non-finite contrast limits {info.contrast_limits}")
    return nonempty_range(low, high)


def _fmt(v: float) -> str:
    return f"{v:g}"


def choose_run(
    info: LayerInfo,
    settings: Settings,
    save_to: str | os.PathLike | None = None,
    axes: str | None = None,
    tile_step: int | None = None,
) -> RunChoice:
    """Decide what a run does (:func:`decide`), and say it (:func:`describe`); a tile that is
    not a multiple of ``tile_step`` (the model's, :func:`tile_step`) is refused first."""
    check_tile(settings.tile_size, tile_step)
    choice = decide(info, settings, save_to, axes)
    return replace(choice, summary=describe(info, settings, choice))


def decide(
    info: LayerInfo,
    settings: Settings,
    save_to: str | os.PathLike | None = None,
    axes: str | None = None,
) -> RunChoice:
    """Compute-now or lazy, the channel axis, the levels and the intensity range (see the module
    doc); ``axes`` (default: :func:`guess_axes`) names the layer's dimensions. The summary is
    left empty: :func:`describe` writes it."""
    check_layer(info)
    axes = guess_axes(info) if axes is None else str(axes).strip().upper()
    channel_axis, channels_first = check_axes(axes, info)
    frames = math.prod(n for a, n in zip(axes, info.shape, strict=True) if a not in "YXC")
    if channels_first is not None:
        frames *= info.shape[channels_first]
    if settings.mode == "auto":
        lazy = info.multiscale or info.backing != "numpy" or frames > 1
    else:
        lazy = settings.mode == "lazy"
    save = str(save_to) if save_to not in (None, "") else None
    if save is not None and not save.rstrip("/\\").endswith(".zarr"):
        raise ValueError(f"the OME-Zarr output must be a folder name ending in .zarr, got {save!r}")
    # compute now on in-memory data with "auto" uses deblur's own rule (the exact min..max)
    explicit = lazy or save or settings.intensity != "auto"
    in_range = _lazy_in_range(info, settings.intensity) if explicit else None
    sample = in_range == "sample"
    if info.multiscale:
        levels = "each level" if lazy and not save else "full resolution"
    else:
        levels = "single"
    return RunChoice(
        lazy=lazy,
        channel_axis=channel_axis,
        in_range=None if sample else in_range,  # type: ignore[arg-type]
        levels=levels,
        save_to=save,
        summary="",
        axes=axes,
        channels_first=channels_first,
        sample_range=sample,
        frames=frames,
    )


def describe(info: LayerInfo, settings: Settings, choice: RunChoice) -> str:
    """The widget's summary line for ``choice``: what the layer is and what a run will do."""
    if choice.channel_axis is not None:
        layout = "RGB" if info.shape[-1] == 3 else "RGBA"
    else:
        layout = "gray"
    shape = "x".join(str(n) for n in info.shape)
    what = f"{layout} {info.dtype} {shape} ({choice.axes})"
    if choice.frames > 1:
        what += f" ({choice.frames} frames)"
    if choice.channels_first is not None:
        what += f", {info.shape[choice.channels_first]} channels each deblurred as a gray image"
    if info.multiscale:
        what += f", multiscale ({info.n_levels} levels)"
    if info.backing in ("dask", "zarr"):
        what += f", {info.backing}-backed"
    lines = [what + "."]
    if choice.save_to:
        lines.append(
            f"Writes {choice.save_to} (OME-Zarr, full resolution, resumable) with progress and "
            "Cancel, then shows it from disk."
        )
    elif choice.lazy:
        lines.append("Lazy: adds a result layer at once; a frame is deblurred when you view it.")
        if choice.levels == "each level":
            lines.append(
                "Multiscale: each level is deblurred at its own resolution (zoomed in you see "
                "the full-resolution result; coarser levels are an overview)."
            )
    else:
        lines.append("Compute now: in the background, with progress and Cancel.")
        if info.multiscale:
            lines.append("Multiscale: the full-resolution level only.")
    source = {
        "contrast limits": "the layer's contrast limits",
        "data type range": f"the full {info.dtype} range",
    }.get(settings.intensity, "the layer's contrast limits")
    if choice.sample_range:
        lines.append(
            f"Intensities: the min..max of {SAMPLE_FRAMES} frames spread over the data (found "
            "when you run, recorded in the result's metadata) map to the model's 0..1; values "
            "beyond them are clipped. Choose 'contrast limits' to give your own."
        )
    elif choice.in_range is not None:
        low, high = choice.in_range
        lines.append(
            f"Intensities {_fmt(low)}..{_fmt(high)} map to the model's 0..1 "
            f"({source}; brighter or darker values are clipped)."
            if choice.in_range != (0.0, 1.0)
            else "Intensities 0..1 are used as they are."
        )
    return " ".join(lines)


def deblur_options(settings: Settings, choice: RunChoice) -> DeblurOptions:
    """The library's settings for a run (``napari_srn.deblur``, ``iter_deblur``,
    ``deblur_to_zarr``): the widget's choices in the library's terms, converted here once (a
    weights file for the model, ``device="auto"`` as None, the automatic tile 0 as None)."""
    if settings.model == WEIGHTS_FILE:
        if not settings.weights or settings.weights == ".":
            raise ValueError("choose a weights file (.safetensors), or a bundled model")
        model = str(Path(settings.weights).expanduser())
    else:
        model = settings.model
    return DeblurOptions(
        model=model,
        channel_axis=choice.channel_axis,
        tile_size=settings.tile_size or None,
        device=None if settings.device == "auto" else settings.device,
        in_range=choice.in_range,
        precision=settings.precision,
    )


def zarr_axes(choice: RunChoice) -> str:
    """NGFF axis names for saving ``choice``'s layer (C first when its channels go as frames)."""
    axes = choice.axes.lower()
    if "q" in axes:
        raise ValueError(
            f"to save to OME-Zarr, name every axis in 'axes' (T, Z, C, Y, X), not {choice.axes!r}"
        )
    if choice.channels_first is not None:
        axes = "c" + axes.replace("c", "")
    return axes
