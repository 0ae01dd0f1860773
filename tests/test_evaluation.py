"""napari_srn.evaluation (the held-out benchmark of scripts/evaluate/eval_deblur.py) on a few small
photos written to a folder, with tiny networks: the identity scores exactly as its input. The
real-blur part runs on a fake real-blur folder generated in tmp_path; one test reads the real
one (../shared/realblur) when it is there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from napari_srn import ModelCard, save_model
from napari_srn import evaluation as ev

from .helpers import identity_srn, tiny_srn

ROOT = Path(__file__).resolve().parents[1]


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


# Real blur: a small fake real-blur folder made here (the real images never enter the repository)

REALBLUR = ROOT.parent / "shared" / "realblur"
SHIFT = (2, -3)  # crops/blur/b.jpg's content lies 2 px below and 3 px left of its truth's


def _smooth(rng, shape):
    field = np.cumsum(np.cumsum(rng.normal(size=shape), 0), 1)
    return np.rint((field - field.min()) / np.ptp(field) * 255).astype(np.uint8)


@pytest.fixture
def realblur(tmp_path, rng):
    """gopro (2 frames, one published output), crops (2 JPEG pairs, one shifted by SHIFT),
    levin (2 grey pairs) and real_no_truth (2 photos) under tmp_path/realblur."""
    root = tmp_path / "realblur"
    for sub in ("gopro/blur", "gopro/sharp", "gopro/published/Oracle", "crops/blur",
                "crops/sharp", "levin/blur", "levin/sharp", "real_no_truth"):  # fmt: skip
        (root / sub).mkdir(parents=True)
    for frame in ("f1", "f2"):
        sharp = _smooth(rng, (48, 64, 3))
        iio.imwrite(root / "gopro/sharp" / f"{frame}.png", sharp)
        iio.imwrite(root / "gopro/blur" / f"{frame}.png", (sharp // 2 + 60).astype(np.uint8))
    iio.imwrite(root / "gopro/published/Oracle/f2.png", sharp ^ 2)  # off by 2 everywhere
    big = _smooth(rng, (60, 60, 3))
    dy, dx = SHIFT
    iio.imwrite(root / "crops/sharp/b.jpg", big[10:50, 10:50], quality=95)
    iio.imwrite(root / "crops/blur/b.jpg", big[10 - dy : 50 - dy, 10 - dx : 50 - dx], quality=95)
    iio.imwrite(root / "crops/sharp/a.jpg", big[:40, :40], quality=95)
    iio.imwrite(root / "crops/blur/a.jpg", big[:40, :40] // 2, quality=95)
    for name in ("im1_kernel1", "im1_kernel2"):
        grey = _smooth(rng, (32, 32))
        iio.imwrite(root / "levin/sharp" / f"{name}.png", grey)
        iio.imwrite(
            root / "levin/blur" / f"{name}.png", np.roll(grey, (1, 1), (0, 1)) ^ 1
        )  # lsb flipped
    for name in ("p", "q"):
        iio.imwrite(root / "real_no_truth" / f"{name}.png", _smooth(rng, (70, 90, 3)))
    return root


def test_real_sets_pair_blurred_and_sharp_files_by_name(realblur):
    sets = ev.real_sets(realblur)
    assert list(sets) == list(ev.REAL_SETS) == ["gopro", "crops", "levin"]
    names = {k: [(q.folder, q.name) for q in v] for k, v in sets.items()}
    assert names["gopro"] == [("gopro", "f1"), ("gopro", "f2")]
    assert names["crops"] == [("crops", "a"), ("crops", "b")]
    assert names["levin"] == [("levin", "im1_kernel1"), ("levin", "im1_kernel2")]
    assert [q.max_shift for v in sets.values() for q in v] == [0, 0, 5, 5, 5, 5]
    f1, f2 = sets["gopro"]
    assert f1.published == {} and list(f2.published) == ["Oracle"]
    np.testing.assert_array_equal(f1.sharp, iio.imread(realblur / "gopro/sharp/f1.png"))
    assert sets["crops"][0].blurred.shape == (40, 40, 3)
    assert sets["levin"][0].blurred.shape == (32, 32) and sets["levin"][0].sharp.dtype == np.uint8


@pytest.mark.parametrize("shift", [(0, 0), SHIFT, (-5, 5), (4, 0)])
def test_best_shift_finds_a_known_shift(rng, shift):
    big = _smooth(rng, (50, 50))
    dy, dx = shift
    sharp, moved = big[8:42, 8:42], big[8 - dy : 42 - dy, 8 - dx : 42 - dx]
    assert ev.best_shift(moved, sharp) == shift
    assert ev.best_shift(sharp, sharp, max_shift=2) == (0, 0)
    with pytest.raises(ValueError, match="larger than 2 \\* max_shift = 10"):
        ev.best_shift(sharp[:10], sharp[:10])


def test_crops_and_levin_are_scored_after_their_best_shift_gopro_whole(realblur):
    sets = ev.real_sets(realblur)
    rows = {(r.folder, r.name, r.method): r for r in ev.real_baselines(sets)}
    assert list(rows)[:3] == [
        ("gopro", "f1", "blurred input"),
        ("gopro", "f2", "blurred input"),
        ("gopro", "f2", "Oracle (published)"),
    ]
    f1 = sets["gopro"][0]
    assert rows["gopro", "f1", "blurred input"].psnr == pytest.approx(
        peak_signal_noise_ratio(f1.sharp, f1.blurred, data_range=255)
    )
    assert rows["gopro", "f2", "Oracle (published)"].psnr == pytest.approx(
        10 * np.log10(255**2 / 4)
    )
    assert rows["crops", "b", "blurred input"].shift == SHIFT
    assert rows["crops", "b", "blurred input"].psnr > 35  # JPEG's loss only
    assert rows["levin", "im1_kernel1", "blurred input"].shift == (1, 1)
    b = sets["crops"][1]
    unaligned = peak_signal_noise_ratio(b.sharp, b.blurred, data_range=255)
    assert unaligned < rows["crops", "b", "blurred input"].psnr - 10


def test_an_identity_model_scores_as_its_input_in_the_real_table(realblur):
    sets = ev.real_sets(realblur)
    scores = ev.real_baselines(sets) + ev.real_scores(identity_srn(), sets)
    inputs = [s for s in scores if s.method == "blurred input"]
    assert [(s.psnr, s.ssim, s.shift) for s in scores if s.method == "SRN"] == [
        (s.psnr, s.ssim, s.shift) for s in inputs
    ]
    table = ev.real_table(scores)
    assert list(table) == [
        "gopro f1: blurred input",
        "gopro f1: SRN",
        "gopro f2: blurred input",
        "gopro f2: SRN",
        "gopro f2: Oracle (published)",
        "gopro, mean of 2: blurred input",
        "gopro, mean of 2: SRN",
        "crops (±5 px), mean of 2: blurred input",
        "crops (±5 px), mean of 2: SRN",
        "levin (±5 px), mean of 2: blurred input",
        "levin (±5 px), mean of 2: SRN",
        "real pairs (gopro + crops), mean of 4: blurred input",
        "real pairs (gopro + crops), mean of 4: SRN",
    ]
    four = [s for s in inputs if s.folder in ("gopro", "crops")]
    assert table["real pairs (gopro + crops), mean of 4: SRN"] == pytest.approx(
        (np.mean([s.psnr for s in four]), np.mean([s.ssim for s in four]))
    )
    assert ev.real_gains(scores) == {"SRN": 0.0}
    assert ev.real_gains(scores[-2:]) == {}  # no input scored
    lines = ev.format_table(table).splitlines()
    assert lines[-1].startswith("real pairs (gopro + crops), mean of 4: SRN   ")
    assert len({len(line) for line in lines}) == 1  # the first column fits the longest row


def test_a_random_model_runs_on_rgb_and_grey_real_pairs(realblur):
    sets = ev.real_sets(realblur)
    scores = ev.real_scores(tiny_srn(), sets)
    assert [s.method for s in scores] == ["SRN"] * 6
    assert all(np.isfinite(s.psnr) and -1 <= s.ssim <= 1 for s in scores)


def test_missing_real_blur_parts_are_skipped_or_refused_with_a_message(realblur, tmp_path):
    with pytest.raises(FileNotFoundError, match="not part of the repository"):
        ev.real_sets(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="not part of the repository"):
        ev.real_no_truth(tmp_path / "absent")
    for sub in ("gopro", "levin/sharp", "real_no_truth"):
        shutil.rmtree(realblur / sub)
    (realblur / "levin" / "blur" / "notes.txt").write_text("not an image")
    sets = ev.real_sets(realblur)
    assert list(sets) == ["crops"]
    table = ev.real_table(ev.real_baselines(sets))
    assert list(table) == [
        "crops (±5 px), mean of 2: blurred input",
        "real pairs (crops), mean of 2: blurred input",
    ]
    with pytest.raises(FileNotFoundError, match="real_no_truth: there are no real photographs"):
        ev.real_no_truth(realblur)
    (realblur / "crops" / "sharp" / "a.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="lacks a.jpg"):
        ev.real_sets(realblur)


def test_textured_window_is_chosen_from_the_input_alone(rng):
    image = np.full((100, 120, 3), 128, np.uint8)
    image[40:72, 64:96] = rng.integers(0, 256, (32, 32, 3))
    assert ev.textured_window(image, size=32, step=8) == (slice(40, 72), slice(64, 96))
    assert ev.textured_window(image[50:70], size=32, step=8) == (slice(0, 20), slice(64, 96))
    assert ev.textured_window(image[..., 0], size=200) == (slice(0, 100), slice(0, 120))


def test_contact_sheet_shows_the_same_window_of_input_and_outputs_unscaled(realblur):
    images = ev.real_no_truth(realblur)
    assert [name for name, _ in images] == ["p", "q"]
    outputs = {"same": [im for _, im in images], "inverted": [255 - im for _, im in images]}
    sheet = ev.contact_sheet(images, outputs, crop=48)
    assert sheet.dtype == np.uint8 and sheet.shape == (2 * (40 + 48) + 4, 3 * 48 + 2 * 4, 3)
    for i, (_, image) in enumerate(images):
        ys, xs = ev.textured_window(image, 48)
        top = i * (40 + 48 + 4) + 40
        tiles = [sheet[top : top + 48, j * 52 : j * 52 + 48] for j in range(3)]
        np.testing.assert_array_equal(tiles[0], image[ys, xs])
        np.testing.assert_array_equal(tiles[1], image[ys, xs])
        np.testing.assert_array_equal(tiles[2], 255 - image[ys, xs])
        assert (sheet[top - 40 : top] < 128).any()  # the labels are written


def test_eval_deblur_real_writes_json_and_sheet_and_skips_a_missing_folder(realblur, tmp_path):
    weights = tmp_path / "identity.safetensors"
    save_model(identity_srn(), weights, ModelCard(name="identity", description="test"))
    script = [sys.executable, str(ROOT / "scripts" / "evaluate" / "eval_deblur.py")]
    shutil.rmtree(realblur / "levin")
    out = tmp_path / "real.json"
    sheet = tmp_path / "sheet.png"
    args = ["--real", str(realblur), "--model", str(weights), "--json", str(out)]
    run = subprocess.run(
        [*script, *args, "--sheet", str(sheet)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "levin has no blur/ and sharp/ images: skipped" in run.stdout
    assert "identity: +0.00 dB over the blurred input on the real pairs" in run.stdout
    report = json.loads(out.read_text())
    assert report["table"]["real pairs (gopro + crops), mean of 4: identity"]["psnr"] > 0
    assert {"folder": "crops", "name": "b", "method": "identity"}.items() <= next(
        r for r in report["images"] if r["method"] == "identity" and r["name"] == "b"
    ).items()
    assert report["skipped"] and report["gains_over_input_db"] == {"identity": 0.0}
    assert iio.imread(sheet).shape == (2 * (40 + 320) + 4, 2 * 320 + 4, 3)  # tiles padded
    absent = subprocess.run(
        [*script, "--real", str(tmp_path / "absent")], capture_output=True, text=True, timeout=300
    )
    assert absent.returncode == 0 and "real blur skipped: no real-blur folder" in absent.stdout


@pytest.mark.skipif(not REALBLUR.is_dir(), reason=f"no real-blur folder at {REALBLUR}")
def test_the_real_folder_pairs_and_its_inputs_score_as_published():
    sets = ev.real_sets(REALBLUR)
    assert {k: len(v) for k, v in sets.items()} == {"gopro": 2, "crops": 9, "levin": 32}
    gopro = {"gopro": sets["gopro"]}
    table = ev.real_table(ev.real_baselines(gopro) + ev.real_scores(tiny_srn(), gopro))
    assert table["gopro GOPR0384_11_00-000001: blurred input"][0] == pytest.approx(24.05, abs=0.01)
    assert table["gopro GOPR0384_11_00-000001: HINet (published)"][0] == pytest.approx(33.19, 0.01)
    assert table["gopro seq_id-4_frame-1: DeepDeblur (published)"][0] == pytest.approx(26.88, 0.01)
    assert "gopro, mean of 2: SRN" in table
