"""Index maths for overlapping tiles.

An image axis of length ``L`` is cut into *cores* of at most ``tile`` pixels (multiples of the
divisor, except the last). Each core is read with ``halo`` pixels of context on each side,
clipped at the image border, so a tile at the border sees exactly what an untiled run sees there.
The read window is then padded to a multiple of ``divisor`` on the side(s) that touch the image
border (both halves of the padding on interior windows). After the prediction, only the core is
kept (``crop``) and written (``write``): no blending, so an identity predictor comes back exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["AxisTile", "Tile", "axis_cores", "axis_tiles", "tile_slices", "window_pad"]


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis: ``read`` from the image, ``pad`` it, keep ``crop``, ``write`` it."""

    read: slice
    pad: tuple[int, int]
    crop: slice  # in coordinates of the padded window
    write: slice


@dataclass(frozen=True)
class Tile:
    """A 2-D tile: per-axis slices for ``(rows, cols)``."""

    read: tuple[slice, slice]
    pad: tuple[tuple[int, int], tuple[int, int]]
    crop: tuple[slice, slice]
    write: tuple[slice, slice]

    @property
    def window_shape(self) -> tuple[int, int]:
        """Shape of the padded window handed to the predictor."""
        return tuple(
            r.stop - r.start + p[0] + p[1] for r, p in zip(self.read, self.pad, strict=True)
        )


def axis_cores(
    length: int, tile: int | None, divisor: int = 1, min_last: int = 0
) -> list[tuple[int, int]]:
    """Split ``range(length)`` into cores of at most ``tile`` pixels.

    The cores form a regular grid (so that they can be the chunks of a zarr array): all but the
    last have the same size, the smallest multiple of ``divisor`` that needs no more cores than
    ``tile`` would, and the last takes the rest. A last core shorter than ``min_last`` (the
    context its neighbour must read from it) is merged into the one before. ``tile=None`` (or
    ``tile >= length``) gives one core.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if tile is None or tile >= length:
        return [(0, length)]
    if tile < 1 or tile % divisor:
        raise ValueError(f"tile must be a positive multiple of {divisor}, got {tile}")
    n = math.ceil(length / tile)
    step = math.ceil(math.ceil(length / n) / divisor) * divisor
    cores = [(a, min(a + step, length)) for a in range(0, length, step)]
    if len(cores) > 1 and cores[-1][1] - cores[-1][0] < min_last:
        last = cores.pop()
        cores[-1] = (cores[-1][0], last[1])
    return cores


def window_pad(need: int, at_start: bool, at_end: bool) -> tuple[int, int]:
    """Padding (before, after) that brings a read window to a multiple of the divisor:
    ``need`` pixels on the side that touches the image border (the end if both do), split in
    halves on an interior window."""
    if at_end:
        return (0, need)
    if at_start:
        return (need, 0)
    return (need // 2, need - need // 2)


def axis_tiles(
    length: int,
    tile: int | None,
    halo: int,
    divisor: int = 1,
    align: int | None = None,
    min_last: int = 0,
) -> list[AxisTile]:
    """Tiles along one axis; see the module docstring. Cores start on multiples of ``align``
    (default: ``divisor``); see :func:`axis_cores` for ``min_last``."""
    if halo < 0:
        raise ValueError(f"halo must be >= 0, got {halo}")
    out = []
    for start, stop in axis_cores(length, tile, divisor if align is None else align, min_last):
        r0, r1 = max(0, start - halo), min(length, stop + halo)
        pad = window_pad(-(r1 - r0) % divisor, r0 == 0, r1 == length)
        c0 = start - r0 + pad[0]
        out.append(AxisTile(slice(r0, r1), pad, slice(c0, c0 + stop - start), slice(start, stop)))
    return out


def tile_slices(
    shape: tuple[int, int],
    tile: int | tuple[int, int] | None,
    halo: int,
    divisor: int = 1,
    align: int | None = None,
    min_last: int = 0,
) -> list[Tile]:
    """Overlapping tiles covering a ``(height, width)`` image, in row-major order.

    Parameters
    ----------
    shape : (int, int)
        Height and width of the image.
    tile : int or (int, int) or None
        Largest core (the part of a tile that is written) per axis; None means one tile.
    halo : int
        Context read on each side of a core (clipped at the image border).
    divisor : int
        The padded window handed to the predictor has sides that are multiples of this.
    align : int, optional
        Cores start on multiples of this (default: ``divisor``); ``tile`` must be one.
    min_last : int
        A last core shorter than this is merged into the previous one.

    Returns
    -------
    list of Tile
        The cores partition the image exactly.
    """
    tiles = tile if isinstance(tile, tuple) else (tile, tile)
    rows = axis_tiles(shape[0], tiles[0], halo, divisor, align, min_last)
    cols = axis_tiles(shape[1], tiles[1], halo, divisor, align, min_last)
    return [
        Tile((r.read, c.read), (r.pad, c.pad), (r.crop, c.crop), (r.write, c.write))
        for r in rows
        for c in cols
    ]
