"""The work the Deblur (SRN) widget runs in napari's worker threads (no napari, no Qt).

Each job imports the library (and so torch) only when it runs, loads the model once, and returns
an :class:`Outcome` for the widget to turn into a layer. ``compute_job`` and ``zarr_job`` are
generators yielding :class:`napari_srn.Progress`, as napari's ``thread_worker`` expects: its
``quit()`` stops them at the next yield, between tiles. A ``RuntimeError`` (torch raises them)
is re-raised as :class:`JobFailed`, because superqt's generator worker treats a RuntimeError as
"worker deleted" and would drop it silently.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._logic.settings import SAMPLE_FRAMES

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


def _load(model: Any, device: str | None, precision: str = "auto") -> tuple[Any, dict[str, Any]]:
    """The model object and what the result layer records about it (with the precision that
    ``precision`` means on the model's device)."""
    import torch

    from napari_srn import load_model
    from napari_srn.inference.precision import resolve_precision

    net = model if isinstance(model, torch.nn.Module) else load_model(model, device=device)
    card = getattr(net, "card", None)
    param = next(net.parameters(), None)
    where = param.device if param is not None else torch.device("cpu")
    meta = {
        "model": getattr(card, "name", None) or type(net).__name__,
        "model_sha256": getattr(net, "sha256", None),
        "provisional": bool(getattr(card, "provisional", False)),
        "precision": resolve_precision(precision, where).name,
    }
    if not isinstance(model, torch.nn.Module):
        meta["model_source"] = str(model)
    return net, meta


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
    return (low, high) if high > low else (low, low + 1.0)


def compute_job(
    data: Any, *, model: Any, device: str | None, **kwargs: Any
) -> Generator[Any, None, Outcome]:
    """Deblur ``data`` in memory with ``iter_deblur``, yielding progress after every tile."""
    from ._frames import lower_thread_priority

    try:
        from napari_srn import iter_deblur

        net, meta = _load(model, device, kwargs.get("precision", "auto"))
        gen = iter_deblur(np.asarray(data), model=net, device=device, **kwargs)
        try:
            yield next(gen)  # the first tile starts torch's threads
        except StopIteration as done:
            return Outcome(done.value, meta)
        lower_thread_priority()  # napari's main thread first: the viewer stays responsive
        result = yield from gen
    except RuntimeError as err:
        raise _failed(err) from err
    return Outcome(result, meta)


def lazy_job(
    levels: Sequence[Any],
    *,
    rgb: bool,
    model: Any,
    device: str | None,
    sample_range: bool = False,
    **kwargs: Any,
) -> Outcome:
    """Build the lazy result of every level (nothing is computed here, apart from the
    intensity range: of an in-memory array when ``in_range`` is None, or, with
    ``sample_range``, from frames spread over the coarsest level)."""
    from napari_srn import deblur

    net, meta = _load(model, device, kwargs.get("precision", "auto"))
    if sample_range:
        kwargs["in_range"] = sampled_range(levels[-1], rgb)
        meta["in_range"] = list(kwargs["in_range"])
    out = [deblur(_as_dask(level, rgb), model=net, device=device, **kwargs) for level in levels]
    return Outcome(out, meta)


def zarr_job(
    source: Any,
    dest: str,
    cancel: threading.Event,
    *,
    axes: str,
    rgb: bool,
    model: Any,
    device: str | None,
    sample_range: bool = False,
    **kwargs: Any,
) -> Generator[Any, None, Outcome]:
    """Write ``deblur_to_zarr(source, dest)`` yielding its progress; return the store opened
    lazily with the source's axis order. Setting ``cancel`` stops it between chunks (the
    store stays resumable) and raises :class:`napari_srn.Cancelled`."""
    from napari_srn import Progress, deblur_to_zarr
    from napari_srn.io.ome_zarr import NGFF_ORDER
    from napari_srn.io.zarr import open_lazy

    try:
        net, meta = _load(model, device, kwargs.get("precision", "auto"))
    except RuntimeError as err:
        raise _failed(err) from err
    if sample_range:
        kwargs["in_range"] = sampled_range(source, rgb)
        meta["in_range"] = list(kwargs["in_range"])
    steps: queue.SimpleQueue = queue.SimpleQueue()
    box: dict[str, Any] = {}

    def write() -> None:
        try:
            box["path"] = deblur_to_zarr(
                _as_dask(source, rgb),
                dest,
                model=net,
                device=device,
                axes=axes,
                progress=lambda done, total: steps.put(Progress(done, total)),
                cancel=cancel.is_set,
                **kwargs,
            )
        except BaseException as err:  # handed to the worker thread below
            box["error"] = err
        finally:
            steps.put(None)

    thread = threading.Thread(target=write, name="napari-srn deblur_to_zarr", daemon=True)
    thread.start()
    try:
        while (step := steps.get()) is not None:
            yield step
    finally:  # also when the generator is closed: stop the writer between chunks
        if thread.is_alive():
            cancel.set()
        thread.join()
    if "error" in box:
        error = box["error"]
        if isinstance(error, RuntimeError):
            raise _failed(error) from error
        raise error
    # the store holds the axes in NGFF order (t, c, z, y, x); give them back the layer's order
    stored = sorted(axes, key=NGFF_ORDER.index)
    data = open_lazy(box["path"]).transpose([stored.index(a) for a in axes])
    return Outcome(data, meta, str(box["path"]))
