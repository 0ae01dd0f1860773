"""Training data: GoPro-style pairs, sharp images with synthetic shake, zarr pairs.

* :mod:`.sources` — finding the images (pairs, sharp images, zarr groups) as :class:`Item`\\ s,
  the validation split, and :func:`pairs_to_zarr`;
* :mod:`.images` — reading a file or zarr frame, a small cache per worker, the map to [0, 1];
* :mod:`.datasets` — :class:`TrainSet` (random crops, blurred on the fly for sharp data,
  augmented) and :class:`ValSet` (fixed central crops);
* :mod:`.loader` — the batches of each step and the ``DataLoader``.

Every random choice of a training sample is a pure function of ``(seed, global sample
index)``, so the data stream does not depend on the number of workers, and a resumed run sees
exactly the samples an uninterrupted one would (see :mod:`.datasets`).
"""

from .datasets import REUSE_SPAN, TrainSet, ValSet, augment
from .loader import StepBatches, default_workers, loader_throughput, make_loader
from .sources import IMAGE_SUFFIXES, DataSource, Item, find_data, pairs_to_zarr, split

__all__ = [
    "IMAGE_SUFFIXES",
    "REUSE_SPAN",
    "DataSource",
    "Item",
    "StepBatches",
    "TrainSet",
    "ValSet",
    "augment",
    "default_workers",
    "find_data",
    "loader_throughput",
    "make_loader",
    "pairs_to_zarr",
    "split",
]
