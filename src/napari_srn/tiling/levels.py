"""The tiles of a scale-recurrent network, level by level: pure index maths on numbers (the
network's scales, divisor and halo), shared by the eager runner and the lazy graph, which must
cut exactly the same tiles.

An SRN runs each scale (*level*) over the whole downscaled frame; each level is cut into tiles
with :func:`~napari_srn.tiling.grid.tile_slices`, whose cores start on multiples of
:data:`LEVEL_ALIGN`. In the lazy graph a level's tile reads context from its neighbours at three
resolutions (the level, the next coarser prediction, the quarter-size ConvLSTM state), so a
core must be at least that context (:func:`tile_fits`, :func:`fitting_tile`).
"""

from __future__ import annotations

from .grid import Tile, axis_cores, tile_slices

__all__ = [
    "LEVEL_ALIGN",
    "fitting_tile",
    "generic_chunks",
    "generic_tiles",
    "level_chunks",
    "level_min_last",
    "level_tiles",
    "padded_size",
    "tile_fits",
    "tile_step",
    "tiles_to_try",
]

#: Tile cores of every SRN level start on multiples of 8, so that the ConvLSTM state (a quarter
#: of a level, upsampled from a quarter of the next coarser level) splits on whole pixels in the
#: lazy graph as well.
LEVEL_ALIGN = 8


def tile_step(divisor: int) -> int:
    """What a tile size must be a multiple of for a network with this divisor:
    ``max(divisor, LEVEL_ALIGN)``."""
    return max(int(divisor), LEVEL_ALIGN)


def tiles_to_try(tile: int, step: int) -> tuple[int, ...]:
    """``()`` if ``tile`` is a positive multiple of ``step`` (:func:`tile_step`), else the
    nearest valid tiles to suggest: the multiples below and above it, or ``step`` itself. Each
    interface words its own message from this one rule."""
    if tile >= step and tile % step == 0:
        return ()
    low = tile // step * step
    return (low, low + step) if low > 0 else (step,)


def padded_size(size: tuple[int, ...], divisor: int) -> tuple[int, int]:
    """The last two entries of ``size`` rounded up to multiples of ``divisor`` (a frame padded
    for the network)."""
    return tuple(n + -n % divisor for n in size[-2:])  # type: ignore[return-value]


def level_min_last(halo: int) -> int:
    """Smallest last core of a level: the context its neighbour reads from it in the lazy graph
    (``halo`` at the level, ``halo / 2 + 1`` from the coarser level, ``halo / 8 + 1`` from its
    quarter-size state), in level pixels."""
    return halo + 8


def level_tiles(size: tuple[int, int], tile: int | None, halo: int) -> list[Tile]:
    """The tiles of one SRN level of ``size`` pixels (windows are multiples of 4, as one pass
    needs)."""
    return tile_slices(size, tile, halo, 4, align=LEVEL_ALIGN, min_last=level_min_last(halo))


def level_chunks(length: int, tile: int | None, halo: int) -> tuple[int, ...]:
    """Chunk sizes of one axis of one level in the lazy graph: the cores of
    :func:`level_tiles`."""
    return tuple(b - a for a, b in axis_cores(length, tile, LEVEL_ALIGN, level_min_last(halo)))


def generic_tiles(size: tuple[int, int], tile: int | None, halo: int, divisor: int) -> list[Tile]:
    """The tiles of a plain (not scale-recurrent) network, run once on the whole frame."""
    return tile_slices(size, tile, halo, divisor, tile_step(divisor), min_last=halo)


def generic_chunks(length: int, tile: int | None, halo: int, divisor: int) -> tuple[int, ...]:
    """Chunk sizes of one axis for a plain network in the lazy graph: the cores of
    :func:`generic_tiles`."""
    return tuple(b - a for a, b in axis_cores(length, tile, tile_step(divisor), halo))


def tile_fits(size: tuple[int, int], tile: int, halo: int, scales: int, lstm: bool) -> bool:
    """Whether every level's tile cores are large enough for the context their neighbours read
    from them in the lazy graph (the checks the graph makes, without building it)."""
    for s in range(scales):
        for n in size:
            cores = level_chunks(n >> s, tile, halo)
            if len(cores) < 2:
                continue
            if min(cores) < halo:
                return False
            if s + 1 == scales:
                continue  # the coarsest level reads no coarser prediction
            if min(c // 2 for c in cores) < halo // 2 + 1:
                return False
            if lstm and min(c // 8 for c in cores) < halo // 8 + 1:
                return False
    return True


def fitting_tile(
    size: tuple[int, int], tile: int, halo: int, *, scales: int, lstm: bool, divisor: int
) -> int:
    """``tile``, or the smallest larger multiple of ``divisor`` whose cores are large enough
    for the context their neighbours read (:func:`tile_fits`) on a padded frame of ``size``."""
    fits = tile
    while not tile_fits(size, fits, halo, scales, lstm):
        fits += divisor
    return fits
