"""The training loop behind ``napari_srn.train`` and ``napari-srn train``.

The paper's recipe (Tao et al., CVPR 2018) by default: the multi-scale Euclidean loss (the sum
over scales of the mean squared error against the sharp image bilinearly resized to that
scale, kappa_i = 1), Adam at 1e-4 with polynomial decay (power 0.3) to zero over the run.

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

:func:`train` is a composition of named parts: :func:`_start` (every check, then the data,
the model and, on resume, :func:`_restore`), :func:`_loop` (each step is
:func:`_train_step`; a :class:`_Window` of figures closed by :func:`_log_window`;
:func:`_validate`; :meth:`_Run.checkpoint`) and :func:`_finish` (the last checkpoint and the
weights with their card). The run folder's files live in :mod:`.run_files`, the checkpoint's
format and the resume rule in :mod:`.checkpoint`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import platform
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .._progress import progress_bar
from ..inference.precision import Precision, cpu_has_bf16
from ..model.config import SRNConfig
from ..model.srn import SRN, resize
from ..model.weights import ModelCard, load_model, resolve_device, save_model
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
from .data import (
    DataSource,
    TrainSet,
    ValSet,
    default_workers,
    find_data,
    make_loader,
    split,
)
from .run_files import (
    CHECKPOINT,
    TRAIN_COLUMNS,
    TRAIN_LOG,
    VAL_COLUMNS,
    VAL_LOG,
    WEIGHTS,
    RunLock,
    append_row,
    check_data_outside_run,
    discard_unstarted,
    prepare_run_dir,
    read_log,
    replot,
    start_log,
)

__all__ = [
    "CHECKPOINT",
    "TrainProgress",
    "TrainResult",
    "amp_policy",
    "cpu_has_bf16",
    "evaluate",
    "multiscale_loss",
    "read_log",
    "train",
]

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


class PolyDecay:
    """``(1 - step / steps) ** power``: the authors' polynomial decay to zero."""

    def __init__(self, steps: int, power: float) -> None:
        self.steps, self.power = steps, power

    def __call__(self, step: int) -> float:
        return max(0.0, 1.0 - step / self.steps) ** self.power


def amp_policy(amp: bool, amp_dtype: str, device: torch.device) -> tuple[bool, torch.dtype]:
    """Whether to autocast, and to which dtype: ``amp_dtype`` on CUDA; bfloat16 on a CPU with
    native bfloat16 (float16 is not offered there); float32 everywhere else."""
    dtype = torch.bfloat16 if amp_dtype == "bfloat16" else torch.float16
    if not amp:
        return False, torch.float32
    if device.type == "cuda":
        return True, dtype
    if device.type == "cpu" and cpu_has_bf16():
        if dtype != torch.bfloat16:
            log.warning("amp_dtype float16 is not supported on CPU: using bfloat16")
        return True, torch.bfloat16
    return False, torch.float32


def multiscale_loss(
    outputs: list[torch.Tensor], sharp: torch.Tensor, kind: str = "mse"
) -> torch.Tensor:
    """Sum over scales of the error against the sharp batch bilinearly resized to each scale.

    ``kind``: ``"mse"``, the paper's Eq. 3 with kappa_i = 1 (normalised by the number of
    values); ``"l1"``, the mean absolute error; ``"l1+fft"``, L1 plus 0.1 x the L1 distance of
    the 2-D Fourier transforms (the frequency loss of MIMO-UNet, Cho et al. 2021), which weighs
    the fine detail that blur removes more than a pixel loss does.
    """
    total = sharp.new_zeros((), dtype=torch.float32)
    for out in outputs:
        target = resize(sharp, (int(out.shape[-2]), int(out.shape[-1]))).float()
        out = out.float()
        if kind == "mse":
            total = total + F.mse_loss(out, target)
        elif kind in ("l1", "l1+fft"):
            total = total + F.l1_loss(out, target)
            if kind == "l1+fft":
                diff = torch.fft.rfft2(out) - torch.fft.rfft2(target)
                total = total + 0.1 * torch.view_as_real(diff).abs().mean()
        else:
            raise ValueError(f"loss must be 'mse', 'l1' or 'l1+fft', got {kind!r}")
    return total


@torch.no_grad()
def evaluate(model: SRN, dataset: ValSet, precision: Precision) -> dict[str, float]:
    """Mean PSNR and SSIM (scikit-image, data range 1) of the model's output and of the
    blurred input against the sharp images, computed in ``precision`` (the training's own);
    PSNR capped at 100 dB for identical images."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    was_training = model.training
    model.eval()
    sums = np.zeros(4)
    for index in range(len(dataset)):
        blurred, sharp = dataset[index]
        with precision.autocast():
            pred = model(precision.tensor(blurred[None]))[0]
        pred_np = pred.float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
        sharp_np = sharp.numpy().transpose(1, 2, 0)
        blurred_np = blurred.numpy().transpose(1, 2, 0)
        for j, image in enumerate((pred_np, blurred_np)):
            with np.errstate(divide="ignore"):
                psnr = peak_signal_noise_ratio(sharp_np, image, data_range=1.0)
            ssim = structural_similarity(sharp_np, image, data_range=1.0, channel_axis=-1)
            sums[2 * j] += min(float(psnr), 100.0)
            sums[2 * j + 1] += float(ssim)
    model.train(was_training)
    n = max(1, len(dataset))
    psnr, ssim, psnr_input, ssim_input = (float(v) for v in sums / n)
    return {
        "psnr": psnr,
        "ssim": ssim,
        "psnr_input": psnr_input,
        "ssim_input": ssim_input,
        "images": float(len(dataset)),
    }


# ------------------------------------------------------------------------------ setup


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


# ------------------------------------------------------------------------------ description


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


# ------------------------------------------------------------------------------ the parts


@dataclass
class _Data:
    """The run's data: where it comes from, the training crops and the validation set."""

    source: DataSource
    train_set: TrainSet
    val_set: ValSet | None
    val_text: str  # for the log and the model card
    workers: int


def _open_data(cfg: TrainConfig, arch: SRNConfig, device: torch.device) -> _Data:
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
    return _Data(source, train_set, val_set, val_text, workers)


class _Average:
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
class _Run:
    """What one call of :func:`train` works with: built by :func:`_start`, used by the parts."""

    cfg: TrainConfig
    arch: SRNConfig
    device: torch.device
    out: Path
    data: _Data
    model: SRN
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    policy: Precision
    average: _Average | None
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
        replot(self.out, self.title, self.cfg.steps)


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
    use_amp, amp_dtype = amp_policy(cfg.amp, cfg.amp_dtype, device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    if device.type == "cpu":
        # oneDNN's convolutions are faster in channels-last layout on CPU (more so in bf16)
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    precision = f"{str(amp_dtype).removeprefix('torch.')} autocast" if use_amp else "float32"
    log.info("precision: %s", precision)
    policy = Precision(device, amp_dtype, channels_last=device.type == "cpu")
    return model, optimizer, scheduler, scaler, policy


def _restore(run: _Run, state: dict[str, Any]) -> None:
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


def _start(config: TrainConfig) -> _Run:
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
) -> _Run:
    """Check everything (run folder, checkpoint, data), then build or restore the run and
    write its config and log headers. Nothing is written before the checks pass."""
    device = resolve_device(cfg.device)
    stale = prepare_run_dir(cfg, out)
    state = load_checkpoint(out / CHECKPOINT) if cfg.resume else None
    if state is not None:
        check_resume_config(state["config"], cfg, out, int(state["step"]))
    data = _open_data(cfg, arch, device)
    model, optimizer, scheduler, scaler, policy = _build_model(cfg, arch, init_state, device)
    run = _Run(
        cfg=cfg,
        arch=arch,
        device=device,
        out=out,
        data=data,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        policy=policy,
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
        run.average = _Average(model, cfg.ema_decay, state.get("ema") if state else None)
    for path in stale:
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    write_config(run.run_config.to_dict(), out / CONFIG_FILE)
    keep = run.start if run.resumed else None
    start_log(out / TRAIN_LOG, TRAIN_COLUMNS, keep)
    start_log(out / VAL_LOG, VAL_COLUMNS, keep)
    return run


def _train_step(run: _Run, blurred: torch.Tensor, sharp: torch.Tensor) -> torch.Tensor:
    """One update of the weights (and of their average) on a batch; returns the loss."""
    cfg, model, optimizer, scaler = run.cfg, run.model, run.optimizer, run.scaler
    blurred = blurred.to(run.device, non_blocking=True)
    sharp = sharp.to(run.device, non_blocking=True)
    if run.device.type == "cpu":
        blurred = blurred.contiguous(memory_format=torch.channels_last)
    with run.policy.autocast():
        outputs = model(blurred, return_all=True)
    loss = multiscale_loss(outputs, sharp, cfg.loss)
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


def _log_window(run: _Run, step: int, lr: float, window: _Window, bar: Any) -> TrainProgress:
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


def _validate(run: _Run, step: int, lr: float, event: TrainProgress | None) -> TrainProgress:
    """Score the shipped weights on the validation set: a row of val.csv, a log line, the
    curve, and the callback's event with ``val`` set."""
    assert run.data.val_set is not None
    metrics = evaluate(run.shipped, run.data.val_set, run.policy)
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
    nan = float("nan")
    base = event or TrainProgress(step, run.cfg.steps, run.last_loss, lr, nan, nan, nan)
    replot(run.out, run.title, run.cfg.steps)
    return dataclasses.replace(base, val=dict(run.last_val))


def _loop(
    run: _Run, callback: Callable[[TrainProgress], bool | None] | None
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


def _card_metrics(run: _Run) -> dict[str, Any]:
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


def _card(run: _Run, step: int, wall_s: float, metrics: dict[str, Any]) -> ModelCard:
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


def _finish(run: _Run, step: int, stopped: bool, waited_s: float) -> TrainResult:
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
    metrics = _card_metrics(run)
    out = run.out
    if stopped:
        log.info("stopped at step %d of %d; continue with --resume", step, run.cfg.steps)
        return TrainResult(out, None, out / CHECKPOINT, step, metrics, wall_s, speed, wait, True)
    save_model(
        run.shipped,
        out / WEIGHTS,
        _card(run, step, wall_s, metrics),
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
    run = _start(config)
    try:
        step, stopped, waited_s = _loop(run, callback)
        return _finish(run, step, stopped, waited_s)
    finally:
        if run.lock is not None:
            run.lock.release()
