"""``deblur_to_zarr``: the lazy graph of :mod:`napari_srn.inference.lazy` composed with the
resumable OME-Zarr writer of :mod:`napari_srn.io.ome_zarr` (which documents the store's states).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import dask
import dask.array as da
import numpy as np

from ._progress import reporter
from ._validate import ImageLike, check_dtype_and_shape, normalize_channel_axis
from .io.ome_zarr import NGFF_ORDER, Cancelled, OmeZarrSink, ngff_axes

if TYPE_CHECKING:
    import torch

    from .inference.plan import ModelLike, Plan

__all__ = ["Cancelled", "deblur_to_zarr"]


def _module_hash(net: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _store_path(array: object) -> Path | None:
    """The local file or folder an opened array reads: a zarr array in a local store (zarr's
    LocalStore, or fsspec's local file system as ``da.from_zarr`` opens a path), a memmap."""
    if isinstance(array, np.memmap):
        return Path(array.filename).resolve() if array.filename else None
    store = getattr(array, "store", None)
    root = getattr(store, "root", None)
    protocol = getattr(getattr(store, "fs", None), "protocol", ())
    if root is None and "file" in ((protocol,) if isinstance(protocol, str) else protocol):
        root = getattr(store, "path", None)
    if root is None:
        return None
    return (Path(root) / (getattr(array, "path", "") or "")).resolve()


def _graph_arrays(arr: da.Array) -> list[object]:
    """The arrays a dask array reads, as its graph holds them: the values of materialized
    layers (``from_array``, ``from_zarr``) and the constant arguments of blockwise ones
    (``inline_array=True``). Tasks are not materialized."""
    found: list[object] = []
    for layer in arr.dask.layers.values():
        if hasattr(layer, "indices"):  # Blockwise: (value, None) pairs are constants
            values = [v for v, index in layer.indices if index is None]
        elif isinstance(getattr(layer, "mapping", None), dict):
            values = list(layer.mapping.values())
        else:
            continue
        found += [getattr(v, "value", v) for v in values]  # a DataNode wraps its value
    return found


def _source_paths(source: object) -> list[Path]:
    """The local files or folders ``source`` reads: a path, a local zarr array or memmap, or
    those a dask array reads (found in its graph); empty for in-memory or remote data."""
    if isinstance(source, (str, os.PathLike)):
        return [Path(source).expanduser().resolve()]
    own = _store_path(source)
    if own is not None:
        return [own]
    if isinstance(source, da.Array):
        paths = {_store_path(a) for a in _graph_arrays(source)}
        return sorted(p for p in paths if p is not None)
    return []


def _within(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` is ``outer`` or lies inside it, by name or by file identity: a folder
    seen through a bind mount, or under another case on a case-insensitive file system, is
    the same folder."""
    for p in (inner, *inner.parents):
        if p == outer or (p.exists() and outer.exists() and os.path.samefile(p, outer)):
            return True
    return False


def _check_not_the_input(source: object, dest: Path) -> None:
    """Refuse a destination that is the input, holds it, or lies inside it: writing (or
    replacing) it would destroy the data being read."""
    out = dest.resolve()
    for src in _source_paths(source):
        holds, inside = _within(src, out), _within(out, src)
        if holds or inside:
            what = "is" if holds and inside else "contains" if holds else "is inside"
            raise ValueError(
                f"the destination {str(dest)!r} {what} the input {str(src)!r}; writing there "
                "would destroy the input. Choose a destination outside it"
            )


def _files_state(path: Path) -> str:
    """A digest of what is stored at ``path`` now: every file's name, size, modification and
    change time and inode (for a zarr store: its metadata and every chunk). A source rewritten
    in place gets another digest, so its old partial result is not resumed: even with its
    sizes and modification times set back, since the kernel sets the change time on every
    write and ``utime``, and nobody can set it back."""
    h = hashlib.sha256()
    entries = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in entries:
        st = p.stat()
        h.update(f"{p.relative_to(path) if p != path else p.name}\0{st.st_size}\0".encode())
        h.update(f"{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode())
    return h.hexdigest()


def _fingerprint(source: object, arr: da.Array, settings: dict[str, Any]) -> str:
    local = [p for p in _source_paths(source) if p.exists()]
    ident: object
    if isinstance(source, np.ndarray):
        ident = hashlib.sha256(np.ascontiguousarray(source).data).hexdigest()
    elif local:  # a path, a local zarr array, or a dask array reading local stores
        ident = [arr.name if isinstance(source, da.Array) else None]
        ident += [[str(p), _files_state(p)] for p in local]
    elif hasattr(source, "store_path"):  # a zarr array or group in a remote or memory store
        ident = str(source.store_path)
    else:
        ident = arr.name  # dask's deterministic name (from_zarr: the store; from_array: data)
    text = json.dumps([ident, arr.shape, str(arr.dtype), settings], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


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
        "model_sha256": getattr(net, "sha256", None) or _module_hash(net),
        "model_config": (
            cast(Any, net).config.to_dict() if hasattr(net, "config") else type(net).__name__
        ),
        "channel_axis": plan.cax,
        "tile_size": plan.tile,
        "overlap": plan.halo,
        "in_range": (plan.rng.low, plan.rng.high),
        "precision": plan.precision.name,
        "axes": names,
    }


def _provenance(source: object, net: torch.nn.Module, settings: dict[str, Any]) -> dict[str, Any]:
    """The output's record of how it was made: napari-srn's version, the model, the source."""
    from . import __version__

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


def _write(
    sink: OmeZarrSink,
    final: da.Array,
    axes: str,
    title: str,
    progress: bool | Callable[[int, int], object],
    cancel: Callable[[], bool] | None,
    batch_size: int | None,
    unchanged: Callable[[], bool],
) -> None:
    """Compute ``final`` into ``sink`` (an image named after ``title``), ``batch_size`` chunks
    per dask call (default: 2 per worker thread, at least 2), reporting each chunk as
    ``progress`` asks; ``unchanged()`` says whether the input is still as it was."""
    threads = dask.config.get("num_workers", None) or os.cpu_count() or 1
    with reporter(progress, desc="deblur to zarr", unit="chunk") as report:
        sink.write(
            final,
            axes,
            name=f"{title} (deblurred by napari-srn)",
            progress=report,
            cancel=cancel,
            batch=batch_size or max(2, 2 * threads),
            unchanged=unchanged,
        )


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
    axes: str | None = None,
    overwrite: bool = False,
    progress: bool | Callable[[int, int], object] = False,
    cancel: Callable[[], bool] | None = None,
    batch_size: int | None = None,
    precision: str = "auto",
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
    model : str, path or torch.nn.Module, optional
        As for :func:`napari_srn.deblur`.
    channel_axis : int or None, optional
        As for :func:`napari_srn.deblur`.
    tile_size : int or None, optional
        As for :func:`napari_srn.deblur`.
    overlap : int or None, optional
        As for :func:`napari_srn.deblur`.
    device : str, torch.device or None, optional
        As for :func:`napari_srn.deblur`; None lets each dask worker use its own GPU, or its
        CPU (and ``precision="auto"`` the best that device has).
    in_range : (float, float), optional
        As for :func:`napari_srn.deblur`.
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
    precision : {"auto", "float32", "bfloat16", "float16"}, optional
        As for :func:`napari_srn.deblur`, resolved by each dask worker on its device.

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    from .inference.lazy import deblur_lazy, task_model
    from .inference.plan import make_plan
    from .io.zarr import open_lazy

    dest = Path(dest).expanduser()
    _check_not_the_input(source, dest)
    data = source if isinstance(source, np.ndarray) else open_lazy(source)
    check_dtype_and_shape(data.dtype, data.shape)
    cax = normalize_channel_axis(data, channel_axis)
    arr = _frame_chunked(data, cax) if isinstance(data, np.ndarray) else data
    names = ngff_axes(axes, arr.ndim, cax)
    plan = make_plan(arr, model, cax, tile_size, overlap, device, in_range, precision, lazy=True)
    settings = _settings(plan, names)
    provenance = _provenance(source, plan.net, settings)
    fingerprint = _fingerprint(source, arr, settings)
    sink = OmeZarrSink(dest, fingerprint, provenance, overwrite)
    with sink:  # holds the destination's lock until the end
        if sink.complete:
            return dest
        result = deblur_lazy(plan, task_model(model, plan, device), precision, sink)
        final, out_axes = _in_ngff_order(result, names)
        _write(
            sink,
            final,
            out_axes,
            dest.stem,
            progress,
            cancel,
            batch_size,
            lambda: _fingerprint(source, arr, settings) == fingerprint,  # read a changed input?
        )
    return dest
