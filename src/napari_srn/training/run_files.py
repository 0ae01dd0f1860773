"""A training run's folder: the names of its files, the checks before a run starts writing
there, and its CSV logs and progress plot.

No torch is imported here.
"""

from __future__ import annotations

import csv
import errno
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._lockfile import flock, owner_gone, read_owner, same_file, write_owner
from .config import CONFIG_FILE, TrainConfig
from .plot import plot_progress

__all__ = [
    "CHECKPOINT",
    "LOCK",
    "PLOT",
    "RUN_FILES",
    "TRAIN_COLUMNS",
    "TRAIN_LOG",
    "VAL_COLUMNS",
    "VAL_LOG",
    "WEIGHTS",
    "RunLock",
    "RunLocked",
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
#: Held for a run's life: one run per folder.
LOCK = "train.lock"
TRAIN_COLUMNS = ("step", "epoch", "loss", "lr", "steps_per_s", "data_wait", "wall_s")
VAL_COLUMNS = ("step", "psnr", "ssim", "psnr_input", "ssim_input", "images", "wall_s")


def prepare_run_dir(config: TrainConfig, out: Path) -> list[Path]:
    """Refuse to clobber a run; return the files to delete on overwrite (only those a run
    writes; deleted once the data have been checked).

    A folder without ``checkpoint.pt`` or ``model.safetensors`` holds a run that stopped
    before its first checkpoint (killed, even while writing it: ``checkpoint.pt.partial``):
    nothing there can be resumed, so a new start replaces its files, as if it had cleaned up
    after itself (:func:`discard_unstarted`). Call with the folder's :class:`RunLock` held.
    """
    ckpt = out / CHECKPOINT
    existing = [n for n in RUN_FILES if (out / n).exists()]
    if config.resume:
        if not ckpt.is_file():
            why = ", so there is nothing to resume" if existing else ""
            raise FileNotFoundError(
                f"resume was asked for but {str(ckpt)!r} does not exist"
                + (f": the run stopped before its first checkpoint{why}" if existing else "")
                + "; start the run without --resume"
            )
        return []
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} is a file; give a directory for the run")
    unstarted = not {CHECKPOINT, WEIGHTS} & set(existing)
    if existing and not config.overwrite and not unstarted:
        raise FileExistsError(
            f"run directory {str(out)!r} already holds {existing}; pass --resume to continue "
            "it, --overwrite to start it again (deleting them), or another --out"
        )
    if existing and unstarted and not config.overwrite:
        log.warning(
            "%s holds %s of a run that stopped before its first checkpoint (nothing to "
            "resume); starting again replaces them",
            out,
            existing,
        )
    partial = [out / (n + ".partial") for n in RUN_FILES if (out / (n + ".partial")).is_file()]
    return [out / name for name in existing] + partial


class RunLocked(FileExistsError):
    """Another live ``napari-srn train`` holds the run folder."""


class RunLock:
    """One run per folder: ``out/train.lock``, holding the owner's pid and host, ``flock``-ed
    while held (the kernel releases that when the process dies, even by ``kill -9``) and
    removed at the end.

    The approach of the OME-Zarr writer's lock (``io/ome_zarr/lock.py``): a lock left by a dead
    process is taken over; a live owner is reported with its pid. Where there is no ``flock``
    (Windows, a file system without locks) the pid decides: gone (same host) is taken over,
    another host's is respected. A file of another kind at that path is refused, never
    replaced. Creates ``out`` (and removes it again, if still empty, on release)."""

    def __init__(self, out: Path) -> None:
        self.out, self.path = out, out / LOCK
        self._fd: int | None = None
        self._made_out = False

    def acquire(self) -> RunLock:
        """Take the lock (RunLocked if a live run holds it); returns ``self``."""
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"out {str(self.out)!r} is a file; give a directory for the run")
        self._made_out = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        for _ in range(5):  # a lock released between our open and flock: try again
            try:
                fd = os.open(self.path, flags, 0o644)
            except FileNotFoundError:  # the folder, removed by a refused run that made it
                self.out.mkdir(parents=True, exist_ok=True)
                continue
            except OSError as err:
                if err.errno in (errno.EISDIR, errno.ELOOP):
                    raise FileExistsError(self._foreign("a folder or a link")) from None
                raise
            try:
                if self._claim(fd):
                    self._fd = fd
                    return self
            except BaseException:
                os.close(fd)
                self._tidy()
                raise
            os.close(fd)
        raise RunLocked(f"could not take the lock {str(self.path)!r}; try again")

    def _claim(self, fd: int) -> bool:
        """Take the opened lock file: False if it was released and removed meanwhile."""
        locked = flock(fd)
        text, owner = read_owner(fd)
        if locked is False:
            raise RunLocked(self._locked(owner))
        if not same_file(self.path, fd):
            return False
        if text.strip() and owner is None:
            raise FileExistsError(self._foreign("a file that is not napari-srn's lock"))
        if owner is not None and not owner_gone(owner, flocked=locked is True):
            raise RunLocked(self._locked(owner))
        write_owner(fd, self.path)
        return True

    def _locked(self, owner: dict | None) -> str:
        who = f" (pid {owner['pid']} on {owner['host']})" if owner else ""
        return (
            f"another napari-srn train{who} is running in {str(self.out)!r}; wait for it to "
            f"finish, or delete {str(self.path)!r} if that process is gone"
        )

    def _foreign(self, what: str) -> str:
        return (
            f"{str(self.path)!r} is {what}; napari-srn needs that name for the lock of the run "
            "and never removes what it did not write: move it away"
        )

    def release(self) -> None:
        """Remove the lock file and let go of it (nothing when not held)."""
        if self._fd is None:
            return
        try:
            if same_file(self.path, self._fd):
                self.path.unlink()
        finally:
            os.close(self._fd)  # and with it the flock
            self._fd = None
            self._tidy()

    def _tidy(self) -> None:
        if self._made_out:  # a folder this run made and left empty (a refused start)
            try:
                self.out.rmdir()
            except OSError:
                pass


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


def replot(out: Path, title: str, steps: int, loss: str = "mse") -> None:
    """Redraw the run's ``progress.png`` from its two logs (``loss``: the config's)."""
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
        loss=loss,
    )
