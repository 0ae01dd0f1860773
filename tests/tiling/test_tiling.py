"""Tiling: pure index maths, exact oracles, and tiled vs untiled agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_srn import SRN, SRNConfig
from napari_srn.inference.eager import Runner, drain
from napari_srn.inference.precision import Precision
from napari_srn.tiling import axis_cores, iter_tiled, tile_slices
from napari_srn.tiling.grid import axis_tiles

from ..helpers import psnr, tiny_srn, wake_naf


@pytest.mark.parametrize("length", [1, 5, 16, 17, 100, 128, 129, 500, 1000])
@pytest.mark.parametrize("tile", [None, 16, 48, 128])
@pytest.mark.parametrize("halo", [0, 8, 20])
@pytest.mark.parametrize("divisor", [1, 4, 16])
def test_axis_tiles_partition_and_pad(length, tile, halo, divisor):
    if tile is not None and tile % divisor:
        pytest.skip("tile must be a multiple of the divisor")
    tiles = axis_tiles(length, tile, halo, divisor)
    covered = np.zeros(length, int)
    for t in tiles:
        covered[t.write] += 1
        n = t.read.stop - t.read.start + sum(t.pad)
        assert n % divisor == 0
        assert 0 <= t.read.start <= t.write.start < t.write.stop <= t.read.stop <= length
        # context: halo pixels on each side, unless the image border comes first
        assert t.write.start - t.read.start == min(halo, t.write.start)
        assert t.read.stop - t.write.stop == min(halo, length - t.write.stop)
        assert t.crop.stop - t.crop.start == t.write.stop - t.write.start
        assert t.crop.start == t.write.start - t.read.start + t.pad[0]
        if tile is not None:
            assert t.write.stop - t.write.start <= max(tile, length if length <= tile else 0)
    assert (covered == 1).all()


def test_axis_cores_are_a_regular_aligned_grid():
    assert axis_cores(2048, 1024, 16) == [(0, 1024), (1024, 2048)]
    cores = axis_cores(1000, 256, 16)
    assert cores == [(0, 256), (256, 512), (512, 768), (768, 1000)]
    assert axis_cores(130, 128, 16) == [(0, 80), (80, 130)]  # two cores, not 128 + 2
    # a last core too small to lend its neighbour context is merged into it
    assert axis_cores(1030, 1024, 8) == [(0, 520), (520, 1030)]
    assert axis_cores(17, 16, 8, min_last=4) == [(0, 17)]
    with pytest.raises(ValueError, match="multiple of 16"):
        axis_cores(1000, 100, 16)


@pytest.mark.parametrize("shape", [(1, 1), (7, 300), (130, 97), (256, 256)])
def test_identity_and_double_predictors_come_back_exactly(shape, rng):
    image = rng.random((2, *shape)).astype(np.float32)
    for fn, expect in ((lambda w: w, image), (lambda w: 2 * w, 2 * image)):
        out = np.full_like(image, np.nan)
        tiles = tile_slices(shape, 32, 12, 16)
        n = sum(1 for _ in iter_tiled(image, fn, out, tiles))
        assert n == len(tiles)
        np.testing.assert_array_equal(out, expect)


def test_multi_resolution_arrays_are_sliced_at_their_step(rng):
    full = rng.random((1, 64, 96)).astype(np.float32)
    quarter = rng.random((5, 16, 24)).astype(np.float32)
    out_full, out_quarter = np.empty_like(full), np.empty_like(quarter)
    tiles = tile_slices((64, 96), 16, 8, 4)
    for _ in iter_tiled(
        [full, quarter], lambda a, b: [a * 2, b + 1], [out_full, out_quarter], tiles
    ):
        pass
    np.testing.assert_array_equal(out_full, 2 * full)
    np.testing.assert_array_equal(out_quarter, quarter + 1)


def test_predictor_that_changes_the_size_is_an_error(rng):
    image = rng.random((1, 32, 32)).astype(np.float32)
    with pytest.raises(RuntimeError, match="must keep height and width"):
        for _ in iter_tiled(
            image, lambda w: w[..., :-1], np.empty_like(image), tile_slices((32, 32), 16, 0)
        ):
            pass


class Double(torch.nn.Module):
    divisor = 16
    halo = 8

    def forward(self, x):
        return 2 * x


def test_runner_generic_module_is_exact(rng):
    frame = rng.random((3, 64, 80)).astype(np.float32)
    out = drain(Runner(Double(), Precision.reference(), 16, 8).run(frame))
    np.testing.assert_array_equal(out, 2 * frame)


@pytest.mark.parametrize(
    ("recurrent", "block"),
    [("none", "resblock"), ("convlstm", "resblock"), ("none", "nafblock"), ("none", "gateblock")],
)
def test_level_runner_equals_forward_when_overlap_covers_receptive_field(recurrent, block, rng):
    """With a halo of at least one pass's receptive field, tiles cannot see their borders:
    tiled equals the network's own forward pass up to float rounding."""
    net = wake_naf(tiny_srn(recurrent=recurrent, block=block))
    frame = rng.random((3, 160, 208)).astype(np.float32)
    with torch.inference_mode():
        ref = net(torch.from_numpy(frame)[None])[0].numpy()
    untiled = drain(Runner(net, Precision.reference(), None, 0).run(frame))
    np.testing.assert_array_equal(untiled, ref)
    halo = -(-net.receptive_field // 4) * 4
    tiled = drain(Runner(net, Precision.reference(), 32, halo).run(frame))
    np.testing.assert_allclose(tiled, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_full_size_random_srn_tiled_matches_untiled_to_50db():
    """The issue's bar: 512x512, tile_size=128, default overlap, random-weight default network.

    PSNR is taken over the outputs' own range: a random network's outputs span about 24 units
    instead of a photo's 1, and its tile-border errors scale with them.
    """
    from skimage import data

    torch.manual_seed(0)
    net = SRN(SRNConfig()).eval()
    frame = data.astronaut().astype(np.float32).transpose(2, 0, 1) / 255
    untiled = drain(Runner(net, Precision.reference(), None, net.halo).run(frame))
    tiled = drain(Runner(net, Precision.reference(), 128, net.halo).run(frame))
    value = psnr(tiled, untiled, float(untiled.max() - untiled.min()))
    assert value >= 50, value


def test_the_tile_rule_is_one_function_that_each_interface_words():
    from napari_srn.tiling import tiles_to_try

    assert tiles_to_try(96, 16) == ()
    assert tiles_to_try(100, 16) == (96, 112)
    assert tiles_to_try(8, 16) == tiles_to_try(0, 16) == (16,)
    assert tiles_to_try(-16, 16) == (16,)
