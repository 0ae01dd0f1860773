"""Training data: discovery, clear errors for bad pairs, crops that line up, synthetic shake."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from napari_srn.synthesis.params import ShakeParams
from napari_srn.synthesis.shake import random_kernel, reflect_take, shake
from napari_srn.training.data import (
    TrainSet,
    ValSet,
    augment,
    find_data,
    loader_throughput,
    make_loader,
    pairs_to_zarr,
    split,
)

SMALL_SHAKE = ShakeParams(shake_size=(3, 9), noise=(0.0, 0.0))


def _rgb(rng, h=48, w=64):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_pairs(root, rng, sequences=("seq_a", "seq_b"), frames=2, blur_dir="blur"):
    """GoPro layout; the blurred image is the sharp one + 10 so the crops can be compared."""
    for seq in sequences:
        (root / seq / "sharp").mkdir(parents=True)
        (root / seq / blur_dir).mkdir()
        for i in range(frames):
            sharp = rng.integers(0, 200, (48, 64, 3), dtype=np.uint8)
            iio.imwrite(root / seq / "sharp" / f"{i:06d}.png", sharp)
            iio.imwrite(root / seq / blur_dir / f"{i:06d}.png", sharp + 10)
    return root


# ------------------------------------------------------------------------------ pairs


def test_gopro_pairs_are_found_by_sequence(tmp_path, rng):
    make_pairs(tmp_path, rng)
    source = find_data(tmp_path)
    assert source.kind == "pairs" and not source.synthetic
    assert len(source.items) == 4
    assert {i.group for i in source.items} == {"seq_a", "seq_b"}
    assert all(i.shape == (48, 64) for i in source.items)
    assert "4 blurred/sharp pairs in 2 sequence(s)" in source.describe()


def test_paired_crops_line_up_through_augmentation(tmp_path, rng):
    make_pairs(tmp_path, rng)
    items = find_data(tmp_path).items
    ds = TrainSet(items, crop=32, augment=True, channels=3, seed=0, shake=None, synthetic=False)
    for g in range(8):
        blurred, sharp = ds[g]
        assert blurred.shape == sharp.shape == (3, 32, 32) and blurred.dtype == torch.float32
        torch.testing.assert_close(blurred - sharp, torch.full_like(sharp, 10 / 255))


def test_missing_partners_are_named(tmp_path, rng):
    make_pairs(tmp_path, rng)
    (tmp_path / "seq_a" / "blur" / "000001.png").unlink()
    iio.imwrite(tmp_path / "seq_b" / "blur" / "000009.png", _rgb(rng))
    with pytest.raises(ValueError) as info:
        find_data(tmp_path)
    text = str(info.value)
    assert "no blurred partner" in text and "000001.png" in text and "seq_a" in text
    assert "no sharp partner" in text and "000009.png" in text and "seq_b" in text


def test_mismatched_sizes_name_both_files(tmp_path, rng):
    make_pairs(tmp_path, rng, sequences=("s",))
    iio.imwrite(tmp_path / "s" / "blur" / "000000.png", _rgb(rng, 40, 64))
    with pytest.raises(
        ValueError,
        match=r"size mismatch: .*sharp.000000\.png.* is 48x64 "
        r"but .*blur.000000\.png.* is 40x64",
    ):
        find_data(tmp_path)


def test_a_missing_blur_folder_suggests_the_one_that_exists(tmp_path, rng):
    make_pairs(tmp_path, rng, sequences=("s",), blur_dir="blur_gamma")
    with pytest.raises(ValueError, match=r"no 'blur' folder.*blur_gamma.*--blur-dir"):
        find_data(tmp_path)
    assert len(find_data(tmp_path, blur_dir="blur_gamma").items) == 2


def test_gopro_root_with_its_test_split_is_refused(tmp_path, rng):
    make_pairs(tmp_path / "train", rng, sequences=("a",))
    make_pairs(tmp_path / "test", rng, sequences=("b",))
    with pytest.raises(ValueError, match=r"train on the test set.*data=.*train"):
        find_data(tmp_path)


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_data(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        find_data(tmp_path / "empty")


# ------------------------------------------------------------------------------ sharp only


@pytest.fixture
def sharp_folder(tmp_path, rng):
    root = tmp_path / "sharp_only"
    (root / "sub").mkdir(parents=True)
    iio.imwrite(root / "rgb8.png", _rgb(rng))
    iio.imwrite(root / "gray8.jpg", rng.integers(0, 256, (48, 64), dtype=np.uint8))
    iio.imwrite(
        root / "sub" / "gray16.png", rng.integers(100, 4000, (48, 64), dtype=np.uint16)
    )  # 12-bit camera
    tifffile.imwrite(
        root / "rgb16.tif", rng.integers(0, 65535, (48, 64, 3), dtype=np.uint16), photometric="rgb"
    )
    tifffile.imwrite(root / "float.tif", rng.random((48, 64), dtype=np.float32))
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.mark.parametrize("channels", [1, 3])
def test_sharp_images_of_every_kind_give_unit_range_samples(sharp_folder, channels):
    source = find_data(sharp_folder)
    assert source.kind == "sharp" and source.synthetic and len(source.items) == 5
    ds = TrainSet(
        source.items, crop=32, channels=channels, seed=0, shake=SMALL_SHAKE, synthetic=True
    )
    seen = set()
    for g in range(len(ds)):
        blurred, sharp = ds[g]
        assert blurred.shape == sharp.shape == (channels, 32, 32)
        assert 0 <= float(sharp.min()) and float(sharp.max()) <= 1
        assert 0 <= float(blurred.min()) and float(blurred.max()) <= 1
        seen.add(ds.items[ds.order(0)[g]].sharp)
    assert len(seen) == 5  # one epoch visits every image once


def test_samples_are_a_function_of_seed_and_index(sharp_folder):
    items = find_data(sharp_folder).items
    a = TrainSet(items, crop=32, channels=3, seed=0, shake=SMALL_SHAKE, synthetic=True)
    b = TrainSet(items, crop=32, channels=3, seed=0, shake=SMALL_SHAKE, synthetic=True)
    c = TrainSet(items, crop=32, channels=3, seed=1, shake=SMALL_SHAKE, synthetic=True)
    for g in (7, 0, 7, 23):  # any order, repeated
        torch.testing.assert_close(a[g], b[g], rtol=0, atol=0)
    assert not torch.equal(a[3][0], c[3][0])
    assert not torch.equal(a[3][0], a[4][0])


def test_gray_fraction_turns_that_share_of_crops_grey(sharp_folder):
    items = find_data(sharp_folder).items
    kw = {"crop": 32, "channels": 3, "seed": 0, "shake": SMALL_SHAKE, "synthetic": True}
    plain = TrainSet(items, **kw)
    never = TrainSet(items, gray_fraction=0.0, **kw)
    always = TrainSet(items, gray_fraction=1.0, **kw)
    half = TrainSet(items, gray_fraction=0.5, **kw)
    greys = 0
    for g in range(40):
        # 0 is the old stream exactly (no extra random draw)
        torch.testing.assert_close(plain[g], never[g], rtol=0, atol=0)
        blurred, sharp = always[g]
        for x in (blurred, sharp):
            torch.testing.assert_close(x[0], x[1], rtol=0, atol=0)
            torch.testing.assert_close(x[0], x[2], rtol=0, atol=0)
        b, _ = half[g]
        greys += bool(torch.equal(b[0], b[1]) and torch.equal(b[1], b[2]))
    assert 8 <= greys <= 32, greys
    with pytest.raises(ValueError, match="gray_fraction"):
        TrainSet(items, gray_fraction=1.5, **kw)


def test_the_loader_stream_does_not_depend_on_workers(sharp_folder):
    items = find_data(sharp_folder).items
    ds = TrainSet(items, crop=32, channels=3, seed=0, shake=SMALL_SHAKE, synthetic=True)
    straight = list(make_loader(ds, 0, 4, 2, num_workers=0))
    with_worker = list(make_loader(ds, 2, 4, 2, num_workers=1))  # starts at step 2: a resume
    for (b0, s0), (b1, s1) in zip(straight[2:], with_worker, strict=True):
        assert torch.equal(b0, b1) and torch.equal(s0, s1)
    stats = loader_throughput(ds, 2, num_workers=0, batches=3)
    assert stats["samples_per_s"] > 0 and stats["samples"] == 6


def test_images_smaller_than_the_crop_are_named(sharp_folder):
    items = find_data(sharp_folder).items
    with pytest.raises(
        ValueError,
        match=r"5 training image\(s\) are smaller than crop=64.*"
        r"rgb8.png \(48x64\).*Lower --crop",
    ):
        TrainSet(items, crop=64, channels=3, seed=0, shake=SMALL_SHAKE, synthetic=True)


def test_stacks_are_refused_with_the_file_name(tmp_path, rng):
    tifffile.imwrite(tmp_path / "stack.tif", rng.random((5, 40, 40), dtype=np.float32))
    items = find_data(tmp_path).items
    ds = TrainSet(items, crop=32, channels=3, seed=0, shake=SMALL_SHAKE, synthetic=True)
    with pytest.raises(ValueError, match=r"stack\.tif.*2-D gray or RGB"):
        ds[0]


# ------------------------------------------------------------------------------ zarr


def test_zarr_pairs_and_sharp_only_zarr(tmp_path, rng):
    import zarr

    sharp = rng.integers(0, 200, (3, 40, 48), dtype=np.uint8)
    group = zarr.open_group(str(tmp_path / "pairs.zarr"), mode="w")
    group.create_array("sharp", data=sharp)
    group.create_array("blur", data=sharp + 20)
    source = find_data(tmp_path / "pairs.zarr")
    assert source.kind == "zarr" and not source.synthetic and len(source.items) == 3
    ds = TrainSet(source.items, crop=32, channels=1, seed=0, shake=None, synthetic=False)
    blurred, target = ds[5]
    torch.testing.assert_close(blurred - target, torch.full_like(target, 20 / 255))

    deep = zarr.open_group(str(tmp_path / "pairs16.zarr"), mode="w")  # 12-bit camera data
    sharp16 = rng.integers(1000, 3000, (2, 40, 48), dtype=np.uint16)
    deep.create_array("sharp", data=sharp16, chunks=(1, 16, 16))  # crops read a few chunks
    deep.create_array("blur", data=sharp16 + 100, chunks=(1, 16, 16))
    ds = TrainSet(
        find_data(tmp_path / "pairs16.zarr").items,
        crop=32,
        channels=1,
        seed=0,
        shake=None,
        synthetic=False,
    )
    blurred, target = ds[1]
    lo, hi = sharp16[ds.order(0)[1]].min() + 100, sharp16[ds.order(0)[1]].max() + 100
    torch.testing.assert_close(blurred - target, torch.full_like(target, 100 / (hi - lo)))

    only = zarr.open_group(str(tmp_path / "sharp.zarr"), mode="w")
    only.create_array("sharp", data=np.stack([sharp] * 3, axis=-1))
    source = find_data(tmp_path / "sharp.zarr")
    assert source.synthetic
    ds = TrainSet(source.items, crop=32, channels=3, seed=0, shake=SMALL_SHAKE, synthetic=True)
    assert ds[0][0].shape == (3, 32, 32)

    bad = zarr.open_group(str(tmp_path / "bad.zarr"), mode="w")
    bad.create_array("sharp", data=sharp)
    bad.create_array("blur", data=sharp[:, :30])
    with pytest.raises(ValueError, match="differ in shape"):
        find_data(tmp_path / "bad.zarr")


# ------------------------------------------------------------------------------ split


def test_validation_holds_out_whole_sequences_and_never_trains(tmp_path, rng):
    make_pairs(tmp_path, rng, sequences=("a", "b", "c", "d", "e"), frames=2)
    items = find_data(tmp_path).items
    train, val = split(items, 0.2, seed=0)
    assert len(val) == 2 and len({i.group for i in val}) == 1
    assert not {i.group for i in val} & {i.group for i in train}
    assert set(train) | set(val) == set(items)
    assert split(items, 0.2, seed=0) == (train, val)
    assert split(items, 0.0, seed=0) == (items, ())


def test_validation_set_is_fixed_and_cut_to_the_divisor(sharp_folder):
    items = find_data(sharp_folder).items
    ds = ValSet(
        items, crop=0, divisor=16, limit=3, channels=3, seed=0, shake=SMALL_SHAKE, synthetic=True
    )
    assert len(ds) == 3
    blurred, sharp = ds[1]
    assert blurred.shape == sharp.shape == (3, 48, 64)
    torch.testing.assert_close(
        ds[1],
        ValSet(
            items,
            crop=0,
            divisor=16,
            limit=3,
            channels=3,
            seed=0,
            shake=SMALL_SHAKE,
            synthetic=True,
        )[1],
    )
    cropped = ValSet(
        items, crop=32, divisor=16, channels=3, seed=0, shake=SMALL_SHAKE, synthetic=True
    )
    assert cropped[0][0].shape == (3, 32, 32)


# ------------------------------------------------------------------------------ synthesis


def test_random_kernels_are_normalised_odd_and_in_range():
    params = ShakeParams(shake_size=(6, 14))
    rng = np.random.default_rng(0)
    sizes = set()
    for _ in range(30):
        k = random_kernel(rng, params)
        assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and 7 <= k.shape[0] <= 13
        assert (k >= 0).all() and k.sum() == pytest.approx(1, abs=1e-5)
        sizes.add(k.shape[0])
    assert len(sizes) > 1
    assert random_kernel(rng, ShakeParams(no_blur_fraction=1.0)).shape == (1, 1)


def test_shake_is_identity_for_a_delta_and_keeps_flat_images_flat(rng):
    params = ShakeParams(gamma=2.2, noise=(0.0, 0.0))
    region = rng.random((20, 24, 3)).astype(np.float32)
    out = shake(region, np.ones((1, 1), np.float32), rng, params)
    np.testing.assert_allclose(out, region, atol=1e-5)
    flat = np.full((30, 30, 1), 0.4, np.float32)
    kernel = random_kernel(np.random.default_rng(1), ShakeParams(shake_size=(9, 9)))
    blurred = shake(flat, kernel, rng, params)
    assert blurred.shape == (22, 22, 1)
    np.testing.assert_allclose(blurred, 0.4, atol=1e-5)


def test_gamma_blurs_light_not_pixel_values(rng):
    """A black/white edge blurred in linear light is brighter than blurred pixel values."""
    edge = np.zeros((9, 9, 1), np.float32)
    edge[:, 5:] = 1.0
    box = np.full((1, 9), 1 / 9, np.float32)
    kernel = np.zeros((9, 9), np.float32)
    kernel[4] = box
    linear = shake(edge, kernel, rng, ShakeParams(gamma=2.2, noise=(0, 0)))
    plain = shake(edge, kernel, rng, ShakeParams(gamma=1.0, noise=(0, 0)))
    assert plain[0, 0, 0] == pytest.approx(4 / 9, abs=1e-5)
    assert linear[0, 0, 0] == pytest.approx((4 / 9) ** (1 / 2.2), abs=1e-5)


def test_highlights_streak_and_clip(rng):
    spot = np.zeros((15, 15, 1), np.float32)
    spot[7, 7] = 1.0
    kernel = np.zeros((5, 5), np.float32)
    kernel[2] = 0.2
    dim = shake(spot, kernel, rng, ShakeParams(gamma=1.0, noise=(0, 0)))
    bright = shake(
        spot, kernel, rng, ShakeParams(gamma=1.0, noise=(0, 0), highlight_gain=(4.0, 4.0))
    )
    assert dim.max() == pytest.approx(0.2) and bright.max() == pytest.approx(0.8)
    noisy = shake(spot, kernel, rng, ShakeParams(gamma=1.0, noise=(0.5, 0.5)))
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_reflect_take_and_augment():
    image = np.arange(20).reshape(4, 5)
    np.testing.assert_array_equal(reflect_take(image, 1, 1, 2, 3), image[1:3, 1:4])
    padded = np.pad(image, 2, mode="reflect")
    np.testing.assert_array_equal(reflect_take(image, -2, -2, 8, 9), padded)
    a, b = augment(np.random.default_rng(3), image, image + 100)
    np.testing.assert_array_equal(b - a, 100)
    variants = {augment(np.random.default_rng(s), image)[0].tobytes() for s in range(64)}
    assert len(variants) == 8  # the 8 flips/rotations of a square's symmetry group


def test_pairs_convert_to_zarr_and_give_the_same_samples(tmp_path, rng):
    make_pairs(tmp_path / "pairs", rng)
    assert pairs_to_zarr(tmp_path / "pairs", tmp_path / "p.zarr", chunk=16) == 4
    with pytest.raises(FileExistsError, match="overwrite"):
        pairs_to_zarr(tmp_path / "pairs", tmp_path / "p.zarr")
    kw = {"crop": 32, "channels": 3, "seed": 0, "shake": None, "synthetic": False}
    files = TrainSet(find_data(tmp_path / "pairs").items, **kw)
    stored = TrainSet(find_data(tmp_path / "p.zarr").items, **kw)
    for g in range(6):
        torch.testing.assert_close(files[g], stored[g], rtol=0, atol=0)


def test_crop_tries_pick_the_most_textured_of_the_drawn_crops(tmp_path, rng):
    # left half flat grey, right half noise: uniform crops land on the flat half half the time
    image = np.full((64, 256, 3), 128, np.uint8)
    image[:, 128:] = rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "half.png", image)
    items = find_data(tmp_path).items
    kw = {"crop": 64, "channels": 3, "seed": 0, "shake": SMALL_SHAKE, "synthetic": True}
    uniform = TrainSet(items, **kw, augment=False)
    picky = TrainSet(items, **kw, augment=False, crop_tries=8)

    def flat_share(ds):
        return np.mean([float(ds[g][1].std()) < 1e-6 for g in range(40)])

    assert flat_share(uniform) > 0.2  # the flat half is drawn (the crop may straddle both)
    assert flat_share(picky) == 0  # 8 draws: a fully flat crop always loses to a textured one
    torch.testing.assert_close(picky[5], picky[5], rtol=0, atol=0)  # still a function of g
    # one try is the uniform stream exactly (old runs resume unchanged)
    one = TrainSet(items, **kw, augment=False, crop_tries=1)
    torch.testing.assert_close(one[3], uniform[3], rtol=0, atol=0)
    with pytest.raises(ValueError, match="crop_tries"):
        TrainSet(items, **kw, crop_tries=0)
