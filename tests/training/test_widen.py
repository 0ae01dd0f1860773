"""widen: a wider copy of a trained network that computes the same output and can learn."""

import pytest
import torch

from napari_srn import SRN, SRNConfig
from napari_srn.training.widen import widen


def _trained_like(cfg: SRNConfig, seed: int = 1) -> SRN:
    """A network with every weight random (a trained one has no zero output convolution)."""
    torch.manual_seed(seed)
    net = SRN(cfg).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    return net


@pytest.mark.parametrize(
    "cfg",
    [
        SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3, global_residual=True),
        SRNConfig(width=4, res_blocks=2, scales=2, kernel_size=3, channels=1),
        SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3, recurrent="convlstm"),
    ],
    ids=["color-residual", "gray", "convlstm"],
)
def test_widened_network_computes_the_same_output(cfg):
    narrow = _trained_like(cfg)
    before = {k: v.clone() for k, v in narrow.state_dict().items()}
    wide = widen(narrow, 7)
    assert wide.config == SRNConfig(**{**cfg.__dict__, "width": 7})
    x = torch.rand(2, cfg.channels, 16, 16)
    with torch.no_grad():
        expected, got = narrow(x, return_all=True), wide(x, return_all=True)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)  # float sums reordered
    for k, v in narrow.state_dict().items():  # the caller's model is not touched
        assert torch.equal(v, before[k]), k


def test_new_channels_are_live_and_get_connected_by_training():
    narrow = _trained_like(SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3))
    wide = widen(narrow, 6)
    conv = wide.enc2[0]  # 4 -> 8 channels at width 4, 6 -> 12 at width 6
    assert conv.weight.shape[:2] == (12, 6)
    assert conv.weight[8:].abs().sum() > 0  # new channels read everything, with random weights
    assert torch.count_nonzero(conv.weight[:8, 4:]) == 0  # old channels don't read new ones yet
    wide.train()
    x = torch.rand(1, 3, 16, 16)
    wide(x).square().mean().backward()
    assert conv.weight.grad[:8, 4:].abs().sum() > 0  # so training connects them


def test_widen_is_seeded():
    narrow = _trained_like(SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3))
    a, b, c = widen(narrow, 6, seed=3), widen(narrow, 6, seed=3), widen(narrow, 6, seed=4)
    assert torch.equal(a.enc1[0].weight, b.enc1[0].weight)
    assert not torch.equal(a.enc1[0].weight, c.enc1[0].weight)


def test_same_width_is_a_copy():
    narrow = _trained_like(SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3))
    same = widen(narrow, 4)
    for (k, v), w in zip(narrow.state_dict().items(), same.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 3}, r"width must be an integer of at least the model's width \(4\), got 3"),
        ({"width": 6.0}, "width must be an integer"),
        ({"width": True}, "width must be an integer"),
    ],
)
def test_bad_width_is_named(kwargs, match):
    narrow = SRN(SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3))
    with pytest.raises(ValueError, match=match):
        widen(narrow, **kwargs)


@pytest.mark.parametrize("block", ["gateblock", "nafblock"])
def test_layernorm_blocks_are_refused(block):
    net = SRN(SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3, block=block))
    with pytest.raises(ValueError, match=f"ResBlock networks; this one uses block='{block}'"):
        widen(net, 8)


def test_model_must_be_an_srn():
    with pytest.raises(TypeError, match="model must be an SRN, got Linear"):
        widen(torch.nn.Linear(2, 2), 8)
