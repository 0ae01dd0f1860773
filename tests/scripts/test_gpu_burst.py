"""scripts/gpu_burst.py, run on the CPU with a tiny network (the GPU run uses the same code)."""

from __future__ import annotations

import json
import subprocess
import sys

import imageio.v3 as iio
import yaml
from skimage import data as skdata

from napari_srn import TrainConfig, load_model, train

from ..helpers import ROOT


def test_burst_continues_a_cpu_checkpoint_and_writes_weights_and_summary(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        iio.imwrite(photos / f"{name}.png", getattr(skdata, name)()[::4, ::4][:96, :96])
    recipe = {
        "data": str(photos),
        "width": 4,
        "res_blocks": 1,
        "crop": 32,
        "batch_size": 2,
        "shake_size": [3, 9],
        "val_fraction": 0.0,
        "num_workers": 0,
        "log_every": 1,
        "progress": False,
    }
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(recipe))
    cpu = train(TrainConfig(**{**recipe, "shake_size": (3, 9)}, out=str(tmp_path / "cpu"), steps=3))
    out = tmp_path / "burst"
    args = [
        sys.executable,
        str(ROOT / "scripts" / "gpu_burst.py"),
        "--config",
        str(config),
        "--checkpoint",
        str(cpu.checkpoint),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--minutes",
        "0.05",
        "--batch-size",
        "2",
        "--crop",
        "32",
        "--steps",
        "100000",
    ]
    run = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "burst.json").read_text())
    assert 1 <= summary["steps"] < 100000 and summary["device"] == "cpu"
    model = load_model(out / "burst.safetensors", device="cpu")
    assert model.config.width == 4
    # a second burst into the same folder is refused, nothing is overwritten
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0 and "exists" in again.stderr
