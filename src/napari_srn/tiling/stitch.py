"""Run a predictor over overlapping tiles and write the cores into output arrays."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from .grid import Tile

__all__ = ["iter_tiled"]

Arrays = np.ndarray | Sequence[np.ndarray]
#: ``np.pad``'s modes that take no extra argument
PadMode = Literal["constant", "edge", "reflect", "symmetric", "wrap"]


def _scaled(s: slice, step: int) -> slice:
    return slice(s.start // step, s.stop // step)


def _index(spatial: Iterable[slice]) -> tuple[Any, ...]:
    """``(..., *spatial)``: the spatial slices, behind any leading axes."""
    return (..., *spatial)


def iter_tiled(
    image: Arrays,
    predict: Callable[..., Arrays],
    out: Arrays,
    tiles: list[Tile],
    pad_mode: PadMode = "reflect",
) -> Iterator[Tile]:
    """Apply ``predict`` tile by tile, yielding each tile once its core is written.

    Arrays have their spatial axes last (``(..., H, W)``); leading axes such as channels are
    handed to ``predict`` whole. ``image`` and ``out`` may each be one array or a sequence of
    arrays: the first of ``image`` sets the full resolution, and any array whose height and
    width are ``1/step`` of it (a ConvLSTM state at a quarter of the size, say) is sliced at
    ``1/step`` of the tile's coordinates, which must then be multiples of ``step``.
    ``predict(*windows)`` must return the windows' outputs in the order of ``out``, each with
    the window's spatial size divided by that output's step. Only cores are written: nothing
    is blended, so an identity predictor reproduces ``image`` exactly.
    """
    inputs = [image] if isinstance(image, np.ndarray) else list(image)
    outputs = [out] if isinstance(out, np.ndarray) else list(out)
    full = inputs[0].shape[-2:]

    def step_of(a: np.ndarray) -> int:
        return full[0] // a.shape[-2] if a.shape[-2] else 1

    in_steps = [step_of(a) for a in inputs]
    out_steps = [step_of(a) for a in outputs]
    for t in tiles:
        padded = any(p for pair in t.pad for p in pair)
        windows = []
        for a, step in zip(inputs, in_steps, strict=True):
            if step == 1:
                w = a[_index(t.read)]
                if padded:
                    w = np.pad(w, [(0, 0)] * (a.ndim - 2) + list(t.pad), mode=pad_mode)
            else:
                if padded:
                    raise ValueError("tiles over arrays of several resolutions cannot be padded")
                w = a[_index(_scaled(s, step) for s in t.read)]
            windows.append(w)
        results = predict(*windows)
        results = [results] if isinstance(results, np.ndarray) else list(results)
        for res, dst, step in zip(results, outputs, out_steps, strict=True):
            expect = tuple(n // step for n in t.window_shape)
            if tuple(res.shape[-2:]) != expect:
                raise RuntimeError(
                    f"predictor returned spatial shape {tuple(res.shape[-2:])} for a window of "
                    f"{t.window_shape} (expected {expect}); it must keep height and width"
                )
            crop = _index(_scaled(s, step) for s in t.crop)
            dst[_index(_scaled(s, step) for s in t.write)] = res[crop]
        yield t
