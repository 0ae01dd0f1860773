"""deblur(): shapes, dtypes, channels, tiling, bad input, no mutation, progress."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_srn import Progress, deblur, iter_deblur
from napari_srn.inference.intensity import intensity_range

from ..helpers import identity_srn, tiny_srn

LAYOUTS = [
    # shape, channel_axis
    ((37, 53), None),
    ((37, 53, 3), -1),
    ((37, 53, 4), -1),
    ((3, 37, 53), 0),
    ((2, 37, 53), None),
    ((2, 37, 53, 3), -1),
    ((2, 3, 37, 53), 1),
    ((2, 2, 37, 53), None),
]
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def make(shape, dtype, rng):
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if dtype == np.uint16:  # 12-bit microscopy-like data, far from filling 0..65535
        return rng.integers(100, 4000, shape, dtype=np.uint16)
    return rng.random(shape).astype(dtype)


@pytest.mark.parametrize(("shape", "channel_axis"), LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_identity_model_returns_the_input(shape, channel_axis, dtype, rng):
    """An exact identity network must come back through layout, dtype mapping and tiling."""
    image = make(shape, dtype, rng)
    out = deblur(image, model=identity_srn(), channel_axis=channel_axis, tile_size=16)
    assert out.shape == image.shape and out.dtype == image.dtype
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(out, image)
    else:
        np.testing.assert_allclose(out, image, atol=1e-6)


@pytest.mark.parametrize(("shape", "channel_axis"), LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_model_keeps_shape_dtype_range_and_alpha(shape, channel_axis, dtype, rng):
    image = make(shape, dtype, rng)
    before = image.copy()
    out = deblur(image, model=tiny_srn(), channel_axis=channel_axis, tile_size=16)
    np.testing.assert_array_equal(image, before)  # never modified
    assert out.shape == image.shape and out.dtype == image.dtype
    rng_in = intensity_range(image)
    assert out.min() >= rng_in.low - 1e-6 and out.max() <= rng_in.high + 1e-6
    if channel_axis is not None and shape[channel_axis] == 4:
        np.testing.assert_array_equal(
            np.take(out, 3, channel_axis), np.take(image, 3, channel_axis)
        )


@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (2, 3), (5, 7), (15, 16), (17, 33)])
def test_any_size_including_smaller_than_a_tile(shape, rng):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(deblur(image, model=identity_srn(1)), image)
    out = deblur(image, model=tiny_srn(1), tile_size=16)
    assert out.shape == shape


def test_uint16_maps_its_own_range_to_the_model_and_back(rng):
    image = rng.integers(1000, 1200, (32, 32), dtype=np.uint16)
    r = intensity_range(image)
    assert (r.low, r.high) == (float(image.min()), float(image.max()))
    x = r.to_model(image)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(r.from_model(x), image)
    # outputs outside [0, 1] are clipped back into the input's range
    assert r.from_model(np.array([-1.0, 2.0], np.float32)).tolist() == [image.min(), image.max()]


def test_intensity_range_rules():
    r8 = intensity_range(np.array([[3, 7]], np.uint8))
    assert (r8.low, r8.high) == (0.0, 255.0)
    rf = intensity_range(np.array([[0.2, 0.7]], np.float32))
    assert (rf.low, rf.high) == (0.0, 1.0)
    rw = intensity_range(np.array([[-5.0, 300.0]]))
    assert (rw.low, rw.high) == (-5.0, 300.0)
    rc = intensity_range(np.full((4, 4), 7, np.uint16))  # constant: no division by zero
    np.testing.assert_array_equal(rc.from_model(rc.to_model(np.full((4, 4), 7, np.uint16))), 7)


def test_stack_uses_one_range_for_all_frames(rng):
    stack = np.stack([np.full((16, 16), 100, np.uint16), np.full((16, 16), 3000, np.uint16)])
    out = deblur(stack, model=identity_srn(1))
    np.testing.assert_array_equal(out, stack)


def test_gray_model_on_rgb_deblurs_each_channel_separately(rng):
    gray = tiny_srn(1, seed=3)
    image = rng.random((40, 48, 3)).astype(np.float32)
    out = deblur(image, model=gray, channel_axis=-1)
    for c in range(3):
        single = deblur(image[..., c], model=gray)
        np.testing.assert_allclose(out[..., c], single, atol=1e-6)


def test_color_model_on_gray_replicates_and_averages(rng):
    color = tiny_srn(3, seed=4)
    image = rng.random((40, 48)).astype(np.float32)
    out = deblur(image, model=color)
    rgb = deblur(np.repeat(image[..., None], 3, -1), model=color, channel_axis=-1)
    np.testing.assert_allclose(out, rgb.mean(-1), atol=1e-6)


def test_generic_torch_module_is_accepted(rng):
    image = rng.random((2, 9, 11)).astype(np.float32)
    np.testing.assert_array_equal(deblur(image, model=torch.nn.Identity()), image)


@pytest.mark.parametrize("pyramid", ["bilinear", "area"])
def test_tiled_equals_untiled_for_a_small_random_model_with_full_overlap(pyramid, rng):
    net = tiny_srn(seed=5, pyramid=pyramid, scales=3)
    image = rng.integers(0, 256, (100, 140, 3), dtype=np.uint8)
    a = deblur(image, model=net, channel_axis=-1)
    b = deblur(image, model=net, channel_axis=-1, tile_size=32, overlap=net.receptive_field)
    assert np.abs(a.astype(int) - b).max() <= 1


def test_read_only_input_and_no_mutation(rng):
    image = rng.random((3, 30, 30)).astype(np.float32)
    image.setflags(write=False)
    out = deblur(image, model=tiny_srn(), channel_axis=0)
    assert out.flags.writeable and not np.shares_memory(out, image)


def test_progress_callback_and_bar(capsys, rng):
    seen = []
    image = rng.random((2, 64, 64)).astype(np.float32)
    deblur(image, model=tiny_srn(1), tile_size=32, progress=lambda d, t: seen.append((d, t)))
    total = seen[0][1]
    assert total > 2 and [d for d, _ in seen] == list(range(1, total + 1))
    assert all(t == total for _, t in seen)
    deblur(image, model=tiny_srn(1), tile_size=32, progress=True)
    assert "deblur" in capsys.readouterr().err


def test_iter_deblur_can_be_cancelled_between_tiles(rng):
    image = rng.random((64, 64)).astype(np.float32)
    before = image.copy()
    gen = iter_deblur(image, model=tiny_srn(1), tile_size=16)
    step = next(gen)
    assert isinstance(step, Progress) and step.done == 1 and step.total > 1
    gen.close()  # cancel
    np.testing.assert_array_equal(image, before)


def test_rgb_guess_warns_when_channel_axis_is_omitted(rng):
    image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="treating it as RGB"):
        out = deblur(image, model=identity_srn())
    np.testing.assert_array_equal(out, image)


BAD = [
    (np.array([[np.nan, 1.0]]), {}, ValueError, "NaN or infinite"),
    (np.array([[np.inf, 1.0]]), {}, ValueError, "NaN or infinite"),
    (np.zeros((0, 10)), {}, ValueError, "empty"),
    (np.zeros(10), {}, ValueError, "at least 2 dimensions"),
    (np.zeros((4, 4), complex), {}, TypeError, "complex"),
    (np.zeros((4, 4), bool), {}, TypeError, "bool"),
    (np.zeros((4, 4), object), {}, TypeError, "dtype object"),
    (np.array([["a", "b"]]), {}, TypeError, "dtype <U1"),
    (42, {}, TypeError, "numpy, dask or zarr array"),
    (np.zeros((8, 8, 2)), {"channel_axis": -1}, ValueError, "cannot take 2 channels"),
    (np.zeros((8, 8)), {"channel_axis": 0}, ValueError, "fewer than two spatial"),
    (np.zeros((8, 8, 3)), {"channel_axis": 3}, ValueError, "out of range"),
    (np.zeros((8, 8, 3)), {"channel_axis": 1.0}, TypeError, "channel_axis must be an int"),
    (np.zeros((8, 8)), {"tile_size": 100}, ValueError, "multiple of 16, got 100. Try 96 or 112"),
    (np.zeros((8, 8)), {"tile_size": 0}, ValueError, "multiple of 16"),
    (np.zeros((8, 8)), {"tile_size": 64.0}, TypeError, "tile_size must be an int"),
    (np.zeros((8, 8)), {"overlap": -1}, ValueError, "overlap must be >= 0"),
    (np.zeros((8, 8)), {"model": 42}, TypeError, "model must be a name"),
    (np.zeros((8, 8)), {"model": "nonexistent"}, ValueError, "neither a bundled model"),
    (np.zeros((8, 8)), {"device": "tpu"}, ValueError, "not a device torch knows"),
    (np.zeros((8, 8)), {"precision": "half"}, ValueError, "precision must be one of 'auto'"),
    (np.zeros((8, 8)), {"precision": "float16", "device": "cpu"}, ValueError, "not supported"),
]


@pytest.mark.parametrize(("image", "kwargs", "exc", "match"), BAD)
def test_bad_input_names_the_argument_and_the_fix(image, kwargs, exc, match):
    kwargs = {"model": tiny_srn(), "channel_axis": None, **kwargs}
    with pytest.raises(exc, match=match):
        deblur(image, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_asking_for_missing_cuda_is_an_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        deblur(np.zeros((8, 8), np.float32), model="default", device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_within_half_precision(rng):
    image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    net = tiny_srn()
    cpu = deblur(image, model=net, channel_axis=-1, device="cpu")
    gpu = deblur(image, model=net, channel_axis=-1, device="cuda")
    assert np.abs(cpu.astype(int) - gpu).mean() < 2


@pytest.mark.slow
def test_default_model_on_the_sample_keeps_shape_and_dtype():
    from napari_srn.sample import blurred_sample

    image = blurred_sample()
    out = deblur(image, channel_axis=-1, device="cpu")
    assert out.shape == image.shape and out.dtype == np.uint8


class RunsOutOfMemory(torch.nn.Module):
    """Identity that raises CUDA's out-of-memory error for windows over 40 x 40 pixels."""

    divisor = 16
    halo = 0

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x):
        self.calls.append(tuple(x.shape[-2:]))
        if x.shape[-1] * x.shape[-2] > 40 * 40:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return x


def test_out_of_memory_retries_with_smaller_tiles(rng):
    image = rng.integers(0, 256, (2, 100, 90), dtype=np.uint8)
    net = RunsOutOfMemory()
    seen = []
    with pytest.warns(RuntimeWarning, match="retrying this frame with tile_size=32"):
        out = deblur(image, model=net, tile_size=64, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(out, image)
    assert max(h * w for h, w in net.calls[-5:]) <= 40 * 40
    assert seen[-1][0] == seen[-1][1]  # progress ends complete


def test_auto_precision_follows_the_cpu_and_float32_is_the_reference():
    from napari_srn.inference.precision import cpu_has_bf16, resolve_precision

    cpu = torch.device("cpu")
    auto = resolve_precision("auto", cpu)
    assert auto.name == ("bfloat16" if cpu_has_bf16() else "float32")
    assert auto.channels_last
    reference = resolve_precision("float32", cpu)
    assert reference.name == "float32" and not reference.channels_last
    assert resolve_precision("bfloat16", cpu).activation_bytes == 2


def test_float32_equals_the_models_own_forward_pass(rng):
    net = tiny_srn()
    frame = rng.random((48, 64, 3)).astype(np.float32)
    out = deblur(frame, model=net, channel_axis=-1, tile_size=None, precision="float32")
    with torch.inference_mode():
        x = torch.from_numpy(np.moveaxis(frame, -1, 0).copy())[None]
        ref = net(x)[0].numpy()
    # one tile per level covers these 48 x 64 frames: only the clip to [0, 1] differs
    np.testing.assert_allclose(out, np.clip(np.moveaxis(ref, 0, -1), 0, 1), atol=1e-6)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_bfloat16_agrees_with_float32_on_photographs_with_the_shipped_model(name):
    """bfloat16 (what ``auto`` picks on AMX/AVX512-BF16 CPUs) against the float32 reference,
    with the bundled default on real photographs (emulated, so slower, on other CPUs)."""
    import skimage.data

    from ..helpers import psnr

    photo = getattr(skimage.data, name)()[:160, :192]
    ref = deblur(photo, channel_axis=-1, device="cpu", precision="float32")
    half = deblur(photo, channel_axis=-1, device="cpu", precision="bfloat16")
    assert psnr(ref, half, 255) >= 50


def test_every_non_finite_result_is_an_error_that_names_its_cause(tmp_path, rng):
    import dask.array as da
    import zarr

    from napari_srn import deblur_to_zarr

    image = rng.random((64, 64)).astype(np.float32)
    image[40, 3] = np.nan
    lazy = da.from_array(image, chunks=32)
    # a range given: no pass over the data, so the check is made block by block
    with pytest.raises(ValueError, match="NaN or infinite"):
        deblur(lazy, model=tiny_srn(1), in_range=(0, 1), tile_size=32).compute()
    with pytest.raises(ValueError, match="NaN or infinite"):
        deblur_to_zarr(lazy, tmp_path / "o.zarr", model=tiny_srn(1), in_range=(0, 1), axes="yx")
    assert zarr.open_group(str(tmp_path / "o.zarr")).attrs["napari_srn"]["status"] != "complete"
    with pytest.raises(ValueError, match="in_range=.* too narrow"):
        deblur(image, model=tiny_srn(1), in_range=(0, 1e-40))
    with pytest.raises(ValueError, match=r"in_range=\(0, 1e-30\) maps the image's values"):
        deblur(
            rng.random((32, 32)).astype(np.float32) + 1e9, model=tiny_srn(1), in_range=(0, 1e-30)
        )
    broken = tiny_srn(1)
    with torch.no_grad():
        next(broken.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="the model produced NaN"):
        deblur(rng.random((32, 32)).astype(np.float32), model=broken)


def test_float64_beyond_the_float32_range_is_deblurred_not_lost(rng):
    image = rng.random((48, 48))
    out = deblur(image * 1e300, model=tiny_srn(1), in_range=(0, 1e300))
    assert out.dtype == np.float64 and np.isfinite(out).all()
    np.testing.assert_allclose(out / 1e300, deblur(image, model=tiny_srn(1)), atol=1e-6)
    auto = deblur(image * 1e300 - 5e299, model=tiny_srn(1))  # the range from the data
    assert np.isfinite(auto).all() and auto.max() > 1e299


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_ndarray_subclasses_are_taken_as_their_data(rng):
    image = rng.integers(0, 256, (20, 20), dtype=np.uint8)
    out = deblur(np.matrix(image), model=tiny_srn(1))
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, deblur(image, model=tiny_srn(1)))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32, np.uint64])
def test_integers_over_their_full_range_come_back_without_wrapping(dtype):
    """Issue 22, item 2: float32(2**31 - 1) is 2**31, which wrapped to -2**31 (and the unsigned
    maxima to 0) on the way back."""
    info = np.iinfo(dtype)
    image = np.zeros((32, 32), dtype)
    image[8:24, 8:24] = info.max
    image[0, :4] = info.min
    np.testing.assert_array_equal(deblur(image, model=identity_srn(1), tile_size=16), image)
    # the float nearest each maximum lies beyond it: clipped, never wrapped (and no warning)
    back = intensity_range(image).from_model(np.array([[0.0, 0.5, 1.0, 2.0]], np.float32))
    assert back.dtype == dtype and back[0, 0] == info.min and back[0, 2:].tolist() == [info.max] * 2
    out = deblur(image, model=tiny_srn(1), tile_size=16)
    assert out.dtype == dtype and out.shape == image.shape


@pytest.mark.parametrize("scale", [1e-6, 1e-40])
def test_tiny_float_values_keep_the_image(rng, scale):
    """Issue 22, item 3: an image whose values all lie below one 8-bit level of 0..1 was handed
    to the model as black; its own minimum..maximum is used instead, with a warning."""
    image = rng.random((48, 48)).astype(np.float32)
    image[0, 0], image[0, 1] = 0.0, 1.0
    tiny = (image * np.float32(scale)).astype(np.float32)
    with pytest.warns(UserWarning, match="below 1/255 .* own minimum and maximum"):
        out = deblur(tiny, model=tiny_srn(1), precision="float32")
    assert out.dtype == np.float32 and out.max() <= tiny.max()
    expected = deblur(image, model=tiny_srn(1), precision="float32")
    np.testing.assert_allclose(out.astype(np.float64) / scale, expected, atol=1e-4)
    # asked for 0..1, it is 0..1 (no warning)
    deblur(tiny, model=tiny_srn(1), in_range=(0, 1))


def test_float32_spanning_its_whole_range_is_deblurred(rng):
    """Issue 22, item 21: float32 data spanning +-3e38 overflowed float32 arithmetic and was
    refused with a message quoting an in_range nobody gave."""
    image = rng.random((48, 48)).astype(np.float32)
    image[0, 0], image[0, 1] = 0.0, 1.0
    wide = (image.astype(np.float64) * 6e38 - 3e38).astype(np.float32)
    out = deblur(wide, model=tiny_srn(1))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    expected = deblur(image, model=tiny_srn(1)).astype(np.float64) * 6e38 - 3e38
    np.testing.assert_allclose(out, expected, atol=6e38 * 1e-5)
    # what float64 itself cannot map is refused in words the caller used
    with pytest.raises(ValueError, match="divide the image") as err:
        deblur(np.array([[-1.7e308, 1.7e308]] * 2), model=tiny_srn(1))
    assert "in_range" not in str(err.value)


def test_grey_and_alpha_on_the_last_axis_is_taken_as_grey_plus_alpha(tmp_path, rng):
    """Issue 22, item 22: (H, W, 2) ran as H frames of W x 2 pixels and changed the alpha."""
    import dask.array as da
    import zarr

    from napari_srn import deblur_to_zarr

    grey = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    alpha = np.where(rng.random((40, 48)) > 0.5, 255, 0).astype(np.uint8)
    image = np.stack([grey, alpha], -1)
    with pytest.warns(UserWarning, match="treating it as grey\\+alpha"):
        out = deblur(image, model=tiny_srn())
    np.testing.assert_array_equal(out[..., 1], alpha)
    np.testing.assert_array_equal(out[..., 0], deblur(grey, model=tiny_srn()))
    with pytest.warns(UserWarning, match="grey\\+alpha"):
        lazy = deblur(da.from_array(image, chunks=(16, 16, 2)), model=tiny_srn(), tile_size=64)
    np.testing.assert_array_equal(lazy.compute(), out)
    with pytest.warns(UserWarning, match="grey\\+alpha"):  # the guess reaches the plan
        deblur_to_zarr(image, tmp_path / "o.zarr", model=tiny_srn(), tile_size=64, axes="yxc")
    stored = zarr.open_group(str(tmp_path / "o.zarr"))["0"][:]  # channels first (NGFF)
    np.testing.assert_array_equal(np.moveaxis(stored, 0, -1), lazy.compute())


def test_an_image_file_path_is_read(tmp_path, rng):
    """Issue 22, item 23: deblur("photo.png") answered about zarr stores."""
    from napari_srn.io import write_image

    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    write_image(tmp_path / "photo.png", rgb, channel_axis=-1)
    out = deblur(tmp_path / "photo.png", model=identity_srn())  # the file says: RGB
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, rgb)
    la = np.stack([rgb[..., 0], rgb[..., 1]], -1)
    write_image(tmp_path / "la.png", la, channel_axis=-1, alpha=True)
    np.testing.assert_array_equal(deblur(str(tmp_path / "la.png"), model=identity_srn()), la)
    gen = iter_deblur(tmp_path / "photo.png", model=identity_srn())
    with pytest.raises(StopIteration) as done:
        while True:
            next(gen)
    np.testing.assert_array_equal(done.value.value, rgb)
    with pytest.raises(FileNotFoundError, match="image file .* or a zarr store") as err:
        deblur(tmp_path / "missing.png", model=identity_srn())
    assert "zarr store 'missing" not in str(err.value)
