"""training.surgery: widen a trained network, see its dead stages, restart the bottleneck."""

import pytest
import torch

from napari_srn import SRN, SRNConfig
from napari_srn.training.surgery import decoder_activity, reinit_bottleneck, widen


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


def _kill_bottleneck(net: SRN) -> SRN:
    """What happened to the bundled default: up2's outputs all negative, so its ReLU gives 0."""
    with torch.no_grad():
        net.up2[0].bias.fill_(-1e3)
    return net


def test_decoder_activity_finds_a_dead_stage():
    cfg = SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3)
    net = _trained_like(cfg)
    images = [torch.rand(1, 3, 16, 16), torch.rand(2, 3, 32, 16)]
    alive = decoder_activity(net, images)
    assert set(alive) == {"up2", "up1"}
    assert 0.05 < alive["up2"] < 0.95 and 0.05 < alive["up1"] < 0.95
    dead = decoder_activity(_kill_bottleneck(net), images)
    assert dead["up2"] == 0.0 and dead["up1"] > 0.05
    assert not net.up2._forward_hooks  # the hooks are removed


def test_reinit_bottleneck_restarts_the_dead_stage_and_barely_changes_the_output():
    cfg = SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3, global_residual=True)
    dead = _kill_bottleneck(_trained_like(cfg))
    before = {k: v.clone() for k, v in dead.state_dict().items()}
    x = [torch.rand(2, 3, 32, 32)]
    restarted = reinit_bottleneck(dead, scale=0.1, seed=5)
    assert decoder_activity(restarted, x)["up2"] > 0.2
    for k, v in dead.state_dict().items():  # the caller's model is untouched
        assert torch.equal(v, before[k]), k
    changed = {k for k, v in restarted.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.split(".")[0] in {"enc3", "dec3", "up2"} for k in changed)
    with torch.no_grad():
        moved = (restarted(x[0]) - dead(x[0])).abs().mean()
        moved_full = (reinit_bottleneck(dead, scale=1.0, seed=5)(x[0]) - dead(x[0])).abs().mean()
    assert 0 < moved < moved_full  # scale keeps the change small
    restarted.train()
    restarted(x[0]).square().mean().backward()
    assert restarted.enc3[0].weight.grad.abs().sum() > 0  # the stage learns again
    again = reinit_bottleneck(dead, scale=0.1, seed=5)
    assert torch.equal(again.up2[0].weight, restarted.up2[0].weight)


def test_reinit_bottleneck_restarts_the_convlstm():
    cfg = SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3, recurrent="convlstm")
    net = _trained_like(cfg)
    restarted = reinit_bottleneck(net)
    assert not torch.equal(restarted.lstm.conv.weight, net.lstm.conv.weight)
    assert torch.equal(restarted.enc2[0].weight, net.enc2[0].weight)


@pytest.mark.parametrize("scale", [-0.1, 1.5, True, "0.1"])
def test_reinit_bottleneck_names_a_bad_scale(scale):
    net = SRN(SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3))
    with pytest.raises(ValueError, match=r"scale must be a number in \[0, 1\], got"):
        reinit_bottleneck(net, scale=scale)
    with pytest.raises(ValueError, match=r"scale=0 needs a LeakyReLU after up2 \(up_slope > 0"):
        reinit_bottleneck(net, scale=0, up_slope=0)


def test_by_default_the_new_stage_adds_nothing_yet_learns():
    """up2 starts at zero behind a LeakyReLU: the stage's random output is not noise to the
    trained layers after it, and the gradient reaches up2, then the stage."""
    cfg = SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3, up_slope=0.01)
    dead = _kill_bottleneck(_trained_like(cfg))
    restarted = reinit_bottleneck(dead)
    assert restarted.config == cfg
    up2 = restarted.up2[0]
    assert torch.count_nonzero(up2.weight) == 0 and torch.count_nonzero(up2.bias) == 0
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():  # a LeakyReLU of -1e3 still leaks: compare with up2's output at 0
        dead.up2.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        torch.testing.assert_close(restarted(x), dead(x))
    restarted.train()
    restarted(x).square().mean().backward()
    assert up2.weight.grad.abs().sum() > 0
    opt = torch.optim.Adam(restarted.parameters(), lr=1e-3)
    opt.step()
    opt.zero_grad()
    restarted(x).square().mean().backward()
    assert restarted.enc3[0].weight.grad.abs().sum() > 0


def test_reinit_bottleneck_can_make_the_upsamplings_leaky():
    cfg = SRNConfig(width=4, res_blocks=1, scales=2, kernel_size=3)
    net = _kill_bottleneck(_trained_like(cfg))
    leaky = reinit_bottleneck(net)  # the default slope
    assert leaky.config == SRNConfig(**{**cfg.__dict__, "up_slope": 0.01})
    assert reinit_bottleneck(net, scale=0.1, up_slope=None).config == cfg  # None: the model's
    assert isinstance(leaky.up1[1], torch.nn.LeakyReLU)
    assert torch.equal(leaky.enc2[0].weight, net.enc2[0].weight)
    assert net.config.up_slope == 0.0  # the caller's model is untouched
    with pytest.raises(ValueError, match="up_slope must be a number in"):
        reinit_bottleneck(net, up_slope=1.5)
    assert isinstance(reinit_bottleneck(net, scale=0.1, up_slope=None).up2[1], torch.nn.ReLU)
