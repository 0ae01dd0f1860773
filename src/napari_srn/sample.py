"""The embedded sample: a photograph that scikit-image ships, blurred by a fixed camera shake."""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["SAMPLE_KERNEL_SEED", "blurred_sample", "sample_kernel", "sharp_sample"]

#: Seed of the sample's camera-shake kernel (21 x 21, path length 17 px).
SAMPLE_KERNEL_SEED = 2018
SAMPLE_NOISE_SIGMA = 0.005


def sharp_sample() -> np.ndarray:
    """The sharp photograph: scikit-image's ``astronaut()`` (512 x 512 RGB uint8, public domain)."""
    from skimage import data

    return data.astronaut()


def sample_kernel() -> np.ndarray:
    """The 21 x 21 camera-shake kernel used for the sample (reproducible, seeded)."""
    from .synthesis.kernels import motion_kernel

    return motion_kernel(21, length=17.0, shakiness=0.05, rng=SAMPLE_KERNEL_SEED)


@functools.lru_cache(maxsize=1)
def _blurred() -> np.ndarray:
    from .synthesis.kernels import blur_image

    sharp = sharp_sample().astype(np.float32) / 255.0
    blurred = blur_image(sharp, sample_kernel(), channel_axis=-1)
    noise = np.random.default_rng(SAMPLE_KERNEL_SEED).normal(0, SAMPLE_NOISE_SIGMA, blurred.shape)
    return np.clip(np.rint((blurred + noise) * 255.0), 0, 255).astype(np.uint8)


def blurred_sample() -> np.ndarray:
    """The blurred sample (512 x 512 x 3 uint8): ``astronaut()`` convolved with
    :func:`sample_kernel` plus Gaussian noise of sigma 0.005. No download; a new copy each call.

    Returns
    -------
    ndarray
        An RGB image, uint8, of shape ``(512, 512, 3)``.
    """
    return _blurred().copy()
