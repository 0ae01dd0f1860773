"""The network: parameter counts against the authors' code, config checks, structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_srn import SRN, VARIANTS, SRNConfig
from napari_srn.model.config import config_for_variant
from napari_srn.model.srn import downscale, resize

from ..helpers import tiny_srn, wake_naf

BLOCKS = ["resblock", "nafblock", "gateblock"]

# weights + biases of the released TensorFlow architecture (REFERENCE.md)
AUTHORS_PARAMS = {
    "color": 6_881_251,
    "gray": 6_876_449,
    "lstm": 8_056_609,
    "color_lstm": 8_061_411,
}


@pytest.mark.parametrize("variant", sorted(AUTHORS_PARAMS))
def test_parameter_count_matches_authors_code(variant):
    net = SRN(config_for_variant(variant))
    assert sum(p.numel() for p in net.parameters()) == AUTHORS_PARAMS[variant]


def test_default_config_is_the_authors_color_model():
    cfg = SRNConfig()
    assert cfg == VARIANTS["color"]
    assert (cfg.channels, cfg.width, cfg.scales, cfg.res_blocks, cfg.kernel_size) == (
        3,
        32,
        3,
        3,
        5,
    )
    assert cfg.recurrent == "none" and cfg.global_residual is False


def test_weights_are_shared_across_scales():
    # one set of layers, applied once per scale: the 1- and 3-scale models have equal size
    one = sum(p.numel() for p in SRN(SRNConfig(scales=1)).parameters())
    assert one == AUTHORS_PARAMS["color"]


def test_config_is_frozen_and_lists_every_invalid_field():
    with pytest.raises(Exception, match="cannot assign"):
        SRNConfig().width = 8  # type: ignore[misc]
    with pytest.raises(ValueError) as err:
        SRNConfig(channels=2, width=0, scales=0, kernel_size=4, recurrent="gru")
    msg = str(err.value)
    for field in ("channels", "width", "scales", "kernel_size", "recurrent"):
        assert field in msg


def test_config_round_trip_and_unknown_keys():
    cfg = SRNConfig(width=8, recurrent="convlstm")
    assert SRNConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"Unknown SRNConfig field\(s\) \['depth', 'widht'\]"):
        SRNConfig.from_dict({"widht": 8, "depth": 2})


def test_up_slope_makes_the_upsamplings_leaky_and_is_checked():
    torch.manual_seed(0)
    relu = SRN(SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3))
    leaky = SRN(SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3, up_slope=0.01))
    assert isinstance(relu.up2[1], torch.nn.ReLU) and isinstance(relu.up1[1], torch.nn.ReLU)
    for up in (leaky.up2[1], leaky.up1[1]):
        assert isinstance(up, torch.nn.LeakyReLU) and up.negative_slope == 0.01
    leaky.load_state_dict(relu.state_dict())  # the same weights: only the activation differs
    with torch.no_grad():
        relu.up2[0].bias.fill_(-1e4)  # every output of up2 negative: ReLU gives 0, no gradient
        leaky.up2[0].bias.fill_(-1e4)
    x = torch.rand(1, 3, 16, 16)
    relu(x).sum().backward()
    leaky(x).sum().backward()
    assert relu.enc3[0].weight.grad.abs().sum() == 0
    assert leaky.enc3[0].weight.grad.abs().sum() > 0
    for bad in (-0.1, 1.0, float("nan"), True, "0.01"):
        with pytest.raises(ValueError, match=r"up_slope must be a number in \[0, 1\), got"):
            SRNConfig(up_slope=bad)


def test_up_slope_is_left_out_of_older_models_headers():
    """Files and zarr-store identities of models from before up_slope stay as they were."""
    assert "up_slope" not in SRNConfig(width=8).to_dict()
    assert SRNConfig.from_dict({"width": 8}) == SRNConfig(width=8)
    leaky = SRNConfig(width=8, up_slope=0.01)
    assert leaky.to_dict()["up_slope"] == 0.01 and SRNConfig.from_dict(leaky.to_dict()) == leaky


def test_area_pyramid_shrinks_the_input_by_the_mean_from_a_quarter_on():
    """The authors' bilinear resize reads 2 x 2 of the 4 x 4 pixels of a quarter-size pixel;
    "area" reads all 16; at half size the two agree."""
    x = torch.zeros(1, 1, 16, 16)
    x[..., 0::4, :] = 1.0  # every 4th row lit: a quarter of the light in each 4 x 4 cell
    np.testing.assert_allclose(downscale(x, (4, 4), "area"), 0.25)
    assert float(downscale(x, (4, 4), "bilinear").max()) == 0.0  # aliased: the rows vanish
    y = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(downscale(y, (16, 16), "area"), resize(y, (16, 16)))
    assert downscale(y, (32, 32), "area") is y
    cfg = dict(width=4, res_blocks=1, scales=3, kernel_size=3, global_residual=True)
    bilinear, area = SRN(SRNConfig(**cfg)), SRN(SRNConfig(**cfg, pyramid="area"))
    area.load_state_dict(bilinear.state_dict())
    with torch.no_grad():
        a, b = area(y, return_all=True), bilinear(y, return_all=True)
    torch.testing.assert_close(a[0], downscale(y, (8, 8), "area"))  # untrained: the input
    assert not torch.allclose(a[0], b[0])  # the quarter-size input differs
    assert "pyramid" not in SRNConfig(width=8).to_dict()  # older headers stay as they were
    assert SRNConfig.from_dict(SRNConfig(pyramid="area").to_dict()).pyramid == "area"
    with pytest.raises(ValueError, match="pyramid must be 'bilinear' or 'area', got 'box'"):
        SRNConfig(pyramid="box")


def test_unknown_variant_lists_choices():
    with pytest.raises(ValueError, match="color_lstm"):
        config_for_variant("rgb")


@pytest.mark.parametrize(("scales", "divisor"), [(1, 4), (2, 8), (3, 16), (4, 32)])
def test_divisor_follows_structure(scales, divisor):
    net = tiny_srn(scales=scales)
    assert net.divisor == divisor
    x = torch.rand(1, 3, 2 * divisor, 3 * divisor)
    with torch.inference_mode():
        assert net(x).shape == x.shape
    bad = torch.rand(1, 3, 2 * divisor + 2, 3 * divisor)
    with pytest.raises(ValueError, match=f"multiples of {divisor}"):
        net(bad)


@pytest.mark.parametrize("block", BLOCKS)
def test_return_all_gives_every_scale_coarse_to_fine(block):
    net = wake_naf(tiny_srn(recurrent="convlstm", block=block))
    outs = net(torch.rand(2, 3, 64, 48), return_all=True)
    assert [tuple(o.shape) for o in outs] == [(2, 3, 16, 12), (2, 3, 32, 24), (2, 3, 64, 48)]


def test_gray_and_color_channels():
    assert tiny_srn(1)(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        tiny_srn(3)(torch.rand(1, 1, 32, 32))


def test_no_gradient_through_previous_prediction():
    """Only the finest scale's loss reaches the finest pass's input path (stop_gradient)."""
    net = tiny_srn()
    x = torch.rand(1, 3, 32, 32)
    outs = net(x, return_all=True)
    # the coarse outputs feed the fine pass detached: d(fine)/d(coarse) must not exist
    assert outs[-1].grad_fn is not None
    coarse = outs[0]
    (g,) = torch.autograd.grad(outs[-1].sum(), coarse, allow_unused=True)
    assert g is None


def test_lstm_state_carries_information_across_scales():
    net = tiny_srn(recurrent="convlstm")
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        y = net(x)
        # zero the LSTM's contribution and the result must change
        net.lstm.conv.weight.zero_()
        assert not torch.allclose(y, net(x))


@pytest.mark.parametrize(
    ("block", "kernel_size"),
    [("resblock", 3), ("nafblock", 3), ("gateblock", 3), ("gateblock", 5)],
)
def test_receptive_field_matches_an_impulse_response(block, kernel_size):
    """A pixel changes one scale's output exactly up to `receptive_field` pixels away."""
    net = wake_naf(tiny_srn(kernel_size=kernel_size, recurrent="convlstm", block=block))
    rf = net.receptive_field
    size = -(-(2 * rf + 64) // 4) * 4  # level() needs multiples of 4
    x = torch.zeros(1, 3, size, size)
    x2 = x.clone()
    c = size // 2
    x2[0, :, c, c] = 1.0
    with torch.inference_mode():
        d = (net.level(x2, x2)[0] - net.level(x, x)[0]).abs().amax(dim=(0, 1)).numpy()
    rows, cols = np.nonzero(d > 0)
    reach = max(np.abs(rows - c).max(), np.abs(cols - c).max())
    assert rf - 8 <= reach <= rf
    assert net.halo % 4 == 0 and net.halo <= rf


def test_default_model_geometry():
    net = SRN()
    assert (net.divisor, net.receptive_field, net.halo) == (16, 184, 48)


def test_untrained_global_residual_network_is_the_identity():
    net = tiny_srn(global_residual=True)
    x = torch.rand(1, 3, 32, 48)
    with torch.inference_mode():
        assert torch.equal(net(x), x)
    # the faithful variant predicts the image itself from random weights: not the identity
    with torch.inference_mode():
        assert not torch.allclose(tiny_srn()(x), x)


def test_nafblock_network_is_smaller_and_starts_as_identity_with_global_residual():
    res = SRN(SRNConfig(width=16, kernel_size=3))
    naf = SRN(SRNConfig(width=16, kernel_size=3, block="nafblock"))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(naf) < count(res)
    assert naf.receptive_field < res.receptive_field
    net = tiny_srn(block="nafblock", global_residual=True)
    x = torch.rand(1, 3, 32, 48)
    with torch.inference_mode():
        assert torch.equal(net(x), x)


def test_gateblock_network_is_larger_and_starts_as_identity_with_global_residual():
    """Dense k x k convolutions (C -> 2C, C -> C) plus a gated 1x1 part: more parameters than
    a ResBlock's two C -> C convolutions, the same receptive field."""
    res = SRN(SRNConfig(width=16, kernel_size=3))
    gate = SRN(SRNConfig(width=16, kernel_size=3, block="gateblock"))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(gate) > count(res)
    assert gate.receptive_field == res.receptive_field
    assert (gate.divisor, gate.halo) == (res.divisor, res.halo)
    net = tiny_srn(block="gateblock", global_residual=True)
    x = torch.rand(1, 3, 32, 48)
    with torch.inference_mode():
        assert torch.equal(net(x), x)


def test_fresh_gateblock_is_the_identity_and_has_no_depthwise_convolution():
    from napari_srn.model.blocks import GateBlock

    torch.manual_seed(0)
    block = GateBlock(8, 3)
    x = torch.rand(2, 8, 12, 20)
    with torch.inference_mode():
        assert torch.equal(block(x), x)
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.groups == 1 for m in convs)
    assert [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in convs] == [
        (8, 16, 3),
        (8, 8, 3),
        (8, 16, 1),
        (8, 8, 1),
    ]


@pytest.mark.parametrize("block", ["nafblock", "gateblock"])
def test_normalised_blocks_normalise_each_pixel_on_their_own(block):
    """LayerNorm2d is per pixel: a crop of the input gives the same crop of the output
    (no statistic pooled over the image, which would break tiling). The 2-px margin covers
    both blocks' reach: 1 px for a NAFBlock (one depthwise 3x3), 2 for a GateBlock (two 3x3)."""
    from napari_srn.model.blocks import GateBlock, NAFBlock

    torch.manual_seed(0)
    block = NAFBlock(8) if block == "nafblock" else GateBlock(8, 3)
    with torch.no_grad():
        block.beta.fill_(1.0)
        block.gamma.fill_(1.0)
        x = torch.rand(1, 8, 24, 24)
        full = block(x)[..., 8:16, 8:16]
        crop = block(x[..., 6:18, 6:18])[..., 2:10, 2:10]
    torch.testing.assert_close(full, crop)


def test_unknown_block_is_refused():
    with pytest.raises(ValueError, match="block must be 'resblock', 'nafblock' or 'gateblock'"):
        SRNConfig(block="transformer")  # type: ignore[arg-type]
