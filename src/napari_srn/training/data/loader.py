"""Batches for the training loop: step ``s`` gets samples ``s * batch .. (s + 1) * batch - 1``
(:class:`StepBatches`), loaded by a torch ``DataLoader`` (:func:`make_loader`), and the
loader's own throughput (:func:`loader_throughput`) to compare with the model's speed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from torch.utils.data import DataLoader

from .datasets import TrainSet

__all__ = ["StepBatches", "default_workers", "loader_throughput", "make_loader"]


class StepBatches:
    """Batch sampler: step ``s`` (0-based) gets samples ``s * batch .. (s + 1) * batch - 1``."""

    def __init__(self, start: int, stop: int, batch_size: int) -> None:
        self.start, self.stop, self.batch_size = start, stop, batch_size

    def __iter__(self) -> Iterator[list[int]]:
        b = self.batch_size
        for step in range(self.start, self.stop):
            yield list(range(step * b, (step + 1) * b))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def default_workers() -> int:
    """CPU cores minus one (the training process), at least 1 and at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def make_loader(
    dataset: TrainSet,
    start: int,
    stop: int,
    batch_size: int,
    num_workers: int | None,
    pin_memory: bool = False,
) -> DataLoader:
    workers = default_workers() if num_workers is None else num_workers
    return DataLoader(
        dataset,
        batch_sampler=StepBatches(start, stop, batch_size),
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers else None,
    )


def loader_throughput(
    dataset: TrainSet,
    batch_size: int,
    num_workers: int | None,
    batches: int = 20,
    warmup: int | None = None,
) -> dict[str, float]:
    """Samples per second the loader delivers on its own (no model), in steady state.

    ``warmup`` batches are drawn first and not timed (default: one epoch, so that each
    worker's image cache is as warm as it gets in a long run). Compare the result with the
    model's steps/s x batch size: the loader keeps up when it is larger.
    """
    if warmup is None:
        warmup = -(-len(dataset) // batch_size)
    loader = make_loader(dataset, 0, warmup + batches, batch_size, num_workers)
    it = iter(loader)
    for _ in range(max(1, warmup)):
        next(it)
    t0 = time.perf_counter()
    n = sum(len(b[0]) for b in it)
    seconds = time.perf_counter() - t0
    workers = default_workers() if num_workers is None else num_workers
    return {"samples_per_s": n / seconds, "workers": float(workers), "samples": float(n)}
