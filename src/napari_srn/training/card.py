"""The model card of a run's weights: what was trained, on what data, on which hardware, for
how long, and how well (the last validation and training loss)."""

from __future__ import annotations

import contextlib
import math
import platform
from pathlib import Path
from typing import Any

import torch

from ..model.weights import ModelCard
from .config import TrainConfig
from .data import DataSource
from .session import Run

__all__ = ["card_metrics", "model_card"]


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return (
            f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), "
            f"torch {torch.__version__}"
        )
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"CPU {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def _describe_data(cfg: TrainConfig, source: DataSource, n_train: int, val: str) -> str:
    text = f"{source.describe()}; {n_train} for training; validation: {val}"
    if source.synthetic:
        text += (
            f"; synthetic camera shake: kernels {cfg.shake_size[0]}-{cfg.shake_size[1]} px,"
            f" path {cfg.shake_length[0]}-{cfg.shake_length[1]} x kernel side, "
            f"shakiness {cfg.shakiness[0]}-{cfg.shakiness[1]}, gamma {cfg.gamma}, "
            f"highlight gain {cfg.highlight_gain[0]}-{cfg.highlight_gain[1]}, "
            f"noise sigma {cfg.noise[0]}-{cfg.noise[1]}, unblurred share "
            f"{cfg.no_blur_fraction}"
        )
        if cfg.motion_fraction:
            text += (
                f"; {cfg.motion_fraction:.0%} of them realistic motion blur instead: "
                f"streaks {cfg.motion_length[0]}-{cfg.motion_length[1]} px, "
                f"{cfg.moving_objects[0]}-{cfg.moving_objects[1]} moving objects, "
                f"{cfg.jpeg_fraction:.0%} JPEG"
            )
    tries = f" (most textured of {cfg.crop_tries})" if cfg.crop_tries > 1 else ""
    gray = f", {cfg.gray_fraction:.0%} of them turned grey" if cfg.gray_fraction else ""
    return text + f"; {cfg.crop}x{cfg.crop} crops{tries}{gray}, batch {cfg.batch_size}"


def card_metrics(run: Run) -> dict[str, Any]:
    """The model card's metrics: the last validation and the last logged training loss."""
    metrics: dict[str, Any] = {}
    if run.last_val:
        val = run.last_val
        metrics = {
            "val_psnr": round(val["psnr"], 4),
            "val_ssim": round(val["ssim"], 5),
            "val_psnr_input": round(val["psnr_input"], 4),
            "val_ssim_input": round(val["ssim_input"], 5),
            "val_images": int(val["images"]),
            "val_step": int(val["step"]),
            "val_crop": run.cfg.val_crop or "whole image",
        }
    loss = run.last_loss
    metrics["train_loss"] = round(loss, 6) if math.isfinite(loss) else None
    return metrics


def model_card(run: Run, step: int, wall_s: float, metrics: dict[str, Any]) -> ModelCard:
    """The final weights' model card: what was trained, on what, how long, how well."""
    cfg, arch = run.cfg, run.arch
    description = (
        cfg.description
        or f"SRN ({arch.channels} channel(s), width {arch.width}, {arch.scales} "
        f"scales, {arch.res_blocks} ResBlocks, recurrent={arch.recurrent}) trained "
        "with `napari-srn train`"
    ).rstrip(". ")
    # the provenance of fine-tuned weights is kept whatever the description says
    if cfg.init_weights:
        description += f"; fine-tuned from {cfg.init_weights}"
    if run.average is not None:
        description += f"; moving average of the weights (decay {cfg.ema_decay})"
    data = run.data
    return ModelCard(
        name=cfg.name or run.out.name,
        description=description,
        training_data=_describe_data(cfg, data.source, len(data.train_set), data.val_text),
        training_steps=step,
        wall_time_hours=round(wall_s / 3600, 6),
        hardware=_hardware(run.device),
        metrics=metrics,
        provisional=cfg.provisional,
    )
