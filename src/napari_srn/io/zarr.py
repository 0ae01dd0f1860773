"""Zarr in: arrays, OME-Zarr images and paths, opened lazily as dask arrays."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dask.array as da

__all__ = [
    "MAX_CHUNKS",
    "MAX_CHUNK_BYTES",
    "backing",
    "check_chunk_count",
    "check_chunk_grid",
    "is_lazy_source",
    "open_lazy",
]

#: Limits on a lazy input's chunk grid, checked from its metadata before anything is read and
#: before a dask graph is made (a zarr store's ``zarr.json`` of a few hundred bytes can declare
#: any shape): a zarr chunk is read and decompressed whole, so one of more than 1 GiB is
#: refused; each chunk (zarr or dask) is a task of the graph (about 1.6 ms and 16 kB each to
#: set up, measured on 2 cores), so more than 65,536 of them (about 2 minutes and 1 GB before
#: the first tile) are refused.
MAX_CHUNK_BYTES = 1 << 30
MAX_CHUNKS = 1 << 16


def check_chunk_grid(
    shape: tuple[int, ...], chunk: tuple[int, ...], itemsize: int, what: str
) -> None:
    """Refuse (ValueError) a zarr array, named ``what``, whose chunks of shape ``chunk`` are
    larger than :data:`MAX_CHUNK_BYTES` or more than :data:`MAX_CHUNKS`. Python integers
    throughout, from the shapes alone: a declared shape of 10^31 neither overflows nor
    allocates."""
    largest = math.prod(chunk) * itemsize
    if largest > MAX_CHUNK_BYTES:
        raise ValueError(
            f"{what} of shape ({_dims(shape)}) has a chunk of {largest:,} bytes; napari-srn "
            f"reads at most 1 GiB ({MAX_CHUNK_BYTES:,} bytes) a chunk (each is read whole). "
            "Rewrite it with smaller chunks, e.g. 1024 x 1024 pixels each"
        )
    count = math.prod(-(-n // c) if c else 0 for n, c in zip(shape, chunk, strict=True))
    check_chunk_count(shape, count, what)


def check_chunk_count(shape: tuple[int, ...], count: int, what: str) -> None:
    """Refuse (ValueError) an array, named ``what``, of more than :data:`MAX_CHUNKS` chunks."""
    if count > MAX_CHUNKS:
        raise ValueError(
            f"{what} of shape ({_dims(shape)}) has {count:,} chunks; napari-srn takes at most "
            f"{MAX_CHUNKS:,} chunks (each is a task to set up). Pass larger chunks, e.g. "
            "dask.array.from_zarr(path, chunks=(4096, 4096)), or a part of the array"
        )


def _dims(shape: tuple[int, ...]) -> str:
    return " x ".join(str(n) for n in shape)


def backing(data: object) -> str:
    """What holds ``data``: ``"dask"``, ``"zarr"``, ``"numpy"`` or ``"other"``, from its class's
    package (no import of dask or zarr; a proxy's class is used, not ``type()``)."""
    module = (getattr(data.__class__, "__module__", "") or "").split(".")[0]
    return module if module in ("dask", "zarr", "numpy") else "other"


def is_lazy_source(image: object) -> bool:
    """True for dask arrays, zarr arrays/groups, and paths (str or PathLike) to zarr stores."""
    return isinstance(image, (str, os.PathLike)) or backing(image) in ("dask", "zarr")


def open_lazy(source: object) -> da.Array:
    """Return ``source`` as a dask array without reading its data.

    Accepts a dask array, a zarr array (zarr-python 3; stores written by zarr 2 too), a zarr
    group holding an OME-Zarr image (its full-resolution level is used), or a path to either.
    A zarr array whose metadata declares chunks beyond :data:`MAX_CHUNK_BYTES` or
    :data:`MAX_CHUNKS`, or a dask array of more than :data:`MAX_CHUNKS` chunks, is refused
    (ValueError) before anything is read or a graph is made.
    """
    import dask.array as da
    import zarr

    if isinstance(source, da.Array):
        # its chunks' sizes are the caller's (views of a numpy array, say): only their count
        check_chunk_count(source.shape, math.prod(source.numblocks), "the dask array")
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"zarr store {str(path)!r} does not exist")
        if not path.is_dir():
            raise TypeError(
                f"{str(path)!r} is a file, not a zarr store; read image files with "
                "napari_srn.io.read_image and pass the array"
            )
        try:
            source = zarr.open(str(path), mode="r")
        except Exception as err:  # zarr raises several types for a folder that is not a store
            raise ValueError(f"{str(path)!r} is not a readable zarr store: {err}") from err
    if isinstance(source, zarr.Group):
        source = _full_resolution(source)
    if isinstance(source, zarr.Array):
        what = f"zarr array {str(source.store_path)!r}"
        check_chunk_grid(source.shape, source.chunks, source.dtype.itemsize, what)
        return da.from_zarr(source)
    raise TypeError(
        f"expected a dask array, a zarr array or group, or a path to a zarr store, got "
        f"{type(source).__name__}"
    )


def _full_resolution(group):
    """The first (full-resolution) dataset of an OME-Zarr image group."""
    attrs = dict(group.attrs)
    multiscales = attrs.get("ome", attrs).get("multiscales")
    if multiscales:
        return group[multiscales[0]["datasets"][0]["path"]]
    arrays = sorted(name for name, _ in group.arrays())
    if len(arrays) == 1:
        return group[arrays[0]]
    raise ValueError(
        f"zarr group {group.store_path!s} is not an OME-Zarr image and holds {len(arrays)} "
        f"arrays ({arrays[:5]}); pass the array to deblur (e.g. group['0'])"
    )
