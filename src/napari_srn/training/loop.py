"""The training loop behind ``napari_srn.train`` and ``napari-srn train``.

The paper's recipe (Tao et al., CVPR 2018) by default: the multi-scale Euclidean loss
(:mod:`.metrics`), Adam at 1e-4 with polynomial decay (power 0.3) to zero over the run.

A run directory holds::

    config.yaml         the resolved config (every field; reusable with --config)
    checkpoint.pt       model, optimizer, scheduler, loss scaler, step, RNG states (resume)
    train.csv           step, epoch, loss, lr, steps/s, share of time waiting for data, wall s
    val.csv             step, PSNR and SSIM of the output and of the blurred input
    progress.png        loss and validation PSNR against steps
    model.safetensors   the final weights with a filled model card (load_model / deblur)

Resuming continues exactly: the data stream is a function of (seed, step) (see
:mod:`.data`), and the checkpoint holds every other state, so the losses after a resume equal
those of an uninterrupted run.

:func:`train` is a composition of named parts: :func:`~.session.start_run` (every check, then
the data, the model and, on resume, the checkpoint's state; :mod:`.session`), :func:`_loop`
(each step is :func:`_train_step`; a :class:`_Window` of figures closed by :func:`_log_window`;
:func:`_validate`; :meth:`~.session.Run.checkpoint`) and :func:`_finish` (the last checkpoint
and the weights with their card, :mod:`.card`). The run folder's files live in
:mod:`.run_files`, the checkpoint's format and the resume rule in :mod:`.checkpoint`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._progress import progress_bar
from ..model.weights import save_model
from .card import card_metrics, model_card
from .config import TrainConfig
from .data import make_loader
from .metrics import evaluate, multiscale_loss
from .run_files import (
    CHECKPOINT,
    TRAIN_LOG,
    VAL_LOG,
    WEIGHTS,
    append_row,
    discard_unstarted,
    replot,
)
from .session import Run, start_run
from .surgery import UPSAMPLINGS, dead_stages, watch_decoder

__all__ = ["TrainProgress", "TrainResult", "train"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainProgress:
    """What the callback of :func:`train` receives (every ``log_every`` steps and after each
    validation, where ``val`` is set)."""

    step: int
    steps: int
    loss: float
    lr: float
    steps_per_s: float
    data_wait: float  # share of the wall time spent waiting for the data loader
    eta_s: float
    val: dict[str, float] | None = None


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    weights: Path | None  # None when stopped early (the checkpoint can be resumed)
    checkpoint: Path
    step: int
    metrics: dict[str, Any]
    wall_time_s: float
    steps_per_s: float  # this session's mean, data loading included
    data_wait: float  # share of this session's time spent waiting for data
    stopped: bool


class _GracefulInterrupt:
    """The first Ctrl-C (SIGINT) asks the loop to stop after the current step and write a
    checkpoint; a second one interrupts at once. Only installed in the main thread (a widget
    running :func:`train` in a worker thread stops it through the callback instead)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "Ctrl-C: stopping after this step and writing a checkpoint (press Ctrl-C "
            "again to stop at once, losing the steps since the last checkpoint)"
        )

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _train_step(run: Run, blurred: torch.Tensor, sharp: torch.Tensor) -> torch.Tensor:
    """One update of the weights (and of their average) on a batch; returns the loss."""
    cfg, model, optimizer, scaler = run.cfg, run.model, run.optimizer, run.scaler
    blurred = blurred.to(run.device, non_blocking=True)
    sharp = sharp.to(run.device, non_blocking=True)
    if run.precision.channels_last:
        blurred = blurred.contiguous(memory_format=torch.channels_last)
    with run.precision.autocast():
        outputs = model(blurred, return_all=True)
    loss = multiscale_loss(outputs, sharp, cfg.loss, model.config.pyramid)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if cfg.clip_grad_norm is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    run.scheduler.step()
    if run.average is not None:
        run.average.update()
    return loss


class _Window:
    """The figures of one logging window: summed loss (on the device, read once per window),
    steps, seconds and the seconds spent waiting for data."""

    def __init__(self, device: torch.device) -> None:
        # float64 keeps a long window's mean exact enough; MPS has no float64
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self.loss = torch.zeros((), dtype=dtype, device=device)
        self.t, self.wait, self.n = time.perf_counter(), 0.0, 0

    def add(self, loss: torch.Tensor) -> None:
        self.loss += loss.detach().to(self.loss.dtype)
        self.n += 1

    def close(self) -> tuple[float, float, float]:
        """``(mean loss, steps/s, share of time waiting for data)``; starts a new window."""
        now = time.perf_counter()
        seconds = max(now - self.t, 1e-9)
        figures = float(self.loss) / self.n, self.n / seconds, self.wait / seconds
        self.t, self.wait, self.n = now, 0.0, 0
        self.loss.zero_()
        return figures


def _log_window(run: Run, step: int, lr: float, window: _Window, bar: Any) -> TrainProgress:
    """Close the logging window: a row of train.csv, the bar's figures, the callback's event."""
    cfg = run.cfg
    loss, speed, wait_share = window.close()
    run.last_loss = loss
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"the training loss became {loss} at step {step}; lower --lr, "
            "set --clip-grad-norm, or use --amp-dtype bfloat16"
        )
    epoch = step * cfg.batch_size / len(run.data.train_set)
    append_row(run.out / TRAIN_LOG, [step, epoch, loss, lr, speed, wait_share, run.wall()])
    bar.set_postfix(
        loss=f"{loss:.4g}", lr=f"{lr:.2e}", data=f"{100 * wait_share:.0f}%", refresh=False
    )
    return TrainProgress(step, cfg.steps, loss, lr, speed, wait_share, (cfg.steps - step) / speed)


def _validate(run: Run, step: int, lr: float, event: TrainProgress | None) -> TrainProgress:
    """Score the shipped weights on the validation set: a row of val.csv, a log line, the
    curve, and the callback's event with ``val`` set."""
    assert run.data.val_set is not None
    with watch_decoder(run.shipped) as shares:  # the same passes find dead decoder stages
        metrics = evaluate(run.shipped, run.data.val_set, run.precision)
    run.last_val = {"step": float(step), **metrics}
    row = [step, *(metrics[k] for k in ("psnr", "ssim", "psnr_input", "ssim_input"))]
    append_row(run.out / VAL_LOG, [*row, int(metrics["images"]), run.wall()])
    log.info(
        "step %d: validation PSNR %.2f dB (input %.2f), SSIM %.4f (input %.4f)",
        step,
        metrics["psnr"],
        metrics["psnr_input"],
        metrics["ssim"],
        metrics["ssim_input"],
    )
    for name in dead_stages(run.shipped, shares):
        log.warning(
            "step %d: the network's %s stage is dead: every output of its upsampling %s is 0 "
            "on the validation images, so it adds nothing to the output and no longer learns; %s",
            step,
            UPSAMPLINGS[name],
            name,
            "restart it from these weights with napari_srn.training.surgery.reinit_bottleneck "
            "(docs/training.md)"
            if name == "up2"
            else "train again with a lower --lr",
        )
    nan = float("nan")
    base = event or TrainProgress(step, run.cfg.steps, run.last_loss, lr, nan, nan, nan)
    replot(run.out, run.title, run.cfg.steps, run.cfg.loss)
    return dataclasses.replace(base, val=dict(run.last_val))


def _loop(
    run: Run, callback: Callable[[TrainProgress], bool | None] | None
) -> tuple[int, bool, float]:
    """Train from ``run.start`` until the last step, a callback's False or Ctrl-C (which
    writes a checkpoint unless it came inside an update); returns ``(step, stopped, seconds
    waited for data)``. A new run that fails before its first checkpoint leaves nothing."""
    cfg = run.cfg
    run.t_run = time.perf_counter()
    step, stopped, in_update, waited_s = run.start, False, False, 0.0
    interrupt = _GracefulInterrupt()
    window = _Window(run.device)
    bar = progress_bar(
        cfg.steps, initial=run.start, desc="train", unit="step", disable=not cfg.progress
    )
    loader = make_loader(
        run.data.train_set,
        run.start,
        cfg.steps,
        cfg.batch_size,
        cfg.num_workers,
        pin_memory=run.device.type == "cuda",
    )
    batches = iter(loader)
    try:
        while step < cfg.steps:
            t0 = time.perf_counter()
            blurred, sharp = next(batches)
            waited = time.perf_counter() - t0
            window.wait += waited
            waited_s += waited
            lr = run.optimizer.param_groups[0]["lr"]  # the rate this step uses
            in_update = True
            loss = _train_step(run, blurred, sharp)
            step += 1
            in_update = False
            window.add(loss)
            bar.update(1)
            event = None
            if step % cfg.log_every == 0 or step == cfg.steps:
                event = _log_window(run, step, lr, window, bar)
            if run.data.val_set is not None and (
                (cfg.val_every and step % cfg.val_every == 0) or step == cfg.steps
            ):
                event = _validate(run, step, lr, event)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                run.checkpoint(step)
            if event is not None and callback is not None and callback(event) is False:
                stopped = step < cfg.steps
                break
            if interrupt.requested:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        if not in_update and step > run.start:
            run.checkpoint(step)
            log.warning(
                "interrupted at step %d; checkpoint written to %s (continue with --resume)",
                step,
                run.out / CHECKPOINT,
            )
        elif not run.resumed and not (run.out / CHECKPOINT).exists():
            discard_unstarted(run.out)
        raise
    except Exception:
        if not run.resumed and not (run.out / CHECKPOINT).exists():
            discard_unstarted(run.out)  # nothing to resume: a rerun must not be blocked by it
        raise
    finally:
        interrupt.restore()
        bar.close()
        del batches, loader  # stops the workers
    return step, stopped, waited_s


def _finish(run: Run, step: int, stopped: bool, waited_s: float) -> TrainResult:
    """The last checkpoint; the final weights with their card unless the run was stopped."""
    session_s = time.perf_counter() - run.t_run
    run.checkpoint(step)
    wall_s = run.elapsed + session_s
    session_steps = step - run.start
    speed = session_steps / session_s if session_steps else float("nan")
    wait = waited_s / session_s if session_steps else float("nan")
    if session_steps and wait > 0.1:
        log.warning(
            "the model waited for data %.0f%% of the time; raise num_workers (now %d) "
            "or image_cache if cores are free",
            100 * wait,
            run.data.workers,
        )
    metrics = card_metrics(run)
    out = run.out
    if stopped:
        log.info("stopped at step %d of %d; continue with --resume", step, run.cfg.steps)
        return TrainResult(out, None, out / CHECKPOINT, step, metrics, wall_s, speed, wait, True)
    save_model(
        run.shipped,
        out / WEIGHTS,
        model_card(run, step, wall_s, metrics),
        half=run.cfg.half,
        overwrite=True,
    )
    log.info("wrote %s (%d steps, %.2f h)", out / WEIGHTS, step, wall_s / 3600)
    return TrainResult(
        out, out / WEIGHTS, out / CHECKPOINT, step, metrics, wall_s, speed, wait, False
    )


# ------------------------------------------------------------------------------ train


def train(
    config: TrainConfig, *, callback: Callable[[TrainProgress], bool | None] | None = None
) -> TrainResult:
    """Train an SRN as ``config`` says; return where the weights and logs are.

    Parameters
    ----------
    config : TrainConfig
        The run (data, architecture, recipe, output folder). ``config.resume`` continues the
        run in ``config.out`` exactly from its checkpoint.
    callback : callable, optional
        Called with a :class:`TrainProgress` every ``log_every`` steps and after each
        validation; returning ``False`` stops the run after writing a resumable checkpoint.

    Returns
    -------
    TrainResult
        ``weights`` is ``run_dir / "model.safetensors"`` (a napari-srn weights file with its
        model card filled in: ``deblur(image, model=result.weights)``), or None when stopped.

    Examples
    --------
    >>> from napari_srn import TrainConfig, train  # doctest: +SKIP
    >>> cfg = TrainConfig(data="photos/", out="runs/small", width=16, crop=128,
    ...                   batch_size=4, steps=2000)  # doctest: +SKIP
    >>> result = train(cfg)  # doctest: +SKIP
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"config must be a TrainConfig, got {type(config).__name__}; build one "
            "with TrainConfig(...) or napari_srn.training.config.config_from_file"
        )
    run = start_run(config)
    try:
        step, stopped, waited_s = _loop(run, callback)
        return _finish(run, step, stopped, waited_s)
    finally:
        if run.lock is not None:
            run.lock.release()
