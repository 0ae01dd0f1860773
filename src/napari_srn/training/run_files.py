"""A training run's folder: the names of its files, the checks before a run starts writing
there, and its CSV logs and progress plot.

No torch is imported here.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .config import CONFIG_FILE, TrainConfig
from .plot import plot_progress

__all__ = [
    "CHECKPOINT",
    "PLOT",
    "RUN_FILES",
    "TRAIN_COLUMNS",
    "TRAIN_LOG",
    "VAL_COLUMNS",
    "VAL_LOG",
    "WEIGHTS",
    "append_row",
    "check_data_outside_run",
    "discard_unstarted",
    "prepare_run_dir",
    "read_log",
    "replot",
    "start_log",
]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.safetensors"
TRAIN_LOG = "train.csv"
VAL_LOG = "val.csv"
PLOT = "progress.png"
RUN_FILES = (CONFIG_FILE, CHECKPOINT, WEIGHTS, TRAIN_LOG, VAL_LOG, PLOT)
TRAIN_COLUMNS = ("step", "epoch", "loss", "lr", "steps_per_s", "data_wait", "wall_s")
VAL_COLUMNS = ("step", "psnr", "ssim", "psnr_input", "ssim_input", "images", "wall_s")


def prepare_run_dir(config: TrainConfig, out: Path) -> list[Path]:
    """Refuse to clobber a run; return the files to delete on overwrite (only those a run
    writes; deleted once the data have been checked)."""
    ckpt = out / CHECKPOINT
    if config.resume:
        if not ckpt.is_file():
            raise FileNotFoundError(
                f"resume was asked for but {str(ckpt)!r} does not exist; start the run "
                "without --resume"
            )
        return []
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} is a file; give a directory for the run")
    existing = [n for n in RUN_FILES if (out / n).exists()]
    if existing and not config.overwrite:
        raise FileExistsError(
            f"run directory {str(out)!r} already holds {existing}; pass --resume to continue "
            "it, --overwrite to start it again (deleting them), or another --out"
        )
    return [out / name for name in existing]


def discard_unstarted(out: Path) -> None:
    """Remove the files of a new run that failed before its first checkpoint (its config, logs
    and curve: nothing that can be resumed), so that the same command can simply be rerun."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    log.warning("the run failed before its first checkpoint; its files in %s were removed", out)


def check_data_outside_run(cfg: TrainConfig, out: Path) -> None:
    """Refuse a run directory inside the training or validation data: its curve and weights
    would be read as training images on the next start."""
    run = out.resolve()
    for name in ("data", "val_data"):
        value = getattr(cfg, name)
        if value and (
            run == Path(value).expanduser().resolve()
            or Path(value).expanduser().resolve() in run.parents
        ):
            raise ValueError(
                f"out {str(out)!r} lies inside {name} {value!r}: the run's own files "
                f"(progress.png, ...) would be read as training images. Choose an out outside "
                f"{value!r}"
            )


def start_log(path: Path, columns: tuple[str, ...], keep_until: int | None) -> None:
    """Write the header (fresh run) or drop rows after the checkpoint's step (resume)."""
    rows: list[list[str]] = []
    if keep_until is not None and path.is_file():
        with path.open(newline="") as f:
            reader = csv.reader(f)
            next(reader, None)
            rows = [r for r in reader if r and int(r[0]) <= keep_until]
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    os.replace(tmp, path)


def append_row(path: Path, row: list[Any]) -> None:
    """Append one row to a CSV log (floats written exactly, with ``repr``)."""
    with path.open("a", newline="") as f:
        csv.writer(f).writerow(
            [repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row]
        )


def read_log(path: str | os.PathLike) -> dict[str, list[float]]:
    """A run's ``train.csv`` or ``val.csv`` as columns of floats."""
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        names = reader.fieldnames or []
    return {n: [float(r[n]) for r in rows] for n in names}


def replot(out: Path, title: str, steps: int) -> None:
    """Redraw the run's ``progress.png`` from its two logs."""
    train_log, val_log = read_log(out / TRAIN_LOG), read_log(out / VAL_LOG)
    plot_progress(
        out / PLOT,
        train_log["step"],
        train_log["loss"],
        val_log["step"],
        val_log["psnr"],
        val_log["psnr_input"],
        title=title,
        xlim=(0, steps),
    )
