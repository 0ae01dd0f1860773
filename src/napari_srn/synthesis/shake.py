"""Synthetic camera shake: a blurred crop from a sharp one (numpy and scipy, no torch).

A sharp crop is blurred the way GOPRO's blurred frames were made (Nah et al. 2017), with a
random-trajectory kernel (:func:`.kernels.motion_kernel`, after Boracchi & Foi 2012) standing in
for the averaged video frames:

1. undo the display gamma (``gamma``, 2.2 by default), so the blur mixes light, not pixel values;
2. optionally multiply saturated pixels by a gain, since a clipped highlight was brighter than
   the sensor could record and streaks brighter than its stored value;
3. convolve with the kernel, using the real pixels around the crop (``valid`` convolution of a
   larger region, reflecting only at the image border);
4. clip to [0, 1] (saturation) and re-apply the gamma;
5. add Gaussian noise and clip again.

The sharp target is the untouched crop. Every random choice comes from the ``rng`` passed in,
so a sample is a pure function of its seed.
"""

from __future__ import annotations

import numpy as np

from .kernels import motion_kernel
from .params import ShakeParams

__all__ = ["SATURATED", "random_kernel", "reflect_take", "shake"]

#: Stored values at or above this are treated as saturated by ``highlight_gain``.
SATURATED = 0.98


def random_kernel(rng: np.random.Generator, params: ShakeParams) -> np.ndarray:
    """A camera-shake kernel with side, path length and shakiness drawn from ``params``;
    a 1 x 1 identity kernel for a ``no_blur_fraction`` share of calls."""
    if params.no_blur_fraction > 0 and rng.uniform() < params.no_blur_fraction:
        return np.ones((1, 1), np.float32)
    lo, hi = params.shake_size
    odd = np.arange(lo + (lo % 2 == 0), hi + 1, 2)
    size = int(rng.choice(odd))
    length = rng.uniform(*params.shake_length) * size
    shakiness = rng.uniform(*params.shakiness)
    return motion_kernel(size, length, shakiness=shakiness, rng=rng)


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected into [0, n) as numpy's ``mode='reflect'`` pads (no edge repeat)."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * n - 2
    index = np.mod(index, period)
    return np.where(index < n, index, period - index)


def reflect_take(image: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """``image[top:top+height, left:left+width]`` with reflection outside the image (a view
    when the window lies inside it)."""
    h, w = image.shape[:2]
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        return image[top : top + height, left : left + width]
    rows = _reflect(np.arange(top, top + height), h)
    cols = _reflect(np.arange(left, left + width), w)
    return image[rows[:, None], cols[None, :]]


def shake(
    region: np.ndarray, kernel: np.ndarray, rng: np.random.Generator, params: ShakeParams
) -> np.ndarray:
    """Blur a float ``(H + k - 1, W + k - 1, C)`` region in [0, 1] with the ``k x k`` kernel;
    return the ``(H, W, C)`` blurred crop (float32) that lines up with the region's centre."""
    from scipy.signal import fftconvolve  # scipy.signal takes seconds to import: only here

    x = np.asarray(region, np.float32)
    k = kernel.shape[0]
    linear = np.power(np.clip(x, 0, None), params.gamma) if params.gamma != 1 else x
    lo, hi = params.highlight_gain
    if hi > 1:
        gain = np.float32(rng.uniform(lo, hi))
        linear = np.where(x >= SATURATED, linear * gain, linear)
    if k > 1:
        blurred = fftconvolve(linear, kernel[:, :, None], mode="valid", axes=(0, 1))
    else:
        blurred = linear
    if params.clip:
        blurred = np.clip(blurred, 0.0, 1.0)
    if params.gamma != 1:
        blurred = np.power(np.clip(blurred, 0, None), 1.0 / params.gamma)
    sigma = rng.uniform(*params.noise)
    if sigma > 0:
        blurred = blurred + rng.normal(0.0, sigma, blurred.shape)
        if params.clip:
            blurred = np.clip(blurred, 0.0, 1.0)
    return np.ascontiguousarray(blurred, dtype=np.float32)
