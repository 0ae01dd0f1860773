"""Realistic motion blur (napari_srn.synthesis.motion): exact oracles where physics gives one."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from napari_srn.synthesis.motion import Scene, ToneCurve, linear_to_srgb, render, srgb_to_linear
from napari_srn.synthesis.params import MotionParams, ShakeParams
from napari_srn.synthesis.shake import reflect_take
from napari_srn.training.config import TrainConfig
from napari_srn.training.data import TrainSet, find_data

CLEAN = MotionParams(
    motion_fraction=1.0,
    motion_length=(6.0, 6.0),
    moving_objects=(0, 0),
    motion_highlight_gain=(1.0, 1.0),
    shot_noise=(0.0, 0.0),
    read_noise=(0.0, 0.0),
    jpeg_fraction=0.0,
)


def _render(photo, params, seed=0, top=20, left=30, crop=40, objects=()):
    m = params.margin
    region = reflect_take(photo, top - m, left - m, crop + 2 * m, crop + 2 * m)
    scene = Scene(photo.shape[:2], (top - m, left - m))
    return render(region, scene, np.random.default_rng(seed), params, objects)


@pytest.fixture
def photo(rng):
    """An 8-bit-valued RGB photo (smooth shapes and texture) as floats in [0, 1]."""
    y, x = np.mgrid[0:96, 0:128] / 16.0
    base = 0.5 + 0.25 * np.stack([np.sin(x), np.cos(y), np.sin(x + y)], axis=-1)
    noise = rng.uniform(-0.2, 0.2, base.shape)
    return (np.round(np.clip(base + noise, 0, 1) * 255) / 255).astype(np.float32)


def test_srgb_curve_round_trips():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-6)
    assert srgb_to_linear(np.float32(0.5)) == pytest.approx(0.2140, abs=1e-4)


@pytest.mark.parametrize("weight", [0.0, 0.4, 1.0])
def test_tone_curves_round_trip_and_span_stored_to_linear_averaging(weight):
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    tone = ToneCurve(weight)
    np.testing.assert_allclose(tone.encode(tone.decode(x)), x, atol=2e-6)
    # half black, half white, averaged: the stored mean for weight 0 (GoPro's blur), the
    # light's mean through sRGB (brighter) for weight 1
    mid = float(tone.encode(tone.decode(np.float32([0.0, 1.0])).mean()))
    expected = 0.5 * (1 - weight) + weight * float(linear_to_srgb(np.float32(0.5)))
    assert mid == pytest.approx(expected, abs=1e-6)


def test_no_motion_gives_the_photo_back(photo):
    params = CLEAN.__class__(**{**CLEAN.__dict__, "motion_length": (0.0, 0.0)})
    blurred, sharp = _render(photo, params)
    crop = photo[20:60, 30:70]
    assert blurred.shape == sharp.shape == crop.shape and blurred.dtype == np.float32
    np.testing.assert_array_equal(blurred, crop)  # 8-bit values survive the curve and rounding
    np.testing.assert_allclose(sharp, crop, atol=2e-5)


def test_the_sharp_target_is_the_still_photo_and_the_blur_is_not(photo):
    blurred, sharp = _render(photo, CLEAN)
    crop = photo[20:60, 30:70]
    np.testing.assert_allclose(sharp, crop, atol=2e-5)
    assert np.abs(blurred - crop).mean() > 0.02


def test_a_uniform_scene_stays_uniform_under_any_motion():
    grey = np.full((96, 128, 3), 0.4, np.float32)
    params = CLEAN.__class__(**{**CLEAN.__dict__, "motion_length": (40.0, 40.0)})
    blurred, sharp = _render(grey, params, seed=3)
    assert np.ptp(blurred) <= 1 / 255 and np.ptp(sharp) < 1e-6


@pytest.mark.parametrize("length", [8.0, 24.0])
def test_the_longest_streak_has_the_drawn_length(length):
    """Dots on black, 56 px apart: each dot's streak spans at most ``length`` (+ bilinear's
    pixel either side), and the longest is close to it."""
    dots = np.zeros((240, 240, 3), np.float32)
    dots[40:200:56, 40:200:56] = 0.9
    params = CLEAN.__class__(**{**CLEAN.__dict__, "motion_length": (length, length)})
    spans = []
    for seed in range(4):
        blurred, _ = _render(dots, params, seed=seed, top=12, left=12, crop=176)
        for r in (28, 84, 140):
            for c in (28, 84, 140):
                lit = np.argwhere(blurred[r - 27 : r + 28, c - 27 : c + 28, 0] > 0.01)
                spans.append(float(np.hypot(*(lit.max(0) - lit.min(0)))))
    assert max(spans) <= length + 3
    assert max(spans) >= 0.75 * length


def test_rendering_is_a_function_of_the_seed(photo):
    params = MotionParams(motion_fraction=1.0, motion_length=(4.0, 12.0))
    patch = photo[:20, :24]
    a = _render(photo, params, seed=5, objects=(patch,))
    b = _render(photo, params, seed=5, objects=(patch,))
    c = _render(photo, params, seed=6, objects=(patch,))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_moving_objects_appear_in_the_sharp_target(photo):
    black = np.zeros((24, 24, 3), np.float32)
    params = CLEAN.__class__(**{**CLEAN.__dict__, "motion_length": (4.0, 4.0)})
    crop = photo[20:60, 30:70]
    covered = []
    for seed in range(10):
        _, sharp = _render(photo, params, seed=seed, objects=(black,))
        darker = (sharp < crop - 0.05).all(axis=-1)
        covered.append(int(darker.sum()))
        assert (sharp <= crop + 2e-5).all()  # a black object only darkens
    assert sum(c > 20 for c in covered) >= 5  # it overlaps the crop most of the time


def test_saturated_highlights_streak_brighter_with_gain():
    scene = np.full((96, 128, 3), 0.2, np.float32)
    scene[40:44, 60:64] = 1.0  # a clipped light
    gains = []
    for gain in (1.0, 3.0):
        params = CLEAN.__class__(
            **{
                **CLEAN.__dict__,
                "motion_length": (20.0, 20.0),
                "motion_highlight_gain": (gain, gain),
            }
        )
        blurred, sharp = _render(scene, params, seed=2, top=20, left=40, crop=48)
        np.testing.assert_allclose(sharp, scene[20:68, 40:88], atol=2e-5)  # clipped again
        gains.append(srgb_to_linear(blurred).sum())
    assert gains[1] > gains[0] * 1.02


def test_grey_crops_with_noise_and_jpeg(photo):
    grey = photo[:, :, :1]
    params = MotionParams(motion_fraction=1.0, motion_length=(2.0, 10.0), jpeg_fraction=1.0)
    blurred, sharp = _render(grey, params, seed=1)
    assert blurred.shape == sharp.shape == (40, 40, 1)
    assert 0 <= blurred.min() and blurred.max() <= 1


def test_config_checks_the_motion_fields():
    with pytest.raises(ValueError) as err:
        TrainConfig(data="x", motion_fraction=1.5, jpeg_quality=(0, 90), moving_objects=(2, 1))
    text = str(err.value)
    assert "3 problem(s)" in text
    for name in ("motion_fraction:", "jpeg_quality:", "moving_objects:"):
        assert name in text


def test_train_set_mixes_motion_samples_and_keeps_old_streams(tmp_path, rng):
    for i in range(3):
        iio.imwrite(tmp_path / f"p{i}.png", rng.integers(0, 256, (80, 96, 3), dtype=np.uint8))
    items = find_data(tmp_path).items
    shake = ShakeParams(shake_size=(3, 9))
    kw = {"crop": 32, "channels": 3, "seed": 0, "shake": shake, "synthetic": True}
    old = TrainSet(items, **kw)
    off = TrainSet(items, motion=MotionParams(motion_fraction=0.0), **kw)
    on = TrainSet(items, motion=MotionParams(motion_fraction=1.0, motion_length=(2, 8)), **kw)
    for g in range(6):
        torch.testing.assert_close(old[g], off[g], rtol=0, atol=0)  # no extra random draw
        blurred, sharp = on[g]
        assert blurred.shape == sharp.shape == (3, 32, 32)
        torch.testing.assert_close(on[g], on[g], rtol=0, atol=0)


def test_reused_pairs_are_rendered_once_and_served_reuse_times(tmp_path, rng):
    for i in range(3):
        iio.imwrite(tmp_path / f"p{i}.png", rng.integers(0, 256, (80, 96, 3), dtype=np.uint8))
    items = find_data(tmp_path).items
    motion = MotionParams(motion_fraction=0.5, motion_length=(2, 8))
    kw = {"crop": 32, "channels": 3, "seed": 0, "shake": ShakeParams(shake_size=(3, 9))}
    plain = TrainSet(items, augment=False, synthetic=True, motion=motion, **kw)
    reused = TrainSet(items, augment=False, synthetic=True, motion=motion, reuse=4, **kw)
    assert [reused.source(g) for g in (0, 31, 32, 127, 128, 160)] == [0, 31, 0, 31, 32, 32]
    renders = []
    original = reused._crop_pair
    reused._crop_pair = lambda g: renders.append(g) or original(g)  # type: ignore[method-assign]
    for g in range(128):
        torch.testing.assert_close(reused[g], plain[reused.source(g)], rtol=0, atol=0)
    assert sorted(renders) == list(range(32))  # each source rendered once for its 4 uses
    flipped = TrainSet(items, synthetic=True, motion=motion, reuse=4, gray_fraction=0.5, **kw)
    uses = [flipped[g][0] for g in (5, 37, 69, 101)]  # one pair, four flips and grey choices
    assert any(not torch.equal(uses[0], u) for u in uses[1:])
