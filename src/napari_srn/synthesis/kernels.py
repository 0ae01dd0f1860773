"""Synthetic camera shake: random-trajectory motion-blur kernels.

After Boracchi and Foi, "Modeling the Performance of Image Restoration From Motion Blur",
IEEE TIP 2012: the camera path is a 2-D random walk whose velocity is pulled back to the
centre, jittered by Gaussian noise and, now and then, kicked by an abrupt shake; the kernel is
the path's occupancy rasterised with sub-pixel (bilinear) weights.
"""

from __future__ import annotations

import numpy as np

__all__ = ["blur_image", "motion_kernel", "random_trajectory"]


def random_trajectory(
    length: float,
    *,
    shakiness: float | None = None,
    n_steps: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """A camera path of total ``length`` pixels, as ``(n_steps, 2)`` (row, col) offsets.

    ``shakiness`` in [0, 1] (Boracchi & Foi's *anxiety*; random in [0, 0.1) when None) scales
    the jitter and the chance of abrupt shakes. The path is sampled 4 times per pixel of
    length by default (Boracchi & Foi use 2000 steps for 60 px; with a fixed count the
    direction's random walk, and so the kernel's shape, would depend on the sampling).
    """
    rng = np.random.default_rng(rng)
    n_steps = max(16, int(4 * length) + 1) if n_steps is None else int(n_steps)
    anxiety = rng.uniform(0, 0.1) if shakiness is None else float(shakiness)
    centripetal = 0.7 * rng.uniform()
    gaussian = 10.0 * rng.uniform()
    big_shake = 0.2 * rng.uniform()
    step = length / (n_steps - 1)
    v = step * np.exp(1j * rng.uniform(0, 2 * np.pi))
    x = np.zeros(n_steps, np.complex128)
    shakes = rng.uniform(size=n_steps) < big_shake * anxiety
    noise = rng.standard_normal((n_steps, 2)) @ np.array([1.0, 1j])
    angles = rng.uniform(-0.5, 0.5, size=n_steps)
    for t in range(n_steps - 1):
        kick = 2 * v * np.exp(1j * (np.pi + angles[t])) if shakes[t] else 0.0
        v = v + kick + anxiety * (gaussian * noise[t] - centripetal * x[t]) * step
        v = v / (abs(v) + 1e-12) * step
        x[t + 1] = x[t] + v
    return np.stack([x.imag, x.real], axis=1)


def motion_kernel(
    size: int,
    length: float | None = None,
    *,
    shakiness: float | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """A normalised, non-negative ``(size, size)`` camera-shake kernel.

    Parameters
    ----------
    size : int
        Side of the (odd) kernel in pixels.
    length : float, optional
        Path length in pixels (default: 0.75 x size); the path is shrunk to fit if needed.
    shakiness : float, optional
        0 gives nearly straight paths, 1 very erratic ones; random in [0, 0.1) when None.
    rng : Generator or int, optional
        Seed for a reproducible kernel.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd integer, got {size}")
    rng = np.random.default_rng(rng)
    length = 0.75 * size if length is None else float(length)
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    kernel = np.zeros((size, size), np.float64)
    if length == 0 or size == 1:
        kernel[size // 2, size // 2] = 1.0
        return kernel.astype(np.float32)
    path = random_trajectory(length, shakiness=shakiness, rng=rng)
    path -= (path.max(0) + path.min(0)) / 2  # centre the path's bounding box
    extent = np.abs(path).max()
    limit = (size - 1) / 2 - 1e-6
    if extent > limit:
        path *= limit / extent
    pos = path + size // 2
    base = np.floor(pos).astype(int)
    frac = pos - base
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        w = (frac[:, 0] if dr else 1 - frac[:, 0]) * (frac[:, 1] if dc else 1 - frac[:, 1])
        r, c = np.clip(base[:, 0] + dr, 0, size - 1), np.clip(base[:, 1] + dc, 0, size - 1)
        np.add.at(kernel, (r, c), w)
    return (kernel / kernel.sum()).astype(np.float32)


def blur_image(
    image: np.ndarray, kernel: np.ndarray, channel_axis: int | None = None
) -> np.ndarray:
    """Convolve a float image with ``kernel`` (reflecting at the borders), per channel."""
    from scipy.signal import fftconvolve  # scipy.signal takes seconds to import: only here

    img = np.asarray(image, np.float32)
    if channel_axis is not None:
        img = np.moveaxis(img, channel_axis, -1)
    pad = kernel.shape[0] // 2
    spatial = [(pad, pad), (pad, pad)] + [(0, 0)] * (img.ndim - 2)
    padded = np.pad(img, spatial, mode="reflect")
    k = kernel.reshape(kernel.shape + (1,) * (img.ndim - 2))
    out = fftconvolve(padded, k, mode="valid", axes=(0, 1)).astype(np.float32)
    if channel_axis is not None:
        out = np.moveaxis(out, -1, channel_axis)
    return out
