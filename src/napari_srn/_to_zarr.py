"""``deblur_to_zarr``: deblur lazily into an OME-Zarr image, resumably, in bounded memory.

How a run goes (all under ``dest``):

1. ``dest`` is created as a zarr group whose ``napari_srn`` attribute says ``status:
   "incomplete"`` with the run's fingerprint (source, model SHA-256, parameters). It carries
   no OME ``multiscales`` metadata yet, so no viewer mistakes it for a finished image.
2. For an SRN, each channel group's coarse levels are computed tile by tile into float32
   arrays under ``dest/.napari-srn-work/``, and read back from there by the next level: memory
   stays bounded by a few tiles whatever the image size.
3. The full-resolution level is computed tile by tile straight into ``dest/0``, whose zarr
   chunks are the tiles (one task writes one chunk, so parallel workers never write the same
   chunk).
4. After each chunk is written, an empty marker file records it; a run started again with the
   same arguments skips every marked chunk and ends with the same result as an uninterrupted
   run. Only when everything is written are the OME-NGFF metadata added, the status set to
   ``"complete"`` and the work folder removed.

A different existing output is never overwritten without ``overwrite=True``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from itertools import product
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ._deblur import Progress, _deblur_lazy
from ._validate import check_dtype_and_shape, normalize_channel_axis

__all__ = ["Cancelled", "deblur_to_zarr"]

STATUS_KEY = "napari_srn"
WORK = ".napari-srn-work"
NGFF_ORDER = "tczyx"


class Cancelled(Exception):
    """Raised by :func:`deblur_to_zarr` when ``cancel()`` returned True. The store is left
    incomplete and resumable: the same call again continues where it stopped."""


def _axes(axes: str | None, ndim: int, cax: int | None) -> str:
    """Axis names of the input, validated (NGFF letters t, c, z, y, x)."""
    if axes is None:
        lead = ndim - 2 - (cax is not None)
        if lead > 2:
            raise ValueError(
                f"cannot guess axis names for {ndim} dimensions; pass axes= (e.g. 'tczyx')"
            )
        names = [*("", "t", "tz")[lead], "y", "x"]
        if cax is not None:
            names.insert(cax, "c")
        return "".join(names)
    if not isinstance(axes, str):
        raise TypeError(f"axes must be a string such as 'tyx', got {type(axes).__name__}")
    axes = axes.lower()
    problems = []
    if len(axes) != ndim:
        problems.append(f"has {len(axes)} letters for an image with {ndim} dimensions")
    if set(axes) - set(NGFF_ORDER) or len(set(axes)) != len(axes):
        problems.append("must use each of t, c, z, y, x at most once")
    if cax is not None and len(axes) == ndim and axes[cax] != "c":
        problems.append(f"must name the channel axis ({cax}) 'c'")
    spatial = [a for i, a in enumerate(axes) if i != cax][-2:]
    if spatial != ["y", "x"]:
        problems.append("must end (apart from the channel axis) with 'y', 'x'")
    if problems:
        raise ValueError(f"axes={axes!r} " + "; ".join(problems))
    return axes


def _module_hash(net) -> str:
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _fingerprint(source: object, arr: da.Array, settings: dict) -> str:
    if isinstance(source, (str, os.PathLike)):
        ident = str(Path(source).expanduser().resolve())
    elif hasattr(source, "store_path"):  # a zarr array or group
        ident = str(source.store_path)
    elif isinstance(source, np.ndarray):
        ident = hashlib.sha256(np.ascontiguousarray(source).data).hexdigest()
    else:
        ident = arr.name  # dask's deterministic name (from_zarr: the store; from_array: data)
    text = json.dumps([ident, arr.shape, str(arr.dtype), settings], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _open_dest(dest: Path, fingerprint: str, overwrite: bool):
    """Create, resume or refuse the output group; return (group, already_complete)."""
    import zarr

    if dest.exists():
        try:
            group = zarr.open_group(str(dest), mode="r+")
            info = dict(group.attrs).get(STATUS_KEY, {})
        except Exception:  # not a zarr group at all
            info = None
        same = info and info.get("fingerprint") == fingerprint
        if same and not overwrite:
            return group, info.get("status") == "complete"
        if not overwrite:
            what = "a different napari-srn result" if info else "something else"
            raise FileExistsError(
                f"{str(dest)!r} already holds {what}; pass overwrite=True (--overwrite) to "
                "replace it, or choose another destination"
            )
        if dest.is_dir():
            shutil.rmtree(dest)
        else:
            dest.unlink()
    if not dest.parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(dest)!r}: its folder {str(dest.parent)!r} does not exist"
        )
    try:
        group = zarr.open_group(str(dest), mode="w")
    except OSError as err:
        raise PermissionError(f"cannot write {str(dest)!r}: {err}") from err
    return group, False


class _Writer:
    """Writes dask arrays chunk by chunk into zarr arrays, skipping chunks already marked."""

    def __init__(
        self, dest: Path, progress: Callable[[Progress], None], cancel, batch: int, total: int
    ):
        self.dest, self.progress, self.cancel, self.batch = dest, progress, cancel, batch
        self.done, self.total = 0, total

    def marker_dir(self, tag: str) -> Path:
        return self.dest / WORK / "done" / tag

    def write(self, tag: str, x: da.Array, array_path: Path) -> None:
        """Compute every unmarked block of ``x`` and write it into the array at ``array_path``."""
        marks = self.marker_dir(tag)
        marks.mkdir(parents=True, exist_ok=True)
        finished = {p.name for p in marks.iterdir()}
        todo = []
        for idx in product(*(range(len(c)) for c in x.chunks)):
            name = ".".join(map(str, idx))
            if name in finished:
                self.done += 1
                continue
            todo.append((idx, name))
        self.progress(Progress(self.done, self.total))
        store = str(array_path)
        for i in range(0, len(todo), self.batch):
            if self.cancel is not None and self.cancel():
                raise Cancelled(f"cancelled; run the same command again to resume {self.dest}")
            tasks = []
            for idx, name in todo[i : i + self.batch]:
                region = tuple(
                    slice(sum(c[:k]), sum(c[: k + 1])) for c, k in zip(x.chunks, idx, strict=True)
                )
                tasks.append(
                    dask.delayed(_write_block)(x.blocks[idx], store, region, str(marks / name))
                )
            dask.compute(*tasks)
            self.done += len(tasks)
            self.progress(Progress(self.done, self.total))


def _write_block(block: np.ndarray, store: str, region: tuple, marker: str) -> None:
    import zarr

    zarr.open_array(store, mode="r+")[region] = block
    Path(marker).touch()  # after the data: a crash in between only redoes this chunk


def _regular(chunks: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    """Zarr chunk shape for dask chunks that form a regular grid (a merged last block spans
    two zarr chunks, both written by the same task)."""
    return tuple(c[0] for c in chunks)


def deblur_to_zarr(
    source,
    dest: str | os.PathLike,
    *,
    model="default",
    channel_axis: int | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    device=None,
    in_range: tuple[float, float] | None = None,
    axes: str | None = None,
    overwrite: bool = False,
    progress: bool | Callable[[int, int], object] = False,
    cancel: Callable[[], bool] | None = None,
    batch_size: int | None = None,
) -> Path:
    """Deblur ``source`` into an OME-Zarr image at ``dest``, tile by tile, resumably.

    Parameters
    ----------
    source : ndarray, dask array, zarr array, or path to a zarr store
        As for :func:`napari_srn.deblur`; read lazily.
    dest : path
        The OME-Zarr (NGFF 0.5) image to write; its one dataset ``0`` has the input's dtype,
        the axes in NGFF order (``t, c, z, y, x``: a channel axis moves before the spatial
        ones) and zarr chunks equal to the tiles.
    model, channel_axis, tile_size, overlap, device, in_range
        As for :func:`napari_srn.deblur`. ``device=None`` lets each dask worker use its own
        GPU, or its CPU.
    axes : str, optional
        Names of the input's axes, e.g. ``"tyx"``, ``"zyxc"``; by default ``"yx"`` preceded by
        ``"t"`` or ``"tz"``, with ``"c"`` at ``channel_axis``.
    overwrite : bool
        Replace an existing ``dest`` that holds anything other than this same run. (The same
        run, unfinished, is resumed; finished, it is left as it is.)
    progress : bool or callable
        True shows a tqdm bar on stderr; a callable gets ``(done, total)`` chunks.
    cancel : callable, optional
        Checked between batches of chunks; returning True raises :class:`Cancelled`, leaving
        a resumable store.
    batch_size : int, optional
        Chunks computed per dask call (default: 2 per worker thread, at least 2). Runs on the
        active dask scheduler, e.g. a ``dask.distributed`` client.

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    import zarr
    from ome_zarr.writer import write_multiscales_metadata

    from . import __version__
    from .io.zarr import open_lazy

    dest = Path(dest).expanduser()
    if isinstance(source, np.ndarray):
        check_dtype_and_shape(source.dtype, source.shape)
        cax = normalize_channel_axis(source, channel_axis)
        whole = {cax, *[i for i in range(source.ndim) if i != cax][-2:]}  # one frame a chunk
        arr = da.from_array(
            source, chunks=tuple(n if i in whole else 1 for i, n in enumerate(source.shape))
        )
    else:
        arr = open_lazy(source)
        check_dtype_and_shape(arr.dtype, arr.shape)
        cax = normalize_channel_axis(arr, channel_axis)
    names = _axes(axes, arr.ndim, cax)
    # a first, recording pass builds the graph once: the plan (range, tile), the output's
    # shape and chunks, and the number of chunks of every stage, for the progress total
    recorded: list[da.Array] = []
    result, plan = _deblur_lazy(
        arr,
        model,
        cax,
        tile_size,
        overlap,
        device,
        in_range,
        store_level=lambda tag, out: recorded.append(out) or out,
    )
    net = plan.net
    fixed = {
        "tile_size": plan.tile,
        "overlap": plan.halo,
        "in_range": (plan.rng.low, plan.rng.high),
    }
    settings = {
        "model_sha256": getattr(net, "sha256", None) or _module_hash(net),
        "model_config": net.config.to_dict() if hasattr(net, "config") else type(net).__name__,
        "channel_axis": cax,
        **fixed,
        "axes": names,
    }
    fingerprint = _fingerprint(source, arr, settings)
    group, complete = _open_dest(dest, fingerprint, overwrite)
    if complete:
        return dest

    order = sorted(range(arr.ndim), key=lambda i: NGFF_ORDER.index(names[i]))
    out_axes = "".join(names[i] for i in order)

    def ngff(result: da.Array) -> da.Array:
        """Axes in NGFF order, all channels in one chunk."""
        y = result.transpose(order)
        return y.rechunk(
            tuple((sum(c),) if a == "c" else c for a, c in zip(out_axes, y.chunks, strict=True))
        )

    final = ngff(result)
    provenance = {
        "status": "incomplete",
        "fingerprint": fingerprint,
        "napari_srn_version": __version__,
        "model": {"name": getattr(getattr(net, "card", None), "name", None), **settings},
        "source": str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if STATUS_KEY not in group.attrs:
        group.attrs[STATUS_KEY] = provenance
    if "0" not in group:
        group.create_array(
            "0",
            shape=final.shape,
            chunks=_regular(final.chunks),
            dtype=final.dtype,
            fill_value=0,
        )

    bar = None
    if callable(progress):
        report = lambda p: progress(p.done, p.total)  # noqa: E731
    elif progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="deblur to zarr", unit="chunk")

        def report(p: Progress) -> None:
            bar.total = p.total
            bar.n = p.done
            bar.refresh()
    else:
        report = lambda p: None  # noqa: E731
    threads = dask.config.get("num_workers", None) or os.cpu_count() or 1
    total = sum(x.npartitions for x in recorded) + final.npartitions
    writer = _Writer(dest, report, cancel, batch_size or max(2, 2 * threads), total)

    def store_level(tag: str, out: da.Array) -> da.Array:
        path = dest / WORK / tag
        if not path.exists():
            zarr.create_array(
                str(path),
                shape=out.shape,
                chunks=_regular(out.chunks),
                dtype=np.float32,
                fill_value=0,
            )
        writer.write(tag, out, path)
        return da.from_zarr(zarr.open_array(str(path), mode="r"), chunks=out.chunks)

    try:
        result, _ = _deblur_lazy(
            arr,
            model,
            cax,
            plan.tile,
            plan.halo,
            device,
            fixed["in_range"],
            store_level=store_level,
        )
        writer.write("final", ngff(result), dest / "0")
    finally:
        if bar is not None:
            bar.close()

    write_multiscales_metadata(
        group,
        datasets=[
            {
                "path": "0",
                "coordinateTransformations": [{"type": "scale", "scale": [1.0] * final.ndim}],
            }
        ],
        axes=list(out_axes),
        name=f"{dest.stem} (deblurred by napari-srn)",
    )
    info = dict(group.attrs[STATUS_KEY])
    info["status"] = "complete"
    info["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    group.attrs[STATUS_KEY] = info
    shutil.rmtree(dest / WORK, ignore_errors=True)
    return dest
