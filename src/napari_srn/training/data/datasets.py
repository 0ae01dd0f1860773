"""The training and validation sets: crops of the sources' images as ``(blurred, sharp)``
tensor pairs, blurred on the fly for sharp-only data.

Every random choice of a training sample (which image, where to crop, the kernel, noise,
flips) is a pure function of ``(seed, global sample index)``, and sample ``g`` belongs to
step ``g // batch_size``. So the data stream does not depend on the number of workers, and a
resumed run sees exactly the samples an uninterrupted one would.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ...inference.intensity import intensity_range
from ...synthesis.params import MotionParams, ShakeParams
from ...synthesis.shake import random_kernel, reflect_take, shake
from .images import LUMA, ImageCache, read_raw, read_window, to_tensor, to_unit, zarr_frame
from .sources import STREAM_ORDER, STREAM_REUSE, STREAM_SAMPLE, STREAM_VAL, Item, listing

__all__ = ["REUSE_SPAN", "TrainSet", "ValSet", "augment"]

#: Samples between two uses of one pair when pairs are reused (``reuse`` > 1).
REUSE_SPAN = 32


def augment(rng: np.random.Generator, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Apply one random element of the 8 flips/90-degree rotations to every ``(H, W, ...)``
    array alike."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(0, 1))
        if flip:
            a = a[:, ::-1]
        out.append(np.ascontiguousarray(a))
    return tuple(out)


class _Base(Dataset):
    """What both sets share: the items, a cache of decoded images, and one sample's
    ``(blurred, sharp)`` crops at a window (read for pairs, synthesised for sharp images)."""

    def __init__(
        self,
        items: tuple[Item, ...],
        *,
        channels: int,
        seed: int,
        shake: ShakeParams | None,
        synthetic: bool,
        cache: int = 0,
        motion: MotionParams | None = None,
    ) -> None:
        self.items = tuple(items)
        self.channels = channels
        self.seed = seed
        self.params = shake or ShakeParams()
        self.motion = motion or MotionParams()
        self.synthetic = synthetic
        self.cache = ImageCache(cache)
        self._ranges: dict[str, tuple[float, float]] = {}

    def _zarr_range(self, ref: str) -> tuple[float, float]:
        """The intensity range of a zarr frame: 0..255 for uint8, else from the whole frame
        (read once per worker)."""
        if ref not in self._ranges:
            array, _ = zarr_frame(ref)
            if array.dtype == np.uint8:
                self._ranges[ref] = (0.0, 255.0)
            else:
                r = intensity_range(read_raw(ref))
                self._ranges[ref] = (r.low, r.high)
        return self._ranges[ref]

    def _sample(
        self, item: Item, rng: np.random.Generator, top: int, left: int, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(blurred, sharp) float32 (H, W, C) crops at ``top, left``."""
        if self.synthetic:
            raw, lo, hi = self.cache.get(item.sharp)
            # drawn only when asked for, so runs without motion keep their random streams
            if self.motion.motion_fraction > 0 and rng.uniform() < self.motion.motion_fraction:
                return self._motion_sample(raw, lo, hi, rng, top, left, height, width)
            kernel = random_kernel(rng, self.params)
            pad = kernel.shape[0] // 2
            region = to_unit(
                reflect_take(raw, top - pad, left - pad, height + 2 * pad, width + 2 * pad),
                lo,
                hi,
                self.channels,
            )
            sharp = region[pad : pad + height, pad : pad + width]
            blurred = shake(region, kernel, rng, self.params)
            return blurred, sharp
        assert item.blurred is not None
        # both images of a pair are mapped with the blurred image's range (as deblur would)
        if item.blurred.startswith("zarr:"):
            lo, hi = self._zarr_range(item.blurred)
            window = (top, left, height, width)
            return (
                to_unit(read_window(item.blurred, *window), lo, hi, self.channels),
                to_unit(read_window(item.sharp, *window), lo, hi, self.channels),
            )
        raw_b, lo, hi = self.cache.get(item.blurred)
        raw_s, _, _ = self.cache.get(item.sharp, range_of=item.blurred)
        if raw_b.shape[:2] != raw_s.shape[:2]:
            raise ValueError(
                f"size mismatch: {item.sharp!r} is {raw_s.shape[:2]} but "
                f"{item.blurred!r} is {raw_b.shape[:2]}"
            )
        win = (slice(top, top + height), slice(left, left + width))
        return (
            to_unit(raw_b[win], lo, hi, self.channels),
            to_unit(raw_s[win], lo, hi, self.channels),
        )

    def _motion_sample(
        self,
        raw: np.ndarray,
        lo: float,
        hi: float,
        rng: np.random.Generator,
        top: int,
        left: int,
        height: int,
        width: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A realistic motion-blur pair (:mod:`napari_srn.synthesis.motion`) of the crop at
        ``top, left``, with moving objects cut from other images of the set."""
        from ...synthesis.motion import Scene, render  # torch's grid_sample: only where used

        m = self.motion.margin
        region = reflect_take(raw, top - m, left - m, height + 2 * m, width + 2 * m)
        region = to_unit(region, lo, hi, self.channels)
        low, high = self.motion.moving_objects
        objects = tuple(
            self._object(rng, height, width) for _ in range(int(rng.integers(low, high + 1)))
        )
        scene = Scene(raw.shape[:2], (top - m, left - m))
        return render(region, scene, rng, self.motion, objects)

    def _object(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A random patch, 20-60 % of the crop's sides, of a random image of the set."""
        item = self.items[int(rng.integers(len(self.items)))]
        raw, lo, hi = self.cache.get(item.sharp)
        h = max(2, int(height * rng.uniform(0.2, 0.6)))
        w = max(2, int(width * rng.uniform(0.2, 0.6)))
        top = int(rng.integers(max(1, raw.shape[0] - h + 1)))
        left = int(rng.integers(max(1, raw.shape[1] - w + 1)))
        return to_unit(reflect_take(raw, top, left, h, w), lo, hi, self.channels)


class TrainSet(_Base):
    """Random crops; index ``g`` is the global sample number (see the module docstring)."""

    def __init__(
        self,
        items: tuple[Item, ...],
        *,
        crop: int,
        augment: bool = True,
        crop_tries: int = 1,
        gray_fraction: float = 0.0,
        reuse: int = 1,
        **kw: Any,
    ) -> None:
        super().__init__(items, **kw)
        if reuse < 1:
            raise ValueError(f"reuse must be >= 1, got {reuse}")
        self.reuse = reuse
        self._pairs: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        if crop_tries < 1:
            raise ValueError(f"crop_tries must be >= 1, got {crop_tries}")
        if not 0 <= gray_fraction <= 1:
            raise ValueError(f"gray_fraction must be in [0, 1], got {gray_fraction}")
        self.crop_tries = crop_tries
        self.gray_fraction = gray_fraction
        small = [
            f"{i.sharp} ({i.shape[0]}x{i.shape[1]})" for i in self.items if min(i.shape) < crop
        ]
        if small:
            raise ValueError(
                f"{len(small)} training image(s) are smaller than crop={crop}: "
                f"{listing(small)}. Lower --crop or remove them"
            )
        if not self.items:
            raise ValueError("no training images are left after the validation split")
        self.crop = crop
        self.augment = augment
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def _texture(self, item: Item, top: int, left: int) -> float:
        """Mean absolute gradient of the sharp crop at ``top, left`` (every 2nd pixel of the
        first channel): how much there is to deblur there. Only compared between crops of
        one image, so the image's intensity range does not matter."""
        c = self.crop
        if item.sharp.startswith("zarr:"):
            raw = read_window(item.sharp, top, left, c, c)
        else:
            raw = self.cache.get(item.sharp, range_of=item.blurred)[0]
            raw = raw[top : top + c, left : left + c]
        x = raw[::2, ::2, 0].astype(np.float32)
        return float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())

    def order(self, epoch: int) -> np.ndarray:
        """The shuffled order of the items in ``epoch`` (a pure function of seed and epoch)."""
        if self._perm is None or self._perm[0] != epoch:
            rng = np.random.default_rng([self.seed, STREAM_ORDER, epoch])
            self._perm = (epoch, rng.permutation(len(self.items)))
        return self._perm[1]

    def __getitem__(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.reuse > 1:
            return self._reused(int(g))
        blurred, sharp, rng = self._crop_pair(int(g))
        return self._finish(blurred, sharp, rng)

    def source(self, g: int) -> int:
        """The sample whose pair sample ``g`` uses: itself, or with ``reuse`` R > 1, one of
        :data:`REUSE_SPAN` samples that each serve R samples, ``REUSE_SPAN`` apart."""
        span = REUSE_SPAN * self.reuse
        return g // span * REUSE_SPAN + g % REUSE_SPAN

    def _reused(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``g`` from its source's pair (rendered once, kept while it is reused), with
        its own grey choice and flips (a pure function of the seed and ``g``)."""
        src = self.source(g)
        if src not in self._pairs:
            self._pairs[src] = self._crop_pair(src)[:2]
            while len(self._pairs) > REUSE_SPAN:
                self._pairs.popitem(last=False)
        blurred, sharp = self._pairs[src]
        return self._finish(blurred, sharp, np.random.default_rng([self.seed, STREAM_REUSE, g]))

    def _crop_pair(self, g: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """Sample ``g``'s (blurred, sharp) crops before grey and flips, and its generator."""
        epoch, pos = divmod(g, len(self.items))
        item = self.items[self.order(epoch)[pos]]
        rng = np.random.default_rng([self.seed, STREAM_SAMPLE, g])
        height, width = item.shape
        top = int(rng.integers(height - self.crop + 1))
        left = int(rng.integers(width - self.crop + 1))
        if self.crop_tries > 1:
            tops = [top, *rng.integers(height - self.crop + 1, size=self.crop_tries - 1)]
            lefts = [left, *rng.integers(width - self.crop + 1, size=self.crop_tries - 1)]
            scores = [self._texture(item, t, c) for t, c in zip(tops, lefts, strict=True)]
            best = int(np.argmax(scores))
            top, left = int(tops[best]), int(lefts[best])
        blurred, sharp = self._sample(item, rng, top, left, self.crop, self.crop)
        return blurred, sharp, rng

    def _finish(
        self, blurred: np.ndarray, sharp: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Grey (a ``gray_fraction`` share) and flips, drawn from ``rng``; then tensors."""
        # the draw happens only when asked for, so runs without it keep their random streams
        if self.gray_fraction > 0 and sharp.shape[-1] == 3 and rng.uniform() < self.gray_fraction:
            # blurring is linear and acts on each channel alike: grey of the blurred crop is
            # the blurred grey crop (noise aside, which becomes grey noise of lower sigma)
            blurred, sharp = (
                np.repeat((x @ LUMA)[:, :, None], 3, axis=-1) for x in (blurred, sharp)
            )
        if self.augment:
            blurred, sharp = augment(rng, blurred, sharp)
        return to_tensor(blurred), to_tensor(sharp)


class ValSet(_Base):
    """Central crops (``crop`` 0: the whole image cut to a multiple of ``divisor``), with
    kernels fixed by ``(seed, index)`` so every validation sees the same inputs."""

    def __init__(
        self, items: tuple[Item, ...], *, crop: int, divisor: int, limit: int = 0, **kw: Any
    ) -> None:
        if limit and len(items) > limit:  # evenly spread over the (sorted) held-out items
            picks = np.linspace(0, len(items) - 1, limit).round().astype(int)
            items = tuple(items[i] for i in picks)
        super().__init__(items, **kw)
        self.crop = crop
        self.divisor = divisor
        small = [i.sharp for i in self.items if min(i.shape) < divisor]
        if small:
            raise ValueError(f"validation image(s) smaller than {divisor} pixels: {listing(small)}")

    def __len__(self) -> int:
        return len(self.items)

    def window(self, item: Item) -> tuple[int, int, int, int]:
        height, width = item.shape
        d = self.divisor
        h, w = height // d * d, width // d * d
        if self.crop:
            h, w = min(h, self.crop), min(w, self.crop)
        return (height - h) // 2, (width - w) // 2, h, w

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.items[index]
        rng = np.random.default_rng([self.seed, STREAM_VAL, int(index)])
        blurred, sharp = self._sample(item, rng, *self.window(item))
        return to_tensor(blurred), to_tensor(sharp)
