"""Tiled inference with torch: the level-by-level SRN runner and a plain one for other models.

An SRN sees global context through its coarse scales, so cutting the full-resolution image into
tiles and running the whole multi-scale network on each would change the result far from the
tile borders. Instead each scale's pass runs over the whole (downscaled) image, itself cut into
tiles with a small halo: the coarse predictions and ConvLSTM states are computed once for the
whole image, exactly as an untiled forward pass computes them, and only the single-pass edge
effect, which decays within a few dozen pixels, is left at tile borders.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from .model.srn import SRN, resize, resize_state
from .tiling import iter_tiled, tile_slices

__all__ = ["LEVEL_ALIGN", "Runner", "drain", "level_tiles"]

#: Tile cores of every SRN level start on multiples of 8, so that the ConvLSTM state (a quarter
#: of a level, upsampled from a quarter of the next coarser level) splits on whole pixels in the
#: lazy graph as well (`napari_srn._lazy`), which must cut exactly the same tiles.
LEVEL_ALIGN = 8


def drain(gen: Generator):
    """Run a generator to its end and return its return value (e.g. ``Runner.run``)."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def level_min_last(halo: int) -> int:
    """Smallest last core of a level: the context its neighbour reads from it in the lazy graph
    (``halo`` at the level, ``halo / 2 + 1`` from the coarser level, ``halo / 8 + 1`` from its
    quarter-size state), in level pixels."""
    return halo + 8


def level_tiles(size: tuple[int, int], tile: int | None, halo: int) -> list:
    """The tiles of one SRN level (windows are multiples of 4, as one pass needs)."""
    return tile_slices(size, tile, halo, 4, align=LEVEL_ALIGN, min_last=level_min_last(halo))


@dataclass
class Runner:
    """Runs a model on ``(C, H, W)`` float32 frames with H, W multiples of ``divisor``."""

    model: torch.nn.Module
    device: torch.device
    tile: int | None
    halo: int

    @property
    def divisor(self) -> int:
        return int(getattr(self.model, "divisor", 1))

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    def _to_device(self, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a))[None].to(self.device)
        if self.device.type == "cuda":
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    @staticmethod
    def _to_numpy(t: torch.Tensor) -> np.ndarray:
        return t[0].float().cpu().numpy()

    def n_tiles(self, shape: tuple[int, int]) -> int:
        """Number of model calls (progress steps) for a frame of this padded shape."""
        if isinstance(self.model, SRN):
            levels = range(self.model.config.scales)
            return sum(
                len(level_tiles((shape[0] >> s, shape[1] >> s), self.tile, self.halo))
                for s in levels
            )
        return len(self._generic_tiles(shape))

    def _generic_tiles(self, shape: tuple[int, int]) -> list:
        align = max(self.divisor, LEVEL_ALIGN)
        return tile_slices(shape, self.tile, self.halo, self.divisor, align, min_last=self.halo)

    def run(self, frame: np.ndarray) -> Generator[None, None, np.ndarray]:
        """Generator: yields after each tile, returns the prediction ``(C, H, W)`` float32."""
        with torch.inference_mode(), self._autocast():
            if isinstance(self.model, SRN):
                return (yield from self._run_srn(frame))
            out = np.empty(frame.shape, np.float32)

            def predict(window: np.ndarray) -> np.ndarray:
                return self._to_numpy(self.model(self._to_device(window)))

            tiles = self._generic_tiles(frame.shape[-2:])
            for _ in iter_tiled(frame, predict, out, tiles):
                yield
            return out

    def _run_srn(self, frame: np.ndarray) -> Generator[None, None, np.ndarray]:
        net: SRN = self.model  # type: ignore[assignment]
        cfg = net.config
        height, width = frame.shape[-2:]
        x = torch.from_numpy(frame)[None]
        pred: torch.Tensor | None = None
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        for s in reversed(range(cfg.scales)):
            size = (height >> s, width >> s)
            xs = resize(x, size)
            prev = xs if pred is None else resize(pred, size)
            state = resize_state(state, size)
            inputs = [xs[0].numpy(), prev[0].numpy()]
            out = np.empty((cfg.channels, *size), np.float32)
            outputs = [out]
            if net.lstm is not None:
                quarter = (net.lstm.channels, size[0] // 4, size[1] // 4)
                outputs += [np.empty(quarter, np.float32), np.empty(quarter, np.float32)]
                if state is not None:
                    inputs += [state[0][0].numpy(), state[1][0].numpy()]

            def predict(*windows: np.ndarray) -> list[np.ndarray]:
                t = [self._to_device(w) for w in windows]
                st = (t[2], t[3]) if len(t) == 4 else None
                y, st = net.level(t[0], t[1], st)
                res = [self._to_numpy(y)]
                if st is not None:
                    res += [self._to_numpy(st[0]), self._to_numpy(st[1])]
                return res

            # windows and cores are multiples of 4 at every level, as the state slices need
            for _ in iter_tiled(inputs, predict, outputs, level_tiles(size, self.tile, self.halo)):
                yield
            pred = torch.from_numpy(out)[None]
            if net.lstm is not None:
                state = (torch.from_numpy(outputs[1])[None], torch.from_numpy(outputs[2])[None])
        assert pred is not None
        return pred[0].numpy()
