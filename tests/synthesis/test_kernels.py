"""Synthetic camera-shake kernels and the embedded sample."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from napari_srn.sample import blurred_sample, sample_kernel, sharp_sample
from napari_srn.synthesis.kernels import blur_image, motion_kernel


@pytest.mark.parametrize("size", [1, 5, 13, 25, 41])
@pytest.mark.parametrize("seed", range(5))
def test_kernels_are_normalised_non_negative_and_of_the_requested_size(size, seed):
    k = motion_kernel(size, rng=seed)
    assert k.shape == (size, size) and k.dtype == np.float32
    assert (k >= 0).all()
    assert k.sum() == pytest.approx(1.0, abs=1e-5)


def _extent(k):
    rows, cols = np.nonzero(k > 1e-3 * k.max())
    return max(np.ptp(rows), np.ptp(cols)) + 1


def test_extent_grows_with_length():
    means = [
        np.mean([_extent(motion_kernel(51, length, rng=s)) for s in range(30)])
        for length in (3, 10, 20, 40)
    ]
    assert all(a < b for a, b in itertools.pairwise(means)), means


def test_kernels_are_reproducible_and_varied():
    np.testing.assert_array_equal(motion_kernel(21, rng=7), motion_kernel(21, rng=7))
    assert not np.array_equal(motion_kernel(21, rng=7), motion_kernel(21, rng=8))


def test_bad_kernel_arguments():
    with pytest.raises(ValueError, match="odd"):
        motion_kernel(20)
    with pytest.raises(ValueError, match="length"):
        motion_kernel(21, -1)


def test_blur_preserves_mean_and_a_delta_kernel_is_identity(rng):
    image = rng.random((40, 50, 3)).astype(np.float32)
    delta = np.zeros((5, 5), np.float32)
    delta[2, 2] = 1
    np.testing.assert_allclose(blur_image(image, delta, channel_axis=-1), image, atol=1e-5)
    blurred = blur_image(image, motion_kernel(9, rng=0), channel_axis=-1)
    assert blurred.shape == image.shape
    assert abs(blurred.mean() - image.mean()) < 0.01


def test_sample_is_reproducible_blurred_and_a_fresh_copy():
    a, b = blurred_sample(), blurred_sample()
    assert a.shape == (512, 512, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    a[:] = 0
    assert blurred_sample().any()
    sharp = sharp_sample().astype(float)
    diff = np.sqrt(np.mean((sharp - blurred_sample()) ** 2))
    assert 5 < diff < 40  # visibly blurred, still the same photo
    assert sample_kernel().shape == (21, 21)
