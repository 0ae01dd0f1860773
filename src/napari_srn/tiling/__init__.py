"""Tiling: pure index maths (:mod:`.grid`), the tiles of a scale-recurrent network level by level
(:mod:`.levels`) and the tile loop (:mod:`.stitch`); no torch here."""

from .grid import Tile, axis_cores, tile_slices, window_pad
from .levels import (
    LEVEL_ALIGN,
    fitting_tile,
    generic_chunks,
    generic_tiles,
    level_chunks,
    level_min_last,
    level_tiles,
    padded_size,
    tile_fits,
    tile_step,
    tiles_to_try,
)
from .stitch import iter_tiled

__all__ = [
    "LEVEL_ALIGN",
    "Tile",
    "axis_cores",
    "fitting_tile",
    "generic_chunks",
    "generic_tiles",
    "iter_tiled",
    "level_chunks",
    "level_min_last",
    "level_tiles",
    "padded_size",
    "tile_fits",
    "tile_slices",
    "tile_step",
    "tiles_to_try",
    "window_pad",
]
