"""The training loop: the loss goes down, resume is exact, outputs are safe and loadable."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import yaml
from skimage import data as skdata

from napari_srn import SRN, ModelCard, TrainConfig, deblur, load_model, save_model, train
from napari_srn.cli import main
from napari_srn.training.config import config_from_file
from napari_srn.training.export import export_checkpoint
from napari_srn.training.metrics import multiscale_loss
from napari_srn.training.run_files import read_log
from napari_srn.training.session import PolyDecay

from ..helpers import tiny_srn


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Six small sharp photos from scikit-image (no download)."""
    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "cat"):
        image = getattr(skdata, name)()
        iio.imwrite(root / f"{name}.png", image[::4, ::4][:96, :96])
    return root


def tiny(tmp_path, data, **kw) -> TrainConfig:
    base = {
        "data": str(data),
        "out": str(tmp_path / "run"),
        "width": 4,
        "res_blocks": 1,
        "crop": 32,
        "batch_size": 2,
        "steps": 8,
        "val_crop": 32,
        "val_every": 4,
        "log_every": 1,
        "checkpoint_every": 0,
        "num_workers": 0,
        "progress": False,
        "shake_size": (3, 9),
        "val_fraction": 0.2,
    }
    return TrainConfig(**{**base, **kw})


def test_a_few_dozen_steps_lower_the_loss(tmp_path, photos):
    cfg = tiny(tmp_path, photos, steps=40, lr=2e-3, batch_size=4, val_every=0)
    result = train(cfg)
    losses = read_log(result.run_dir / "train.csv")["loss"]
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:4]), losses


def test_resume_continues_exactly(tmp_path, photos):
    straight = train(tiny(tmp_path / "a", photos))
    stops = []

    def stop_at_4(progress):
        stops.append(progress.step)
        return progress.step < 4

    first = train(tiny(tmp_path / "b", photos), callback=stop_at_4)
    assert first.stopped and first.weights is None and first.step == 4
    resumed = train(tiny(tmp_path / "b", photos, resume=True))
    assert not resumed.stopped and resumed.step == 8

    a, b = read_log(straight.run_dir / "train.csv"), read_log(resumed.run_dir / "train.csv")
    assert a["step"] == b["step"] == list(range(1, 9))  # rows after the stop were not doubled
    assert a["loss"][4:] == b["loss"][4:]  # bit for bit, written with repr
    assert a["lr"] == b["lr"]
    va, vb = read_log(straight.run_dir / "val.csv"), read_log(resumed.run_dir / "val.csv")
    assert va["psnr"] == vb["psnr"] and va["step"] == [4.0, 8.0]
    wa, wb = load_model(straight.weights).state_dict(), load_model(resumed.weights).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_the_output_is_a_weights_file_with_a_filled_card(tmp_path, photos):
    result = train(tiny(tmp_path, photos, name="tiny-test", half=True))
    model = load_model(result.weights, device="cpu")
    card = model.card
    assert card.name == "tiny-test" and card.training_steps == 8
    assert "sharp images with synthetic camera shake" in card.training_data
    assert card.wall_time_hours > 0 and "torch" in card.hardware
    for key in ("val_psnr", "val_ssim", "val_psnr_input", "val_ssim_input", "val_images"):
        assert key in card.metrics
    assert card.metrics["val_images"] == 1  # 6 photos, 20 % held out
    assert model.config.width == 4
    image = skdata.camera()[:64, :64]
    out = deblur(image, model=str(result.weights), progress=False)
    assert out.shape == image.shape and out.dtype == np.uint8
    # the run directory holds everything the docs promise
    for name in ("config.yaml", "checkpoint.pt", "train.csv", "val.csv", "progress.png"):
        assert (result.run_dir / name).is_file(), name
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["width"] == 4 and saved["scales"] == 3  # resolved, not None
    assert iio.imread(result.run_dir / "progress.png").ndim == 3


def test_runs_are_never_overwritten_without_asking(tmp_path, photos):
    train(tiny(tmp_path, photos, steps=2, val_every=0))
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        train(tiny(tmp_path, photos, steps=2, val_every=0))
    with pytest.raises(ValueError, match="exactly with a different config") as info:
        train(tiny(tmp_path, photos, steps=3, width=8, resume=True))
    assert "width: the run has 4, now 8" in str(info.value)
    assert "steps" not in str(info.value)  # a longer run alone would be allowed
    again = train(tiny(tmp_path, photos, steps=2, val_every=0, overwrite=True, seed=5))
    assert (
        again.step == 2 and yaml.safe_load((again.run_dir / "config.yaml").read_text())["seed"] == 5
    )
    with pytest.raises(FileNotFoundError, match="without --resume"):
        train(tiny(tmp_path / "new", photos, resume=True))


def test_fine_tuning_starts_from_the_given_weights(tmp_path, photos):
    start = tiny_srn(3, seed=3)
    path = tmp_path / "start.safetensors"
    save_model(start, path, ModelCard(name="start", description="test"))
    cfg = tiny(
        tmp_path,
        photos,
        width=None,
        res_blocks=None,
        init_weights=str(path),
        steps=2,
        lr=1e-12,
        val_every=0,
    )
    result = train(cfg)
    tuned = load_model(result.weights).state_dict()
    for key, value in start.state_dict().items():
        torch.testing.assert_close(tuned[key], value, rtol=0, atol=1e-8)
    assert f"fine-tuned from {path}" in load_model(result.weights).card.description
    described = train(cfg.replace(out=str(tmp_path / "d"), description="My model."))
    description = load_model(described.weights).card.description
    assert description == f"My model; fine-tuned from {path}"
    with pytest.raises(ValueError, match=r"width=8 \(the weights have 4\)"):
        train(tiny(tmp_path / "c", photos, width=8, res_blocks=None, init_weights=str(path)))
    path.unlink()  # a resumed run takes its weights from the checkpoint
    resumed = train(config_from_file(result.run_dir / "config.yaml", {"resume": True}))
    assert resumed.step == 2
    # ... so the starting weights may have moved (the bundled default's run did)
    moved = config_from_file(
        result.run_dir / "config.yaml",
        {"resume": True, "steps": 3, "init_weights": str(tmp_path / "moved.safetensors")},
    )
    assert train(moved).step == 3
    # and the run directory itself may move (the default's run is kept in training_runs/)
    shutil.copytree(result.run_dir, tmp_path / "copied")
    copied = config_from_file(
        tmp_path / "copied" / "config.yaml",
        {"resume": True, "steps": 4, "out": str(tmp_path / "copied")},
    )
    assert train(copied).step == 4
    assert read_log(tmp_path / "copied" / "train.csv")["step"] == [1, 2, 3, 4]


def test_validation_warns_when_the_bottleneck_stage_is_dead(tmp_path, photos, caplog):
    start = tiny_srn(3, seed=3)
    path = tmp_path / "start.safetensors"
    save_model(start, path, ModelCard(name="start", description="test"))
    cfg = tiny(tmp_path / "alive", photos, width=None, res_blocks=None, init_weights=str(path))
    cfg = cfg.replace(steps=2, lr=1e-12, val_every=2)
    with caplog.at_level("WARNING", logger="napari_srn.training.loop"):
        train(cfg)
    assert "stage is dead" not in caplog.text
    with torch.no_grad():  # what happened to the bundled default: up2's ReLU outputs only 0
        start.up2[0].bias.fill_(-1e3)
    save_model(start, path, ModelCard(name="start", description="test"), overwrite=True)
    with caplog.at_level("WARNING", logger="napari_srn.training.loop"):
        train(cfg.replace(out=str(tmp_path / "dead")))
    assert (
        "step 2: the network's quarter-resolution stage is dead: every output of its "
        "upsampling up2 is 0" in caplog.text
    )
    assert "surgery.reinit_bottleneck" in caplog.text
    caplog.clear()  # a LeakyReLU upsampling still leaks and learns: not dead
    leaky = SRN(dataclasses.replace(start.config, up_slope=0.01))
    leaky.load_state_dict(start.state_dict())
    save_model(leaky, path, ModelCard(name="start", description="test"), overwrite=True)
    with caplog.at_level("WARNING", logger="napari_srn.training.loop"):
        train(cfg.replace(out=str(tmp_path / "leaky")))
    assert "stage is dead" not in caplog.text


def test_checkpoints_from_before_up_slope_and_pyramid_resume_and_export(tmp_path, photos):
    cfg = tiny(tmp_path, photos, steps=2, val_every=0)
    result = train(cfg)
    assert result.weights is not None
    checkpoint = result.run_dir / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    assert state["config"]["up_slope"] == 0.0 and state["config"]["pyramid"] == "bilinear"
    del state["config"]["up_slope"], state["config"]["pyramid"]  # as before the fields existed
    torch.save(state, checkpoint)
    assert train(cfg.replace(resume=True, steps=3)).step == 3
    state = torch.load(checkpoint, weights_only=True)
    del state["config"]["up_slope"], state["config"]["pyramid"]
    torch.save(state, checkpoint)
    exported = export_checkpoint(checkpoint, tmp_path / "old.safetensors")
    assert load_model(exported).config.up_slope == 0.0
    assert load_model(exported).config.pyramid == "bilinear"
    new = tiny(tmp_path / "new", photos, steps=1, val_every=0, up_slope=0.01, pyramid="area")
    assert load_model(train(new).weights).config == dataclasses.replace(
        load_model(exported).config, up_slope=0.01, pyramid="area"
    )


def test_gopro_style_pairs_train_and_validate_on_held_out_sequences(tmp_path, rng):
    for seq in ("s1", "s2", "s3"):
        for kind in ("sharp", "blur"):
            (tmp_path / "pairs" / seq / kind).mkdir(parents=True)
        for i in range(2):
            sharp = rng.integers(0, 256, (40, 40), dtype=np.uint8)
            blurred = (sharp.astype(np.uint16) + np.roll(sharp, 3, axis=1)) // 2
            iio.imwrite(tmp_path / "pairs" / seq / "sharp" / f"{i}.png", sharp)
            iio.imwrite(tmp_path / "pairs" / seq / "blur" / f"{i}.png", blurred.astype(np.uint8))
    result = train(
        tiny(tmp_path, tmp_path / "pairs", channels=1, steps=2, val_fraction=0.3, val_crop=0)
    )
    card = load_model(result.weights).card
    assert "6 blurred/sharp pairs in 3 sequence(s)" in card.training_data
    assert "4 for training" in card.training_data
    assert card.metrics["val_images"] == 2 and card.metrics["val_crop"] == "whole image"


def test_the_learning_rate_decays_polynomially_to_zero(tmp_path, photos):
    result = train(
        tiny(tmp_path, photos, steps=6, lr=1e-3, lr_power=0.3, val_every=0, val_fraction=0)
    )
    lrs = read_log(result.run_dir / "train.csv")["lr"]
    expected = [1e-3 * (1 - s / 6) ** 0.3 for s in range(6)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert PolyDecay(10, 0.3)(10) == 0.0 and PolyDecay(10, 0.3)(12) == 0.0
    assert result.metrics == {"train_loss": pytest.approx(result.metrics["train_loss"])}


def test_multiscale_loss_is_the_sum_of_per_scale_mse():
    sharp = torch.rand(2, 3, 32, 32)
    outputs = [torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16), torch.rand(2, 3, 32, 32)]
    expected = sum(
        torch.mean(
            (o - torch.nn.functional.interpolate(sharp, size=o.shape[-2:], mode="bilinear")) ** 2
        )
        for o in outputs
    )
    torch.testing.assert_close(multiscale_loss(outputs, sharp), expected)
    perfect = [
        torch.nn.functional.interpolate(sharp, size=o.shape[-2:], mode="bilinear") for o in outputs
    ]
    assert float(multiscale_loss(perfect, sharp)) == 0.0
    for kind in ("l1", "l1+fft"):
        assert float(multiscale_loss(perfect, sharp, kind)) == 0.0
    # an "area" network's targets are the means its input shrinks by
    area = [torch.nn.functional.avg_pool2d(sharp, 32 // o.shape[-1]) for o in outputs]
    assert float(multiscale_loss(area, sharp, "l1", "area")) == 0.0
    assert float(multiscale_loss(area, sharp, "l1")) > 0


def test_l1_and_fourier_losses():
    sharp = torch.zeros(1, 1, 16, 16)
    out = torch.zeros(1, 1, 16, 16)
    out[..., 3, 5] = 2.0  # one wrong pixel: L1 2/256; its spectrum is 2 everywhere
    l1 = multiscale_loss([out], sharp, "l1")
    torch.testing.assert_close(l1, torch.tensor(2.0 / 256))
    # rfft2 keeps 16 x 9 complex values: |re| + |im| of 2 * exp(-i phi), averaged over 2 x 144
    spectrum = torch.fft.rfft2(out)
    fft = torch.view_as_real(spectrum).abs().mean()
    torch.testing.assert_close(multiscale_loss([out], sharp, "l1+fft"), l1 + 0.1 * fft)
    assert float(fft) > 0
    with pytest.raises(ValueError, match="loss must be"):
        multiscale_loss([out], sharp, "ssim")
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(data="x", loss="l2")


def test_cli_trains_writes_the_resolved_config_and_resumes(tmp_path, photos, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": str(photos),
                "out": str(tmp_path / "run"),
                "width": 4,
                "res_blocks": 1,
                "crop": 32,
                "batch_size": 2,
                "steps": 4,
                "val_crop": 32,
                "num_workers": 0,
                "shake_size": [3, 9],
                "checkpoint_every": 2,
            }
        )
    )
    args = ["train", "--config", str(cfg), "--no-progress", "--val-every", "2", "--overwrite"]
    assert main(args) == 0  # --overwrite is how the run began, not part of it
    out = capsys.readouterr().out
    assert "step 4: train loss" in out and "validation (1 images): PSNR" in out
    assert "model.safetensors" in out
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["val_every"] == 2 and saved["channels"] == 3 and saved["recurrent"] == "none"
    # a finished run resumes to the same result; a changed one is refused with the fields
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--lr", "1"]) == 1
    assert "lr: the run has 0.0001, now 1.0" in capsys.readouterr().err


def test_a_worker_process_gives_the_same_losses(tmp_path, photos):
    a = train(tiny(tmp_path / "w0", photos, steps=3, val_every=0, val_fraction=0))
    b = train(tiny(tmp_path / "w1", photos, steps=3, val_every=0, val_fraction=0, num_workers=1))
    assert read_log(a.run_dir / "train.csv")["loss"] == read_log(b.run_dir / "train.csv")["loss"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp_dtype", ["bfloat16", "float16"])
def test_cuda_with_autocast(tmp_path, photos, amp_dtype):
    result = train(tiny(tmp_path, photos, steps=6, device="cuda", amp_dtype=amp_dtype))
    assert "CUDA" in load_model(result.weights).card.hardware
    assert np.isfinite(read_log(result.run_dir / "train.csv")["loss"]).all()
    resumed = train(
        tiny(tmp_path, photos, steps=6, device="cuda", amp_dtype=amp_dtype, resume=True)
    )
    assert resumed.step == 6


def test_ctrl_c_stops_after_the_step_with_a_checkpoint(tmp_path, photos):
    def press_ctrl_c(progress):
        if progress.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-run, like a real Ctrl-C

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path, photos, val_every=0, val_fraction=0), callback=press_ctrl_c)
    assert signal.getsignal(signal.SIGINT) is handler  # restored
    assert read_log(tmp_path / "run" / "train.csv")["step"] == [1, 2, 3]
    resumed = train(tiny(tmp_path, photos, val_every=0, val_fraction=0, resume=True))
    straight = train(tiny(tmp_path / "straight", photos, val_every=0, val_fraction=0))
    assert (
        read_log(resumed.run_dir / "train.csv")["loss"]
        == read_log(straight.run_dir / "train.csv")["loss"]
    )


def test_export_checkpoint_gives_a_loadable_interim_model(tmp_path, photos):
    from napari_srn.training.export import export_checkpoint

    result = train(tiny(tmp_path, photos, name="tiny-test"))
    dest = export_checkpoint(result.run_dir / "checkpoint.pt", tmp_path / "step.safetensors")
    model = load_model(dest, device="cpu")
    final = load_model(result.weights, device="cpu")
    assert model.card.provisional and model.card.training_steps == 8
    assert model.card.name == "tiny-test-step8"
    assert model.config == final.config
    for (k, a), (_, b) in zip(model.state_dict().items(), final.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3, msg=k)  # stored as float16
    with pytest.raises(FileExistsError):
        export_checkpoint(result.run_dir / "checkpoint.pt", dest)


def test_cpu_precision_policy():
    from napari_srn.inference.precision import cpu_has_bf16
    from napari_srn.training.precision import training_precision

    def policy(amp, amp_dtype, device):  # (autocast?, dtype, channels-last?)
        p = training_precision(amp, amp_dtype, device)
        assert p.device == device
        return p.dtype != torch.float32, p.dtype, p.channels_last

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert policy(False, "bfloat16", cpu) == (False, torch.float32, True)
    assert policy(False, "float16", cuda) == (False, torch.float32, False)
    assert policy(True, "float16", cuda) == (True, torch.float16, False)
    assert policy(True, "bfloat16", cuda) == (True, torch.bfloat16, False)
    expected = (True, torch.bfloat16, True) if cpu_has_bf16() else (False, torch.float32, True)
    assert policy(True, "bfloat16", cpu) == expected
    assert policy(True, "float16", cpu) == expected  # float16 is CUDA only
    assert policy(True, "bfloat16", torch.device("mps")) == (False, torch.float32, False)


@pytest.mark.parametrize("amp", [False, True])
def test_cpu_training_in_either_precision_resumes_exactly(tmp_path, photos, amp):
    # on a CPU with native bfloat16, amp=True trains in bfloat16 autocast, channels-last
    full = train(tiny(tmp_path / "full", photos, steps=4, val_every=0, amp=amp))
    first = train(
        tiny(tmp_path / "part", photos, steps=4, val_every=0, amp=amp),
        callback=lambda progress: progress.step < 2,
    )
    assert first.stopped and first.step == 2
    resumed = train(tiny(tmp_path / "part", photos, steps=4, val_every=0, amp=amp, resume=True))
    a = read_log(full.run_dir / "train.csv")["loss"]
    b = read_log(resumed.run_dir / "train.csv")["loss"]
    assert np.isfinite(a).all() and a[2:] == b[2:]


def test_a_resumed_run_may_change_its_length(tmp_path, photos, caplog):
    first = train(tiny(tmp_path, photos, steps=8), callback=lambda p: p.step < 4)
    assert first.step == 4
    with pytest.raises(ValueError, match="steps must be larger than 4"):
        train(tiny(tmp_path, photos, steps=4, resume=True))
    with caplog.at_level("WARNING", logger="napari_srn.training.loop"):
        longer = train(tiny(tmp_path, photos, steps=12, resume=True))
    assert longer.step == 12 and "from 8 to 12 steps" in caplog.text
    lrs = read_log(longer.run_dir / "train.csv")["lr"]
    # the lr logged at step s is the one used for it: lr0 * (1 - (s - 1) / steps) ** power
    cfg = tiny(tmp_path, photos, steps=12)
    decay = PolyDecay(12, cfg.lr_power)
    np.testing.assert_allclose(lrs[4:], [cfg.lr * decay(s - 1) for s in range(5, 13)])


def test_ema_is_validated_exported_and_shipped_and_resumes_exactly(tmp_path, photos):
    from napari_srn.training.export import export_checkpoint

    plain = train(tiny(tmp_path / "plain", photos))
    straight = train(tiny(tmp_path / "a", photos, ema_decay=0.5))
    # the average does not change the training itself
    assert (
        read_log(plain.run_dir / "train.csv")["loss"]
        == read_log(straight.run_dir / "train.csv")["loss"]
    )
    state = torch.load(straight.checkpoint, weights_only=True)
    final = load_model(straight.weights)
    raw = state["model"]
    assert all(torch.equal(final.state_dict()[k], state["ema"][k]) for k in raw)
    assert not all(torch.equal(state["ema"][k], raw[k]) for k in raw)
    assert "moving average" in final.card.description
    exported = load_model(export_checkpoint(straight.checkpoint, tmp_path / "e.safetensors"))
    for k, v in state["ema"].items():
        torch.testing.assert_close(exported.state_dict()[k], v, atol=1e-3, rtol=1e-3)
    # stopped and resumed: the same average, bit for bit
    train(tiny(tmp_path / "b", photos, ema_decay=0.5), callback=lambda p: p.step < 4)
    resumed = train(tiny(tmp_path / "b", photos, ema_decay=0.5, resume=True))
    wa, wb = final.state_dict(), load_model(resumed.weights).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # switched on when resuming a run that had none: allowed, it starts from the weights
    train(tiny(tmp_path / "c", photos), callback=lambda p: p.step < 4)
    late = train(tiny(tmp_path / "c", photos, ema_decay=0.5, resume=True))
    assert "ema" in torch.load(late.checkpoint, weights_only=True)


def test_ema_decay_must_be_between_0_and_1(tmp_path, photos):
    with pytest.raises(ValueError, match="ema_decay: must be between 0 and 1"):
        tiny(tmp_path, photos, ema_decay=1.0)


def test_a_damaged_checkpoint_is_refused_before_the_logs_are_touched(tmp_path, photos):
    run = train(tiny(tmp_path, photos, steps=4, val_every=2)).run_dir
    logs = {n: (run / n).read_text() for n in ("train.csv", "val.csv")}
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    for broken, match in (
        ({**state, "step": -3}, "invalid step -3"),
        ({k: v for k, v in state.items() if k != "optimizer"}, r"lacks \['optimizer'\]"),
    ):
        torch.save(broken, run / "checkpoint.pt")
        with pytest.raises(ValueError, match=match):
            train(tiny(tmp_path, photos, steps=6, val_every=2, resume=True))
        assert {n: (run / n).read_text() for n in logs} == logs


def test_a_run_that_fails_before_its_first_checkpoint_can_simply_be_rerun(tmp_path, photos):
    data = tmp_path / "data"
    shutil.copytree(photos, data)
    (data / "zz_broken.png").write_bytes((data / "cat.png").read_bytes()[:300])  # truncated
    cfg = tiny(tmp_path, data, steps=4, val_fraction=0.0, val_every=0)
    with pytest.raises(Exception, match="zz_broken.png"):
        train(cfg)
    assert not [p for p in (tmp_path / "run").iterdir()] if (tmp_path / "run").exists() else True
    (data / "zz_broken.png").unlink()
    assert train(cfg).step == 4  # the same command, once the image is mended


def test_the_run_directory_cannot_lie_inside_the_data(tmp_path, photos):
    data = tmp_path / "data"
    shutil.copytree(photos, data)
    with pytest.raises(ValueError, match="lies inside data"):
        train(tiny(tmp_path, data, out=str(data / "run")))
    assert not (data / "run").exists()


# --------------------------------------------------------------------------- issue 22: 12, 13

_HOLD_AT_STEP_2 = """
import json, sys, time
from pathlib import Path
from napari_srn import TrainConfig, train

cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
ready, go = Path(sys.argv[2]), Path(sys.argv[3])

def hold(progress):
    if progress.step == 2:
        ready.touch()
        t = time.time()
        while not go.exists() and time.time() - t < 60:
            time.sleep(0.05)

train(cfg, callback=hold)
"""

_DIE_IN_THE_FIRST_CHECKPOINT = """
import json, os, signal, sys
import torch
from napari_srn import TrainConfig, train

real_save = torch.save

def save_then_die(obj, f, *args, **kwargs):  # SIGKILL half-way through the file
    real_save(obj, f, *args, **kwargs)
    os.truncate(f, os.path.getsize(f) // 2)
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = save_then_die
train(TrainConfig.from_dict(json.loads(sys.argv[1])))
"""


def _python(script, *args, **kw):
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_two_resumes_of_one_run_are_refused_while_it_runs(tmp_path, photos, capsys):
    # issue 22, item 12: two `napari-srn train --resume` on one folder both exited 0 and
    # interleaved train.csv (rows 8, 8, 12, 12, ...). Two real processes: the first holds the
    # folder's lock while it trains, the second (the CLI, here) is refused with its pid
    cfg = tiny(tmp_path, photos, steps=4, val_every=0, val_fraction=0)
    assert train(cfg, callback=lambda p: p.step < 1).stopped  # a checkpoint at step 1
    ready, go = tmp_path / "ready", tmp_path / "go"
    resumed = cfg.replace(resume=True)
    first = _python(_HOLD_AT_STEP_2, json.dumps(resumed.to_dict()), ready, go)
    try:
        deadline = time.time() + 120
        while not ready.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert ready.exists(), first.communicate()
        assert main(["train", "--resume", "--out", cfg.out, "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert f"pid {first.pid}" in err and "train.lock" in err and err.count("\n") == 1
    finally:
        go.touch()
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert read_log(tmp_path / "run" / "train.csv")["step"] == [1, 2, 3, 4]
    assert not (tmp_path / "run" / "train.lock").exists()  # released at the end
    # a lock left by a dead process is taken over
    dead = {"pid": 999_999_999, "host": socket.gethostname()}
    (tmp_path / "run" / "train.lock").write_text(json.dumps(dead))
    assert train(cfg.replace(resume=True, steps=5)).step == 5


def test_a_run_killed_in_its_first_checkpoint_can_be_started_again(tmp_path, photos):
    # issue 22, item 13: kill -9 while the first checkpoint was written left a folder that
    # --resume refused ("start without --resume") and a new start refused ("pass --resume").
    # A real SIGKILL, half-way through writing checkpoint.pt.partial
    cfg = tiny(tmp_path, photos, val_every=0, val_fraction=0, steps=2, checkpoint_every=1)
    died = _python(_DIE_IN_THE_FIRST_CHECKPOINT, json.dumps(cfg.to_dict()))
    _, stderr = died.communicate(timeout=120)
    assert died.returncode == -signal.SIGKILL, stderr
    run = tmp_path / "run"
    assert (run / "checkpoint.pt.partial").is_file() and not (run / "checkpoint.pt").exists()
    with pytest.raises(FileNotFoundError, match="before its first checkpoint.*without --resume"):
        train(cfg.replace(resume=True))
    result = train(cfg)  # the same command again: nothing of the dead run could be resumed
    assert result.step == 2 and read_log(run / "train.csv")["step"] == [1, 2]
    assert not (run / "checkpoint.pt.partial").exists()
    # a folder with final weights but no checkpoint is still never replaced unasked
    (run / "checkpoint.pt").unlink()
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg)
