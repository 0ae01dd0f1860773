"""Lazy deblurring of dask and zarr arrays."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

from napari_srn import deblur, save_model
from napari_srn.inference.eager import Runner, drain
from napari_srn.inference.lazy import lazy_predict
from napari_srn.inference.precision import Precision
from napari_srn.model.weights import ModelCard

from ..helpers import CountingSRN, identity_srn, tiny_srn


@pytest.mark.parametrize(("recurrent", "pyramid"), [("none", "bilinear"), ("convlstm", "area")])
@pytest.mark.parametrize(("tile", "halo"), [(None, 0), (64, 24), (48, 16)])
def test_lazy_graph_equals_eager_runner_on_odd_chunks(recurrent, pyramid, tile, halo, rng):
    net = tiny_srn(recurrent=recurrent, pyramid=pyramid, scales=3)
    x = rng.random((2, 3, 160, 208)).astype(np.float32)
    eager = np.stack([drain(Runner(net, Precision.reference(), tile, halo).run(f)) for f in x])
    lazy = lazy_predict(da.from_array(x, chunks=(1, 3, 50, 70)), net, tile=tile, halo=halo)
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-5)


def test_style_guide_oracle_arange_with_odd_chunks():
    """dask-image's test: np.arange(140.0).reshape(10, 14) in (5, 7) chunks, identity model."""
    image = np.arange(140.0).reshape(10, 14)
    lazy = deblur(da.from_array(image, chunks=(5, 7)), model=identity_srn(1))
    assert isinstance(lazy, da.Array) and lazy.dtype == image.dtype and lazy.shape == image.shape
    np.testing.assert_allclose(lazy.compute(), image, atol=1e-4)


@pytest.mark.parametrize(
    ("shape", "channel_axis", "dtype"),
    [
        ((70, 90), None, np.float32),
        ((2, 70, 90, 3), -1, np.uint8),
        ((3, 70, 90), 0, np.uint16),
        ((2, 70, 90, 4), -1, np.uint8),
        ((2, 2, 70, 90), None, np.float64),
    ],
)
def test_lazy_deblur_equals_eager(shape, channel_axis, dtype, rng):
    image = (rng.random(shape) * (255 if dtype == np.uint8 else 4000)).astype(dtype)
    net = tiny_srn(seed=2)
    eager = deblur(image, model=net, channel_axis=channel_axis, tile_size=32, overlap=8)
    lazy = deblur(
        da.from_array(image, chunks=tuple(max(1, n // 3) for n in shape)),
        model=net,
        channel_axis=channel_axis,
        tile_size=32,
        overlap=8,
    )
    assert isinstance(lazy, da.Array)
    assert lazy.shape == image.shape and lazy.dtype == image.dtype
    got = lazy.compute()
    if np.issubdtype(dtype, np.integer):
        assert np.abs(got.astype(np.int64) - eager).max() <= 1
    else:
        np.testing.assert_allclose(got, eager, atol=1e-5 * float(np.ptp(image)))


def test_chunks_follow_the_tile_grid(rng):
    image = da.from_array(rng.random((1000, 600)).astype(np.float32), chunks=(333, 333))
    lazy = deblur(image, model=tiny_srn(1), tile_size=256)
    # padded to 1008 x 608 (multiples of 16), cut in regular tiles, cropped back
    assert lazy.chunks == ((256, 256, 256, 232), (208, 208, 184))


def test_one_frame_of_a_stack_runs_the_model_only_for_that_frame():
    net = CountingSRN(tiny_srn().config).eval()
    stack = np.stack([np.full((96, 96), v, np.float32) for v in (0.1, 0.5, 0.9)])
    lazy = deblur(da.from_array(stack, chunks=(1, 96, 96)), model=net, tile_size=48, overlap=8)
    with dask.config.set(scheduler="synchronous"):
        lazy[1].compute()
    per_frame = Runner(net, Precision.reference(), 48, 8).n_tiles((96, 96))
    assert len(net.seen) == per_frame
    assert set(np.round(net.seen, 3)) == {0.5}


def test_a_region_runs_only_the_tiles_it_needs(rng):
    net = CountingSRN(tiny_srn(1).config).eval()
    image = rng.random((512, 512)).astype(np.float32)
    lazy = deblur(da.from_array(image, chunks=256), model=net, tile_size=64, overlap=8)
    with dask.config.set(scheduler="synchronous"):
        lazy[:32, :32].compute()
    every = Runner(net, Precision.reference(), 64, 8).n_tiles((512, 512))
    assert 0 < len(net.seen) < every / 4


def test_zarr_arrays_and_paths_are_read_lazily(tmp_path, rng):
    image = rng.integers(0, 256, (2, 48, 64), dtype=np.uint8)
    v3 = zarr.create_array(
        str(tmp_path / "v3.zarr"), shape=image.shape, chunks=(1, 24, 32), dtype="uint8"
    )
    v3[:] = image
    v2 = zarr.create_array(
        str(tmp_path / "v2.zarr"),
        shape=image.shape,
        chunks=(1, 24, 32),
        dtype="uint8",
        zarr_format=2,
    )
    v2[:] = image
    net = identity_srn(1)
    for source in (v3, tmp_path / "v3.zarr", str(tmp_path / "v2.zarr")):
        lazy = deblur(source, model=net)
        assert isinstance(lazy, da.Array)
        np.testing.assert_array_equal(lazy.compute(), image)


def test_model_by_file_is_loaded_by_reference(tmp_path, rng):
    path = tmp_path / "id.safetensors"
    save_model(identity_srn(), path, ModelCard(name="id", description="identity"))
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    lazy = deblur(da.from_array(image), model=str(path), channel_axis=-1)
    # no task carries the model itself: the graph stays small when pickled
    import pickle

    assert len(pickle.dumps(dict(lazy.__dask_graph__()))) < 200_000
    np.testing.assert_array_equal(lazy.compute(), image)


@pytest.mark.parametrize(
    ("source", "exc", "match"),
    [
        ("missing.zarr", FileNotFoundError, "does not exist"),
        ("file.png", ValueError, "cannot read .*file.png.* as a PNG image"),  # read as an image
        ("empty_dir", ValueError, "not a readable zarr store"),
    ],
)
def test_bad_zarr_sources(tmp_path, monkeypatch, source, exc, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.png").write_bytes(b"not an image")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(exc, match=match):
        deblur(source, model=identity_srn(1))


def test_wrong_number_of_axes_in_a_store(tmp_path):
    zarr.create_array(str(tmp_path / "line.zarr"), shape=(100,), dtype="float32")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        deblur(str(tmp_path / "line.zarr"), model=identity_srn(1))


def test_lazy_results_of_different_inputs_never_share_tasks(rng):
    """Regression: fixed task names made napari's chunk cache show one layer in another."""
    a = da.from_array(rng.random((64, 64)).astype(np.float32), chunks=32)
    b = da.from_array(rng.random((64, 64)).astype(np.float32), chunks=32)
    ra = deblur(a, model=tiny_srn(1, seed=1))
    rb = deblur(b, model=tiny_srn(1, seed=2))
    assert ra.name != rb.name
    assert not set(ra.__dask_graph__()) & set(rb.__dask_graph__()) - set(a.__dask_graph__())
    np.testing.assert_allclose(
        dask.compute(ra, rb)[1], deblur(b.compute(), model=tiny_srn(1, seed=2)), atol=1e-5
    )


def test_gray_model_on_rgb_lazily_equals_eager(rng):
    """Regression: the three channels' graphs collided and came out identical."""
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    gray = tiny_srn(1, seed=3)
    eager = deblur(image, model=gray, channel_axis=-1)
    lazy = deblur(da.from_array(image, chunks=(24, 32, 3)), model=gray, channel_axis=-1)
    assert np.abs(lazy.compute().astype(int) - eager).max() <= 1


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 3, 5), (5, 40)])
def test_images_smaller_than_the_divisor_are_deblurred_lazily_as_eagerly(rng, shape):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    lazy = da.from_array(image, chunks=(1,) * (len(shape) - 2) + shape[-2:])
    net = tiny_srn(1)
    np.testing.assert_array_equal(np.asarray(deblur(lazy, model=net)), deblur(image, model=net))


def test_a_tile_the_lazy_graph_cannot_take_is_raised_with_a_warning(rng):
    """Both paths accept the same tiles: the in-memory runner reads any window, the dask
    graph needs cores at least as large as the context its neighbours read, so a smaller
    tile is raised to the smallest that works, and the user is told."""
    image = rng.integers(0, 256, (100, 140), dtype=np.uint8)
    net = tiny_srn(1)  # divisor 16, overlap 24
    for tile, overlap, used in [(16, None, 48), (32, None, 48), (16, 32, 48), (16, 8, None)]:
        eager = deblur(image, model=net, tile_size=tile, overlap=overlap)
        if used is None:
            lazy = deblur(da.from_array(image), model=net, tile_size=tile, overlap=overlap)
            expected = eager
        else:
            with pytest.warns(UserWarning, match=f"tile_size={tile} is too small.*{used}"):
                lazy = deblur(da.from_array(image), model=net, tile_size=tile, overlap=overlap)
            expected = deblur(image, model=net, tile_size=used, overlap=overlap)
        assert np.abs(np.asarray(lazy).astype(int) - expected).max() <= 1, (tile, overlap)


def test_a_lazy_input_too_large_to_set_up_is_refused_before_any_work(monkeypatch):
    """Issue 22, item 16, in memory (stores on disk: tests/test_hostile.py): too many chunks, a
    zarr chunk too large to read, too many tiles; refused from the shapes alone, before a graph
    is built or a value read. A huge array chunked sensibly stays allowed."""
    import time

    from napari_srn.inference import plan
    from napari_srn.io.zarr import open_lazy

    net = tiny_srn(1)
    ran = []
    monkeypatch.setattr(net, "forward", lambda *a, **k: ran.append(1))
    monkeypatch.setattr(plan, "memory_limits", lambda: {"RAM": 1 << 40})  # memory is no excuse
    one_chunk = zarr.create_array(
        zarr.storage.MemoryStore(),
        shape=(3, 40_000, 40_000),
        chunks=(3, 40_000, 40_000),
        dtype="u1",
    )
    start = time.perf_counter()
    cases = [
        (da.zeros((10**9, 10**9), dtype=np.uint8, chunks=1024), {}, "953,675,292,969 chunks"),
        (one_chunk, {}, "a chunk of 4,800,000,000 bytes; napari-srn reads at most 1 GiB"),
        (
            da.zeros((3, 4096, 4096), dtype=np.uint16, chunks=2048),
            {"tile_size": 32},
            "32,768 tiles",
        ),
    ]
    for image, kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            deblur(image, model=net, **kwargs)
    assert time.perf_counter() - start < 5 and not ran
    huge = da.zeros((100_000, 100_000), dtype=np.uint16, chunks=4096)  # 10 GP in 625 chunks
    assert open_lazy(huge) is huge
    plan.check_tile_count((1, 100_000, 100_000), 1024, 1)  # 9,604 tiles: allowed
    whole = da.zeros((3, 40_000, 40_000), dtype=np.uint8, chunks=-1)  # a numpy frame, say
    assert open_lazy(whole) is whole  # a dask array's chunk sizes are the caller's choice
