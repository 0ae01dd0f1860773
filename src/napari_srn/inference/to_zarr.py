"""``deblur_to_zarr`` and ``iter_deblur_to_zarr``: the lazy graph of :mod:`.lazy` composed with
the resumable OME-Zarr writer of :mod:`napari_srn.io.ome_zarr` (which documents the store's
states), and the input's identity (:mod:`napari_srn.io.identity`) that decides what may resume.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import dask
import dask.array as da
import numpy as np

from .._progress import Progress, reporter
from .._version import __version__
from ..io.identity import check_not_the_input, fingerprint, module_hash
from ..io.ome_zarr import NGFF_ORDER, Cancelled, OmeZarrSink, ngff_axes
from ..io.zarr import open_lazy
from .lazy import deblur_lazy
from .options import DeblurOptions, ModelLike, merge_options
from .plan import Plan, make_plan
from .validate import ImageLike, check_dtype_and_shape, normalize_channel_axis

if TYPE_CHECKING:
    import torch

__all__ = ["Cancelled", "deblur_to_zarr", "iter_deblur_to_zarr"]


def _frame_chunked(source: np.ndarray, cax: int | None) -> da.Array:
    """An in-memory ``source`` as a dask array of one frame (all its channels) a chunk."""
    whole = {cax, *[i for i in range(source.ndim) if i != cax][-2:]}
    return da.from_array(
        source, chunks=tuple(n if i in whole else 1 for i, n in enumerate(source.shape))
    )


def _settings(plan: Plan, names: str) -> dict[str, Any]:
    """What decides the result, besides the input: a run with other settings is not resumed
    (the fingerprint includes them) and the output's metadata records them."""
    net = plan.net
    return {
        "model_sha256": getattr(net, "sha256", None) or module_hash(net),
        "model_config": (
            cast(Any, net).config.to_dict() if hasattr(net, "config") else type(net).__name__
        ),
        "channel_axis": plan.cax,
        "tile_size": plan.tile,
        "overlap": plan.halo,
        "in_range": (plan.intensity.low, plan.intensity.high),
        "precision": plan.precision.name,  # what every task runs
        "axes": names,
    }


def _provenance(source: object, net: torch.nn.Module, settings: dict[str, Any]) -> dict[str, Any]:
    """The output's record of how it was made: napari-srn's version, the model, the source."""
    return {
        "napari_srn_version": __version__,
        "model": {"name": getattr(getattr(net, "card", None), "name", None), **settings},
        "source": str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__,
    }


def _in_ngff_order(result: da.Array, names: str) -> tuple[da.Array, str]:
    """``result`` with its axes (named by ``names``) in NGFF order and all channels in one
    chunk, and the names in that order."""
    order = sorted(range(result.ndim), key=lambda i: NGFF_ORDER.index(names[i]))
    out_axes = "".join(names[i] for i in order)
    final = result.transpose(order)
    final = final.rechunk(
        tuple((sum(c),) if a == "c" else c for a, c in zip(out_axes, final.chunks, strict=True))
    )
    return final, out_axes


def _batch(batch_size: int | None) -> int:
    """Chunks per dask call: ``batch_size``, else 2 per worker thread (at least 2)."""
    threads = dask.config.get("num_workers", None) or os.cpu_count() or 1
    return batch_size or max(2, 2 * threads)


def iter_deblur_to_zarr(
    source: ImageLike,
    dest: str | os.PathLike,
    *,
    options: DeblurOptions | None = None,
    axes: str | None = None,
    overwrite: bool = False,
    batch_size: int | None = None,
    alpha: bool | None = None,
) -> Generator[Progress, None, Path]:
    """Generator form of :func:`deblur_to_zarr`: yields :class:`Progress` (chunks done, of
    all) after each batch of chunks and returns ``dest``. Stop iterating (``close()``) to
    cancel between batches: the store stays resumable, and its lock is released.

    The input and settings are checked, and the work planned, before the generator is
    returned, so bad arguments raise at once; the store is opened (created, resumed or
    refused) when iteration begins.

    Parameters
    ----------
    source : ndarray, dask array, zarr array, or path to a zarr store
        As for :func:`deblur_to_zarr`.
    dest : path
        As for :func:`deblur_to_zarr`.
    options : DeblurOptions, optional
        The settings (default: all defaults).
    axes : str, optional
        As for :func:`deblur_to_zarr`.
    overwrite : bool
        As for :func:`deblur_to_zarr`.
    batch_size : int, optional
        As for :func:`deblur_to_zarr`.
    alpha : bool, optional
        True when the last channel (on ``channel_axis``) is transparency, as an image file
        says (gray+alpha, RGBA): copied through as it is. None decides from the shape, as
        :func:`deblur_to_zarr` does (4 channels are RGBA).

    Returns
    -------
    generator of Progress
        Yields ``Progress(done, total)`` in chunks; its return value is ``dest`` as a
        :class:`pathlib.Path`.
    """
    opts = DeblurOptions() if options is None else options
    dest = Path(dest).expanduser()
    check_not_the_input(source, dest)
    data = source if isinstance(source, np.ndarray) else open_lazy(source)
    check_dtype_and_shape(data.dtype, data.shape)
    cax = normalize_channel_axis(data, opts.channel_axis)
    arr = _frame_chunked(data, cax) if isinstance(data, np.ndarray) else data
    names = ngff_axes(axes, arr.ndim, cax)
    plan = make_plan(arr, opts.replace(channel_axis=cax), lazy=True, alpha=alpha)
    return _write(source, arr, plan, names, dest, overwrite, _batch(batch_size))


def _write(
    source: object,
    arr: da.Array,
    plan: Plan,
    names: str,
    dest: Path,
    overwrite: bool,
    batch: int,
) -> Generator[Progress, None, Path]:
    """Open the store (created, resumed or refused; locked until the generator ends) and
    compute ``plan``'s result into it, yielding progress."""
    settings = _settings(plan, names)
    provenance = _provenance(source, plan.net, settings)
    print_ = fingerprint(source, arr, settings)
    with OmeZarrSink(dest, print_, provenance, overwrite) as sink:
        if sink.complete:
            return dest
        final, out_axes = _in_ngff_order(deblur_lazy(plan, sink), names)
        yield from sink.iter_write(
            final,
            out_axes,
            name=f"{dest.stem} (deblurred by napari-srn)",
            batch=batch,
            # did it read a changed input?
            unchanged=lambda: fingerprint(source, arr, settings) == print_,
        )
    return dest


def deblur_to_zarr(
    source: ImageLike,
    dest: str | os.PathLike,
    *,
    model: ModelLike = "default",
    channel_axis: int | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    in_range: tuple[float, float] | None = None,
    precision: str = "auto",
    axes: str | None = None,
    overwrite: bool = False,
    progress: bool | Callable[[int, int], object] = False,
    cancel: Callable[[], bool] | None = None,
    batch_size: int | None = None,
    options: DeblurOptions | None = None,
) -> Path:
    """Deblur ``source`` into an OME-Zarr image at ``dest``, tile by tile, resumably.

    Parameters
    ----------
    source : ndarray, dask array, zarr array, or path to a zarr store
        As for :func:`napari_srn.deblur`; read lazily.
    dest : path
        The OME-Zarr (NGFF 0.5) image to write: dataset ``0`` is the full-resolution result,
        with the input's dtype, the axes in NGFF order (``t, c, z, y, x``: a channel axis
        moves before the spatial ones, named in each array's ``dimension_names``) and zarr
        chunks equal to the tiles; ``1``, ``2``, ... are 2x2-mean downsamplings of it, down to
        about one tile, so that viewers show it zoomed out without reading everything.
    model, channel_axis, tile_size, overlap, device, in_range, precision : optional
        The settings, as for :func:`napari_srn.deblur` (documented on
        :class:`~napari_srn.DeblurOptions`). ``device=None`` plans for CUDA if this machine
        has it, else the CPU, and ``precision="auto"`` is resolved there once: every dask
        worker runs that precision on its own device, and the store records it.
    axes : str, optional
        Names of the input's axes, e.g. ``"tyx"``, ``"zyxc"``; by default ``"yx"`` preceded by
        ``"t"`` or ``"tz"``, with ``"c"`` at ``channel_axis``.
    overwrite : bool
        Replace an existing ``dest`` that holds anything other than this same run (the same
        run is resumed if unfinished, and left as it is if finished).
    progress : bool or callable
        True shows a tqdm bar on stderr; a callable gets ``(done, total)`` chunks.
    cancel : callable, optional
        Checked between batches of chunks; returning True raises :class:`Cancelled`, leaving
        a resumable store.
    batch_size : int, optional
        Chunks computed per dask call (default: 2 per worker thread, at least 2). Runs on the
        active dask scheduler, e.g. a ``dask.distributed`` client.
    options : DeblurOptions, optional
        All the settings in one object, instead of the keywords (giving both is a TypeError).

    Returns
    -------
    pathlib.Path
        ``dest``.

    See Also
    --------
    iter_deblur_to_zarr : The same as a generator of progress steps.
    """
    opts = merge_options(
        options,
        model=model,
        channel_axis=channel_axis,
        tile_size=tile_size,
        overlap=overlap,
        device=device,
        in_range=in_range,
        precision=precision,
    )
    gen = iter_deblur_to_zarr(
        source, dest, options=opts, axes=axes, overwrite=overwrite, batch_size=batch_size
    )
    return run_to_zarr(gen, dest, progress, cancel)


def run_to_zarr(
    gen: Generator[Progress, None, Path],
    dest: str | os.PathLike,
    progress: bool | Callable[[int, int], object] = False,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """Run :func:`iter_deblur_to_zarr`'s generator to the end, reporting ``progress`` and
    asking ``cancel`` between batches, as :func:`deblur_to_zarr` describes."""
    asked = None  # the count of done chunks cancel() was last asked at
    with reporter(progress, desc="deblur to zarr", unit="chunk") as report:
        while True:
            try:
                step = next(gen)
            except StopIteration as stop:
                return cast(Path, stop.value)
            report(step)
            if cancel is None or step.done in (asked, step.total):
                continue
            asked = step.done
            if cancel():
                gen.close()  # releases the lock; the store stays resumable
                raise Cancelled(f"cancelled; run the same command again to resume {dest}")
