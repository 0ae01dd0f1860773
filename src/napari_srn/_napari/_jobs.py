"""The work the Deblur (SRN) widget runs in napari's worker threads (no napari, no Qt).

Each job takes the run's :class:`~napari_srn.DeblurOptions`, imports the library (and so
torch) only when it runs, loads the model once, and returns an :class:`Outcome` for the widget
to turn into a layer. ``compute_job`` and ``zarr_job`` are generators yielding
:class:`napari_srn.Progress` from the library's own generators (``iter_deblur``,
``iter_deblur_to_zarr``), as napari's ``thread_worker`` expects: its ``quit()`` stops them at
the next yield, between tiles or chunks. A ``RuntimeError`` (torch raises them) is re-raised as
:class:`JobFailed`, because superqt's generator worker treats a RuntimeError as "worker
deleted" and would drop it silently.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._logic.run import nonempty_range
from ._logic.settings import SAMPLE_FRAMES

if TYPE_CHECKING:
    from napari_srn.inference.options import DeblurOptions

__all__ = [
    "JobFailed",
    "Outcome",
    "compute_job",
    "frame_chunks",
    "lazy_job",
    "sampled_range",
    "zarr_job",
]


class JobFailed(Exception):
    """A RuntimeError raised inside a job, re-raised as a type the worker reports."""


@dataclass
class Outcome:
    """A finished job: the result data (an array, or a list of levels) and the model used."""

    data: Any
    model: dict[str, Any]
    saved_to: str | None = None


def _load(options: DeblurOptions) -> tuple[DeblurOptions, dict[str, Any]]:
    """``options`` with the model loaded (on its device), and what the result layer records
    about it: the precision is the library's, resolved once for the run (what runs)."""
    from napari_srn.inference.plan import resolve_model

    net, _, precision = resolve_model(options)
    card = getattr(net, "card", None)
    meta = {
        "model": getattr(card, "name", None) or type(net).__name__,
        "model_sha256": getattr(net, "sha256", None),
        "provisional": bool(getattr(card, "provisional", False)),
        "precision": precision.name,
    }
    if isinstance(options.model, (str, os.PathLike)):
        meta["model_source"] = str(options.model)
    return options.replace(model=net), meta


def _failed(err: RuntimeError) -> JobFailed:
    return JobFailed(f"{type(err).__name__}: {err}")


def frame_chunks(shape: Sequence[int], rgb: bool) -> tuple[int, ...]:
    """dask chunks of one whole frame: 1 along every leading axis."""
    n = 3 if rgb else 2
    return (1,) * (len(shape) - n) + tuple(shape[-n:])


def _as_dask(level: Any, rgb: bool) -> Any:
    import dask.array as da

    from napari_srn.io.zarr import backing

    if backing(level) in ("dask", "zarr"):
        return level  # deblur opens these lazily itself
    return da.from_array(level, chunks=frame_chunks(np.shape(level), rgb))


def sampled_range(level: Any, rgb: bool, frames: int = SAMPLE_FRAMES) -> tuple[float, float]:
    """The min..max of ``frames`` frames spread evenly over ``level`` (all of them if fewer):
    a stack's intensity range without reading all of it, nor only the first frame viewed."""
    import dask

    arr = _as_dask(level, rgb)
    lead = arr.shape[: -3 if rgb else -2]
    count = math.prod(lead)
    picks = np.unique(np.linspace(0, count - 1, min(frames, count)).round().astype(int))
    parts = [arr[np.unravel_index(int(p), lead)] if lead else arr for p in picks]
    stats = dask.compute(*[(part.min(), part.max()) for part in parts])
    low = float(min(lo for lo, _ in stats))
    high = float(max(hi for _, hi in stats))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("the image contains NaN or infinite values; replace them first")
    return nonempty_range(low, high)


def compute_job(data: Any, *, options: DeblurOptions) -> Generator[Any, None, Outcome]:
    """Deblur ``data`` in memory with ``iter_deblur``, yielding progress after every tile."""
    from ._frames import lower_thread_priority

    try:
        from napari_srn import iter_deblur

        options, meta = _load(options)
        gen = iter_deblur(np.asarray(data), options=options)
        try:
            yield next(gen)  # the first tile starts torch's threads
        except StopIteration as done:
            return Outcome(done.value, meta)
        lower_thread_priority()  # napari's main thread first: the viewer stays responsive
        result = yield from gen
    except RuntimeError as err:
        raise _failed(err) from err
    return Outcome(result, meta)


def _sampled(options: DeblurOptions, meta: dict[str, Any], level: Any, rgb: bool) -> DeblurOptions:
    """``options`` with the intensity range sampled from ``level``, recorded in ``meta``."""
    in_range = sampled_range(level, rgb)
    meta["in_range"] = list(in_range)
    return options.replace(in_range=in_range)


def lazy_job(
    levels: Sequence[Any], *, rgb: bool, options: DeblurOptions, sample_range: bool = False
) -> Outcome:
    """Build the lazy result of every level (nothing is computed here, apart from the
    intensity range: of an in-memory array when ``options.in_range`` is None, or, with
    ``sample_range``, from frames spread over the coarsest level)."""
    from napari_srn import deblur

    options, meta = _load(options)
    if sample_range:
        options = _sampled(options, meta, levels[-1], rgb)
    out = [deblur(_as_dask(level, rgb), options=options) for level in levels]
    return Outcome(out, meta)


def zarr_job(
    source: Any,
    dest: str,
    cancel: threading.Event,
    *,
    axes: str,
    rgb: bool,
    options: DeblurOptions,
    overwrite: bool = False,
    sample_range: bool = False,
    batch_size: int | None = None,
) -> Generator[Any, None, Outcome]:
    """Write ``source`` to the OME-Zarr ``dest`` with ``iter_deblur_to_zarr``, yielding its
    progress; return the store opened lazily with the source's axis order. Setting ``cancel``
    stops it between chunks (the store stays resumable) and raises
    :class:`napari_srn.Cancelled`; closing this generator (napari's ``quit()``) stops it
    too."""
    from napari_srn import Cancelled, iter_deblur_to_zarr
    from napari_srn.io.ome_zarr import NGFF_ORDER
    from napari_srn.io.zarr import open_lazy

    try:
        options, meta = _load(options)
        if sample_range:
            options = _sampled(options, meta, source, rgb)
        gen = iter_deblur_to_zarr(
            _as_dask(source, rgb),
            dest,
            options=options,
            axes=axes,
            overwrite=overwrite,
            batch_size=batch_size,
        )
        with contextlib.closing(gen):  # closed early: the store's lock is released
            while True:
                try:
                    step = next(gen)
                except StopIteration as done:
                    path = done.value
                    break
                yield step
                if cancel.is_set() and step.done < step.total:
                    raise Cancelled(f"cancelled; run the same command again to resume {dest}")
    except RuntimeError as err:
        raise _failed(err) from err
    # the store holds the axes in NGFF order (t, c, z, y, x); give them back the layer's order
    stored = sorted(axes, key=NGFF_ORDER.index)
    data = open_lazy(path).transpose([stored.index(a) for a in axes])
    return Outcome(data, meta, str(path))
