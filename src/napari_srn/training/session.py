"""A training session: the run's state (:class:`Run`) and how it is built.

:func:`start_run` takes the run folder's lock, then checks everything before anything is
written: the architecture (from ``init_weights`` or the defaults), the run folder, the
checkpoint when resuming, the data. It then builds the network (seeded), Adam, the polynomial
schedule (:class:`PolyDecay`), the loss scaler and the precision (:mod:`.precision`), or
restores them all from the checkpoint, and writes the resolved config and the log headers.
:mod:`.loop` runs the session; :meth:`Run.checkpoint` writes what a resume needs.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..inference.precision import Precision
from ..model.config import SRNConfig
from ..model.srn import SRN
from ..model.weights import load_model, resolve_device
from ..synthesis.params import MotionParams, ShakeParams
from .checkpoint import (
    check_resume_config,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import CONFIG_FILE, MODEL_FIELDS, TrainConfig
from .config_file import write_config
from .data import DataSource, TrainSet, ValSet, default_workers, find_data, split
from .precision import training_precision
from .run_files import (
    CHECKPOINT,
    TRAIN_COLUMNS,
    TRAIN_LOG,
    VAL_COLUMNS,
    VAL_LOG,
    RunLock,
    check_data_outside_run,
    prepare_run_dir,
    replot,
    start_log,
)

__all__ = ["PolyDecay", "Run", "RunData", "WeightAverage", "start_run"]

log = logging.getLogger(__name__)


class PolyDecay:
    """``(1 - step / steps) ** power``: the authors' polynomial decay to zero."""

    def __init__(self, steps: int, power: float) -> None:
        self.steps, self.power = steps, power

    def __call__(self, step: int) -> float:
        return max(0.0, 1.0 - step / self.steps) ** self.power


def _resolve(config: TrainConfig) -> tuple[TrainConfig, SRNConfig, dict[str, torch.Tensor] | None]:
    """Fill in the architecture (from init_weights or the defaults); check conflicts."""
    init_state = None
    base = None
    fixed = all(getattr(config, k) is not None for k in MODEL_FIELDS)
    if config.init_weights is not None and not (config.resume and fixed):
        # (a resumed run takes its weights from the checkpoint, not from init_weights)
        init = load_model(config.init_weights, device="cpu")
        base, init_state = init.config, init.state_dict()
        conflicts = [
            f"{k}={getattr(config, k)!r} (the weights have {getattr(base, k)!r})"
            for k in MODEL_FIELDS
            if getattr(config, k) is not None and getattr(config, k) != getattr(base, k)
        ]
        if conflicts:
            raise ValueError(
                f"init_weights {config.init_weights!r} fixes the architecture, but the config "
                f"asks for {', '.join(conflicts)}; drop those fields to fine-tune the weights"
            )
    arch = config.model_config(base)
    resolved = config.replace(**{k: getattr(arch, k) for k in MODEL_FIELDS})
    return resolved, arch, init_state


@dataclass
class RunData:
    """The run's data: where it comes from, the training crops and the validation set."""

    source: DataSource
    train_set: TrainSet
    val_set: ValSet | None
    val_text: str  # for the log and the model card
    workers: int


def _open_data(cfg: TrainConfig, arch: SRNConfig, device: torch.device) -> RunData:
    """Find and check the training and validation data (before anything is written)."""
    source = find_data(cfg.data, cfg.data_kind, cfg.blur_dir)
    train_items, val_items = split(source.items, 0 if cfg.val_data else cfg.val_fraction, cfg.seed)
    val_source = source
    if cfg.val_data:
        val_source = find_data(cfg.val_data, "auto", cfg.blur_dir)
        val_items = val_source.items
    shake = ShakeParams.from_config(cfg)
    motion = MotionParams.from_config(cfg)
    common = {"channels": arch.channels, "seed": cfg.seed, "shake": shake, "motion": motion}
    train_set = TrainSet(
        train_items,
        crop=cfg.crop,
        crop_tries=cfg.crop_tries,
        gray_fraction=cfg.gray_fraction,
        reuse=cfg.reuse,
        augment=cfg.augment,
        synthetic=source.synthetic,
        cache=cfg.image_cache,
        **common,
    )
    val_set = None
    if val_items:
        val_set = ValSet(
            val_items,
            crop=cfg.val_crop,
            divisor=arch.divisor,
            limit=cfg.val_images,
            synthetic=val_source.synthetic,
            **common,
        )
        val_text = f"{len(val_set)} held-out image(s) from {cfg.val_data or 'the same data'}, " + (
            f"central {cfg.val_crop}x{cfg.val_crop}" if cfg.val_crop else "whole"
        )
    else:
        val_text = "none"
        log.warning(
            "no validation data (val_fraction 0 and no val_data): the model card "
            "will have no metrics"
        )
    workers = default_workers() if cfg.num_workers is None else cfg.num_workers
    log.info(
        "data: %s; %d training images, validation: %s; %d loader worker(s); device %s",
        source.describe(),
        len(train_set),
        val_text,
        workers,
        device,
    )
    return RunData(source, train_set, val_set, val_text, workers)


class WeightAverage:
    """The exponential moving average of the weights: a side computation, so training itself
    is the same with or without it; it starts from the current weights when first switched
    on (also when a run is resumed with it)."""

    def __init__(self, model: SRN, decay: float, state: dict[str, Any] | None) -> None:
        self.model = copy.deepcopy(model).requires_grad_(False)
        if state:
            self.model.load_state_dict(state)
        self.decay = decay
        self._params: list[torch.Tensor] = list(self.model.parameters())
        self._source: list[torch.Tensor] = list(model.parameters())

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self._params, self._source, 1.0 - self.decay)


@dataclass
class Run:
    """What one call of :func:`~.loop.train` works with: built by :func:`start_run`, used by
    the loop's parts."""

    cfg: TrainConfig
    arch: SRNConfig
    device: torch.device
    out: Path
    data: RunData
    model: SRN
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    precision: Precision
    average: WeightAverage | None
    run_config: TrainConfig  # what the run is, not how it began (no resume/overwrite)
    title: str
    start: int  # the step this session starts from
    elapsed: float  # wall seconds of the earlier sessions
    resumed: bool
    last_val: dict[str, float] | None = None
    last_loss: float = float("nan")
    t_run: float = 0.0  # perf_counter() when this session's loop began
    lock: RunLock | None = None  # the folder's, held until train() returns

    @property
    def shipped(self) -> SRN:
        """What is validated and written: the average when there is one."""
        return self.average.model if self.average is not None else self.model

    def wall(self) -> float:
        """Wall seconds of the whole run so far, earlier sessions included."""
        return self.elapsed + time.perf_counter() - self.t_run

    def checkpoint(self, step: int) -> None:
        """Write the resume checkpoint (atomically) and redraw the curve."""
        average = self.average
        save_checkpoint(
            self.out / CHECKPOINT,
            step=step,
            elapsed_s=self.wall(),
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else {},
            rng=rng_state(self.device),
            config=self.run_config.to_dict(),
            val=self.last_val or {},
            loss=self.last_loss,
            **(
                {"ema": average.model.state_dict(), "ema_decay": average.decay}
                if average is not None
                else {}
            ),
        )
        replot(self.out, self.title, self.cfg.steps, self.cfg.loss)


def _build_model(
    cfg: TrainConfig, arch: SRNConfig, init_state: dict[str, torch.Tensor] | None, device: Any
) -> tuple[SRN, torch.optim.Optimizer, Any, torch.amp.GradScaler, Precision]:
    """The network (seeded), Adam, the polynomial schedule, the loss scaler and precision."""
    torch.manual_seed(cfg.seed)
    model = SRN(arch)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, PolyDecay(cfg.steps, cfg.lr_power))
    precision = training_precision(cfg.amp, cfg.amp_dtype, device)
    scaler = torch.amp.GradScaler("cuda", enabled=precision.dtype == torch.float16)
    if precision.channels_last:
        # oneDNN's convolutions are faster in channels-last layout on CPU (more so in bf16)
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    autocast = precision.dtype != torch.float32
    log.info("precision: %s", f"{precision.name} autocast" if autocast else "float32")
    return model, optimizer, scheduler, scaler, precision


def _restore(run: Run, state: dict[str, Any]) -> None:
    """Continue from a checkpoint: weights, optimizer, schedule (on the config's length, which
    may have changed), loss scaler, random generators, step, time and last figures."""
    cfg, step = run.cfg, int(state["step"])
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    decay = PolyDecay(cfg.steps, cfg.lr_power)  # the saved one may have another length
    run.scheduler.lr_lambdas = [decay]
    for group, base in zip(run.optimizer.param_groups, run.scheduler.base_lrs, strict=True):
        group["lr"] = base * decay(step)
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"], run.device)
    run.start, run.elapsed, run.resumed = step, float(state["elapsed_s"]), True
    run.last_val = state.get("val") or None
    run.last_loss = float(state.get("loss", float("nan")))
    log.info("resuming %s at step %d of %d", run.out, step, cfg.steps)


def start_run(config: TrainConfig) -> Run:
    """Take the run folder's lock (one run per folder), then :func:`_open_run`; the lock is
    let go again if that fails."""
    cfg, arch, init_state = _resolve(config)
    out = Path(cfg.out).expanduser()
    check_data_outside_run(cfg, out)
    lock = RunLock(out).acquire()  # before the folder is read, resumed or cleared
    try:
        run = _open_run(cfg, arch, init_state, out)
    except BaseException:
        lock.release()
        raise
    run.lock = lock
    return run


def _open_run(
    cfg: TrainConfig, arch: SRNConfig, init_state: dict[str, torch.Tensor] | None, out: Path
) -> Run:
    """Check everything (run folder, checkpoint, data), then build or restore the run and
    write its config and log headers. Nothing is written before the checks pass."""
    device = resolve_device(cfg.device)
    stale = prepare_run_dir(cfg, out)
    state = load_checkpoint(out / CHECKPOINT) if cfg.resume else None
    if state is not None:
        check_resume_config(state["config"], cfg, out, int(state["step"]))
    data = _open_data(cfg, arch, device)
    model, optimizer, scheduler, scaler, precision = _build_model(cfg, arch, init_state, device)
    run = Run(
        cfg=cfg,
        arch=arch,
        device=device,
        out=out,
        data=data,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        precision=precision,
        average=None,
        run_config=cfg.replace(resume=False, overwrite=False),
        title=(
            f"{out.name}: {arch.channels}-channel SRN width {arch.width}, {cfg.crop} px crops, "
            f"batch {cfg.batch_size}"
        ),
        start=0,
        elapsed=0.0,
        resumed=False,
    )
    if state is not None:
        _restore(run, state)
    if cfg.ema_decay is not None:
        run.average = WeightAverage(model, cfg.ema_decay, state.get("ema") if state else None)
    for path in stale:
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    write_config(run.run_config.to_dict(), out / CONFIG_FILE)
    keep = run.start if run.resumed else None
    start_log(out / TRAIN_LOG, TRAIN_COLUMNS, keep)
    start_log(out / VAL_LOG, VAL_COLUMNS, keep)
    return run
