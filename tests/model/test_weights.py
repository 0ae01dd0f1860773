"""Weights: safe format, bundled registry, clear errors for bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import napari_srn
from napari_srn import SRN, ModelCard, SRNConfig, list_models, load_model, save_model
from napari_srn.model import weights as W

from ..helpers import tiny_srn

CARD = ModelCard(name="tiny", description="a test model", training_steps=3)
#: What the bundled default must gain on held-out photos (measured: see the test).
MIN_PSNR_GAIN_DB = 0.0


def test_list_models_has_default_and_every_registry_entry():
    names = list_models()
    assert names[0] == "default"
    assert len(names) >= 2


def test_bundled_default_loads_with_card_and_verified_hash():
    model = load_model("default", device="cpu")
    assert isinstance(model, napari_srn.SRN)
    assert not model.training
    assert model.card.name in list_models()
    assert model.sha256 == W.sha256_of(model.source)
    assert model.config.channels == 3
    assert model.card.input_range
    assert next(model.parameters()).dtype == torch.float32


@pytest.mark.parametrize("block", ["resblock", "nafblock", "gateblock"])
def test_round_trip_keeps_config_weights_and_card(tmp_path, block):
    net = tiny_srn(recurrent="convlstm", block=block)
    path = tmp_path / "m.safetensors"
    sha = save_model(net, path, CARD)
    loaded = load_model(path, device="cpu")
    assert loaded.config == net.config
    assert loaded.card == CARD
    assert loaded.sha256 == sha
    for (k, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_round_trip_keeps_a_leaky_upsampling_and_an_area_pyramid(tmp_path):
    cfg = SRNConfig(width=4, res_blocks=1, scales=3, kernel_size=3, up_slope=0.01, pyramid="area")
    save_model(SRN(cfg), tmp_path / "m.safetensors", CARD)
    loaded = load_model(tmp_path / "m.safetensors", device="cpu")
    assert loaded.config == cfg
    assert isinstance(loaded.up2[1], torch.nn.LeakyReLU)


def test_save_refuses_a_model_that_load_model_would_refuse(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "MAX_RES_BLOCKS", 1)
    with pytest.raises(ValueError, match="res_blocks=2 .* could not be loaded back"):
        save_model(tiny_srn(res_blocks=2), tmp_path / "m.safetensors", CARD)
    monkeypatch.setattr(W, "MAX_RES_BLOCKS", 64)
    monkeypatch.setattr(W, "MAX_PARAMETERS", 1000)
    with pytest.raises(ValueError, match="parameters, so the file could not be loaded back"):
        save_model(tiny_srn(), tmp_path / "m.safetensors", CARD)
    assert not list(tmp_path.iterdir())  # nothing written


def test_half_precision_file_is_smaller_and_loads_as_float32(tmp_path):
    net = tiny_srn()
    full, half = tmp_path / "f.safetensors", tmp_path / "h.safetensors"
    save_model(net, full, CARD)
    save_model(net, half, CARD, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert next(load_model(half, device="cpu").parameters()).dtype == torch.float32


def test_save_refuses_to_overwrite_and_needs_the_suffix(tmp_path):
    net = tiny_srn()
    path = tmp_path / "m.safetensors"
    save_model(net, path, CARD)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model(net, path, CARD)
    save_model(net, path, CARD, overwrite=True)
    with pytest.raises(ValueError, match=r"\.safetensors"):
        save_model(net, tmp_path / "m.pt", CARD)
    assert not list(tmp_path.glob("*.partial"))


def test_loaded_models_are_independent_copies():
    a = load_model("default", device="cpu")
    with torch.no_grad():
        a.out.bias.fill_(5.0)
    b = load_model("default", device="cpu")
    assert not torch.equal(a.out.bias, b.out.bias)


def _write_bad_files(tmp_path):
    net = tiny_srn()
    good = tmp_path / "good.safetensors"
    save_model(net, good, CARD)
    data = good.read_bytes()
    files = {}
    files["truncated"] = tmp_path / "truncated.safetensors"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["garbage"] = tmp_path / "garbage.safetensors"
    files["garbage"].write_bytes(b"\x80\x04\x95 this is a pickle, not safetensors" * 10)
    files["foreign"] = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(files["foreign"]))
    config = net.config.to_json()

    def write(name, tensors, config=config, version="1", **extra):
        files[name] = tmp_path / f"{name}.safetensors"
        meta = {"format": "napari-srn", "format_version": version, "config": config, **extra}
        save_file(tensors, str(files[name]), metadata=meta)

    state = {k: v for k, v in net.state_dict().items() if not k.startswith("out.")}
    state["enc1.0.weight"] = torch.zeros(1, 1, 1, 1)
    write("mismatch", state, card=json.dumps({"name": "x", "description": ""}))
    write("badconfig", net.state_dict(), config='{"width": -1, "depth": 3}')
    # tiny tensors under a config of 100,000 channels: refused before anything is allocated
    write("huge", net.state_dict(), config=SRNConfig(width=100_000).to_json())
    # ten million blocks: even an empty (meta) network of them took minutes and gigabytes
    write("deep", net.state_dict(), config=SRNConfig(width=1, res_blocks=10**7).to_json())
    poisoned = {k: v.clone() for k, v in net.state_dict().items()}
    poisoned["out.bias"][0] = float("nan")
    write("nan", poisoned)
    write("ints", {k: v.to(torch.int32) for k, v in net.state_dict().items()})
    write("future", net.state_dict(), version="99")
    write("cardlist", net.state_dict(), card="[1, 2]")
    return files


@pytest.mark.parametrize(
    ("case", "exc", "match"),
    [
        ("truncated", ValueError, "not a readable safetensors file"),
        ("garbage", ValueError, "not a readable safetensors file"),
        ("foreign", ValueError, "not a napari-srn model"),
        ("mismatch", ValueError, r"does not match its config.*missing tensors.*shape mismatch"),
        ("badconfig", ValueError, "no valid config"),
        ("future", ValueError, "format_version '99'"),
        ("huge", ValueError, r"declares a network of [\d,]+ parameters.*at most 1,073,741,824"),
        ("deep", ValueError, "declares res_blocks=10000000; napari-srn loads at most 64"),
        ("nan", ValueError, r"NaN or infinite values in \['out.bias'\]"),
        ("ints", ValueError, "non-float tensors"),
        ("cardlist", ValueError, "unreadable model card.*must be a JSON object"),
    ],
)
def test_bad_files_give_errors_naming_the_file(tmp_path, case, exc, match):
    path = _write_bad_files(tmp_path)[case]
    with pytest.raises(exc, match=match) as err:
        load_model(path, device="cpu")
    assert str(path) in str(err.value)


@pytest.mark.parametrize("block", ["resblock", "nafblock", "gateblock"])
@pytest.mark.parametrize("recurrent", ["none", "convlstm"])
def test_the_parameter_count_of_a_config_is_the_networks(block, recurrent):
    """What load_model checks a file's config by before it builds anything (issue 22, item 15)."""
    for channels, kernel_size, res_blocks in [(1, 1, 0), (3, 3, 2), (3, 5, 1)]:
        config = SRNConfig(
            channels=channels,
            width=4,
            res_blocks=res_blocks,
            kernel_size=kernel_size,
            recurrent=recurrent,
            block=block,
        )
        net = napari_srn.SRN(config)
        assert config.parameter_count == sum(v.numel() for v in net.state_dict().values())
    assert SRNConfig().parameter_count == 6_881_251  # the paper's color model


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_model(tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="neither a bundled model.*default"):
        load_model("no-such-model")


def test_damaged_bundled_file_is_detected(monkeypatch):
    real = W._registry()
    name = real["default"]
    fake = {**real, "models": {name: {**real["models"][name], "sha256": "0" * 64}}}
    monkeypatch.setattr(W, "_registry", lambda: fake)
    W._load_cached.cache_clear()
    with pytest.raises(ValueError, match="Reinstall napari-srn"):
        load_model("default", device="cpu")
    W._load_cached.cache_clear()


def test_pickles_are_never_opened(tmp_path):
    """A torch pickle renamed to .safetensors is rejected without being unpickled."""
    path = tmp_path / "evil.safetensors"
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_model(path, device="cpu")


def test_unavailable_device_is_an_error_not_a_fallback():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        load_model("default", device="cuda")
    with pytest.raises(ValueError, match="not a device torch knows"):
        load_model("default", device="gpu0")


def test_device_none_picks_cuda_only_when_present():
    assert W.resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_config_of_a_saved_model_is_the_config_dataclass(tmp_path):
    net = tiny_srn(channels=1, scales=2)
    path = tmp_path / "g.safetensors"
    save_model(net, path, CARD)
    assert load_model(path, device="cpu").config == SRNConfig(
        channels=1, width=4, res_blocks=1, scales=2
    )


def test_saved_files_are_readable_by_others(tmp_path):
    import os
    import stat

    path = tmp_path / "shared.safetensors"
    old = os.umask(0o022)
    try:
        save_model(tiny_srn(), path, CARD)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_bundled_default_is_trained_and_sharpens_held_out_photos():
    """The shipped model, blind, on photos it never saw blurred by fresh camera-shake kernels:
    on average its output is closer to the sharp photo than the blurred input (an identity or
    a harmful model fails). The full benchmark is in the card and docs/models.md."""
    from skimage import data
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from napari_srn import deblur
    from napari_srn.synthesis.kernels import blur_image, motion_kernel

    model = load_model("default", device="cpu")
    assert not model.card.provisional and model.card.training_steps > 0
    bench = model.card.metrics["benchmark"]
    assert bench["model_blind"]["psnr"] > bench["blurred_input"]["psnr"]
    rng = np.random.default_rng(7)
    gains = []
    for photo in (data.chelsea(), data.coffee(), data.rocket()):
        sharp = photo[64:256, 128:320]
        for size in (13, 19):
            kernel = motion_kernel(size, rng=rng)
            blurred = blur_image(sharp.astype(np.float32) / 255, kernel, channel_axis=-1)
            blurred = blurred + rng.normal(0, 0.005, blurred.shape)
            blurred = np.clip(np.rint(blurred * 255), 0, 255).astype(np.uint8)
            out = deblur(blurred, model=model, channel_axis=-1)
            gains.append(
                (
                    peak_signal_noise_ratio(sharp, out) - peak_signal_noise_ratio(sharp, blurred),
                    structural_similarity(sharp, out, channel_axis=-1)
                    - structural_similarity(sharp, blurred, channel_axis=-1),
                )
            )
    psnr_gain, ssim_gain = np.mean(gains, axis=0)
    assert psnr_gain > MIN_PSNR_GAIN_DB and ssim_gain > 0, gains
