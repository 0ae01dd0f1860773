"""The multiscale image: NGFF axis names, the resolution pyramid, and the OME-NGFF 0.5
metadata that describes its levels.

Level ``k`` of the pyramid is the full resolution halved ``k`` times by 2x2 means
(:func:`pyramid_level`); :func:`write_multiscales` records each level's scale (``2**k``) and
the half-pixel translation that keeps its pixel centres on the full resolution's.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import dask.array as da
import numpy as np

if TYPE_CHECKING:
    import zarr

__all__ = ["NGFF_ORDER", "ngff_axes", "pyramid_level", "write_multiscales"]

NGFF_ORDER = "tczyx"


def ngff_axes(axes: str | None, ndim: int, cax: int | None) -> str:
    """Axis names of an image, validated (NGFF letters t, c, z, y, x); guessed when None."""
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


def _halve(block: np.ndarray) -> np.ndarray:
    """2x2 mean over the last two axes (even sides), rounded back to an integer dtype."""
    h, w = block.shape[-2:]
    cells = block.reshape(*block.shape[:-2], h // 2, 2, w // 2, 2)
    mean = cells.mean(axis=(-3, -1), dtype=np.float64)
    if np.issubdtype(block.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(block.dtype)


def pyramid_level(prev: da.Array, chunks: tuple[int, ...]) -> da.Array:
    """The next, half-size resolution level of ``prev`` (2x2 means; an odd last row or column
    is repeated), chunked as ``chunks`` (the spatial chunk shape of the full resolution)."""
    h, w = prev.shape[-2:]
    if h % 2 or w % 2:
        prev = da.pad(prev, [(0, 0)] * (prev.ndim - 2) + [(0, h % 2), (0, w % 2)], mode="edge")
    src = prev.rechunk((*prev.chunks[:-2], 2 * chunks[-2], 2 * chunks[-1]))
    out_chunks = tuple(tuple(-(-c // 2) for c in axis) for axis in src.chunks[-2:])
    return src.map_blocks(_halve, chunks=(*src.chunks[:-2], *out_chunks), dtype=prev.dtype)


def write_multiscales(group: zarr.Group, axes: str, n_levels: int, name: str) -> None:
    """Write the OME-NGFF ``multiscales`` metadata of ``n_levels`` levels (``"0"``, ``"1"``,
    ...) into ``group``: each level's scale, and from level 1 on its translation."""
    with warnings.catch_warnings():  # ome-zarr deprecates its own Scaler at import
        warnings.simplefilter("ignore", DeprecationWarning)
        from ome_zarr.writer import write_multiscales_metadata

    spatial = {len(axes) - 2, len(axes) - 1}
    datasets = []
    for k in range(n_levels):
        f = float(2**k)
        scale = [f if i in spatial else 1.0 for i in range(len(axes))]
        shift = [(f - 1) / 2 if i in spatial else 0.0 for i in range(len(axes))]
        transforms = [{"type": "scale", "scale": scale}]
        if k:
            transforms.append({"type": "translation", "translation": shift})
        datasets.append({"path": str(k), "coordinateTransformations": transforms})
    write_multiscales_metadata(group, datasets=datasets, axes=list(axes), name=name)
