"""Zarr in: arrays, OME-Zarr images and paths, opened lazily as dask arrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["backing", "is_lazy_source", "open_lazy"]


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
    """
    import dask.array as da
    import zarr

    if isinstance(source, da.Array):
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
