"""Tiling: pure index maths (:mod:`.grid`) and the tile loop (:mod:`.stitch`); no torch here."""

from .grid import Tile, axis_cores, tile_slices, window_pad
from .stitch import iter_tiled

__all__ = ["Tile", "axis_cores", "iter_tiled", "tile_slices", "window_pad"]
