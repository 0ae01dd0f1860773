"""The eager runner: the level-by-level SRN tiler, a plain tiler for other models, and the
frame loop of :func:`napari_srn.iter_deblur` (with its out-of-memory retry).

An SRN sees global context through its coarse scales, so cutting the full-resolution image into
tiles and running the whole multi-scale network on each would change the result far from the
tile borders. Instead each scale's pass runs over the whole (downscaled) image, itself cut into
tiles with a small halo: the coarse predictions and ConvLSTM states are computed once for the
whole image, exactly as an untiled forward pass computes them, and only the single-pass edge
effect, which decays within a few dozen pixels, is left at tile borders.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from .._progress import Progress
from ..model.srn import SRN, downscale, resize, resize_state
from ..tiling import generic_tiles, iter_tiled, level_tiles, padded_size, tile_step
from .plan import NetFacts, Plan, layout
from .precision import Precision

__all__ = ["Progress", "Runner", "drain", "run_frames"]

R = TypeVar("R")


def drain(gen: Generator[object, None, R]) -> R:
    """Run a generator to its end and return its return value (e.g. ``Runner.run``)."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


@dataclass
class Runner:
    """Runs a model on ``(C, H, W)`` float32 frames with H, W multiples of ``divisor``, in a
    resolved precision (:class:`~napari_srn.inference.precision.Precision`, which names the
    device; ``Precision.reference()`` is float32 on the CPU)."""

    model: torch.nn.Module
    policy: Precision
    tile: int | None
    halo: int

    @functools.cached_property
    def divisor(self) -> int:
        return NetFacts.of(self.model).divisor

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
        return generic_tiles(shape, self.tile, self.halo, self.divisor)

    def run(self, frame: np.ndarray) -> Generator[None, None, np.ndarray]:
        """Generator: yields after each tile, returns the prediction ``(C, H, W)`` float32."""
        p = self.policy
        with torch.inference_mode(), p.autocast():
            if isinstance(self.model, SRN):
                return (yield from self._run_srn(frame))
            out = np.empty(frame.shape, np.float32)

            def predict(window: np.ndarray) -> np.ndarray:
                return p.to_numpy(self.model(p.to_device(window)))

            tiles = self._generic_tiles(frame.shape[-2:])
            for _ in iter_tiled(frame, predict, out, tiles):
                yield
            return out

    def _run_srn(self, frame: np.ndarray) -> Generator[None, None, np.ndarray]:
        net: SRN = self.model  # type: ignore[assignment]
        p = self.policy
        cfg = net.config
        height, width = frame.shape[-2:]
        x = torch.from_numpy(frame)[None]
        pred: torch.Tensor | None = None
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        for s in reversed(range(cfg.scales)):
            size = (height >> s, width >> s)
            xs = downscale(x, size, cfg.pyramid)
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
                t = [p.to_device(w) for w in windows]
                st = (t[2], t[3]) if len(t) == 4 else None
                y, st = net.level(t[0], t[1], st)
                res = [p.to_numpy(y)]
                if st is not None:
                    res += [p.to_numpy(st[0]), p.to_numpy(st[1])]
                return res

            # windows and cores are multiples of 4 at every level, as the state slices need
            for _ in iter_tiled(inputs, predict, outputs, level_tiles(size, self.tile, self.halo)):
                yield
            pred = torch.from_numpy(out)[None]
            if net.lstm is not None:
                state = (torch.from_numpy(outputs[1])[None], torch.from_numpy(outputs[2])[None])
        assert pred is not None
        return pred[0].numpy()


def _pad_to(x: np.ndarray, divisor: int) -> np.ndarray:
    """``x`` reflect-padded at the bottom and right to :func:`~napari_srn.tiling.padded_size`."""
    h, w = x.shape[-2:]
    ph, pw = (n - m for n, m in zip(padded_size((h, w), divisor), (h, w), strict=True))
    if not (ph or pw):
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="reflect")


def run_frames(plan: Plan, out: np.ndarray) -> Generator[Progress, None, np.ndarray]:
    """Deblur every frame and channel group of ``plan`` into ``out`` (the caller's layout),
    yielding :class:`~napari_srn.Progress` after every tile; returns ``out``.

    On CUDA, a frame that runs out of memory is retried with half the tile, with a warning.
    """
    dst = layout(out, plan.cax)
    if plan.alpha:
        dst[..., -1, :, :] = plan.src[..., -1, :, :]  # RGBA or grey+alpha
    runner = Runner(plan.net, plan.precision, plan.tile, plan.halo)
    frames = list(np.ndindex(*plan.src.shape[:-3]))
    height, width = plan.color.shape[-2:]
    remaining = len(frames) * len(plan.groups)
    total = remaining * runner.n_tiles(plan.padded)
    done = 0
    for idx in frames:
        for group in plan.groups:
            x = _pad_to(plan.intensity.to_model(plan.color[idx][group]), runner.divisor)
            if plan.replicate:
                x = np.repeat(x, 3, axis=0)
            while True:  # retried with smaller tiles if the GPU runs out of memory
                start = done
                try:
                    gen = runner.run(x)
                    while True:
                        try:
                            next(gen)
                        except StopIteration as stop:
                            y = stop.value
                            break
                        done += 1
                        yield Progress(done, total)
                    break
                except torch.cuda.OutOfMemoryError:
                    smaller = _smaller_tile(runner, plan.padded)
                    warnings.warn(
                        f"out of GPU memory with tile_size={runner.tile}; retrying this frame "
                        f"with tile_size={smaller}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    runner.tile = smaller
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    done = start
                    total = done + remaining * runner.n_tiles(plan.padded)
            remaining -= 1
            if plan.replicate:
                y = np.clip(y, 0.0, 1.0).mean(axis=0, keepdims=True)
            dst[idx][group] = plan.intensity.from_model(y[:, :height, :width])
    return out


def _smaller_tile(runner: Runner, shape: tuple[int, int]) -> int:
    """Half the current tile (or of the image, for a single tile), or raise if at the floor."""
    current = runner.tile if runner.tile is not None else max(shape)
    current = min(current, max(shape))
    step = tile_step(runner.divisor)
    smaller = current // 2 // step * step
    if smaller < 2 * step:
        raise MemoryError(
            f"out of GPU memory even with tile_size={current}; free GPU memory, use a "
            "narrower model, or pass device='cpu'"
        )
    return smaller
