"""napari_srn.evaluation (the held-out benchmark of benchmarks/eval_deblur.py) on a few small
photos written to a folder, with tiny networks: the identity scores exactly as its input."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from napari_srn import evaluation as ev

from .helpers import identity_srn, tiny_srn


@pytest.fixture
def photos(tmp_path, rng):
    for name in ("b", "a"):
        smooth = np.cumsum(np.cumsum(rng.normal(size=(72, 80, 3)), 0), 1)
        smooth = (smooth - smooth.min()) / np.ptp(smooth)
        iio.imwrite(tmp_path / f"{name}.png", np.rint(smooth * 255).astype(np.uint8))
    return tmp_path


def test_benchmark_is_reproducible_pairs_of_central_crops(photos):
    pairs = ev.make_benchmark(photos, crop=64)
    assert [p.name for p in pairs] == ["a#0", "a#1", "b#0", "b#1"]
    a = iio.imread(photos / "a.png")
    for p in pairs:
        assert p.sharp.shape == p.blurred.shape == (64, 64, 3)
        assert p.sharp.dtype == p.blurred.dtype == np.uint8
        assert 13 <= p.kernel.shape[0] <= 25 and p.kernel.sum() == pytest.approx(1, abs=1e-5)
    np.testing.assert_array_equal(pairs[0].sharp, a[4:68, 8:72])
    again = ev.make_benchmark(photos, crop=64)
    for p, q in zip(pairs, again, strict=True):
        np.testing.assert_array_equal(p.blurred, q.blurred)
    other = ev.make_benchmark(photos, crop=64, seed=1)
    assert not np.array_equal(pairs[0].blurred, other[0].blurred)


def test_an_empty_folder_says_how_to_fill_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_photos.py"):
        ev.make_benchmark(tmp_path)


def test_wiener_with_the_true_kernel_beats_the_blurred_input(photos):
    pairs = ev.make_benchmark(photos, crop=64)
    rows, balance, outputs = ev.baselines(pairs)
    assert balance in ev.BALANCES
    assert list(rows) == ["blurred input", f"Wiener, true kernel (balance {balance})"]
    assert rows[f"Wiener, true kernel (balance {balance})"][0] > rows["blurred input"][0]
    assert rows["blurred input"] == ev.score([p.blurred for p in pairs], pairs)
    assert [o.shape for o in outputs] == [p.sharp.shape for p in pairs]
    assert all(o.dtype == np.uint8 for o in outputs)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # PSNR of equal images
def test_identity_model_scores_as_its_input(photos):
    pairs = ev.make_benchmark(photos, crop=64)
    rows, outputs = ev.model_rows(identity_srn(), pairs, sharp=True, gray16=True)
    assert list(rows) == [
        "SRN (blind)",
        "SRN on the sharp photos",
        "12-bit grey stack: blurred input",
        "12-bit grey stack: SRN",
    ]
    assert rows["SRN (blind)"] == ev.score([p.blurred for p in pairs], pairs)
    assert rows["SRN on the sharp photos"] == (float("inf"), 1.0)
    assert rows["12-bit grey stack: SRN"] == rows["12-bit grey stack: blurred input"]
    for p, o in zip(pairs, outputs, strict=True):
        np.testing.assert_array_equal(o, p.blurred)


def test_table_and_grid_of_a_random_model(photos):
    pairs = ev.make_benchmark(photos, crop=64)
    base, _, wiener = ev.baselines(pairs)
    rows, outputs = ev.model_rows(tiny_srn(), pairs)
    assert np.isfinite(rows["SRN (blind)"]).all()
    table = ev.format_table({**base, **rows}).splitlines()
    assert table[0].split() == ["method", "PSNR", "dB", "SSIM"]
    assert table[-1].startswith("SRN (blind)") and len(table) == 4
    grid = ev.grid_image(pairs, wiener, outputs, every=2, crop=32)
    assert grid.shape == (2 * (32 + 4), 4 * 32, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[:32, 96:], pairs[0].sharp[16:48, 16:48])
