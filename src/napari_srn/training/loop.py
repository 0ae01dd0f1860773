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
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import logging
import math
import os
import platform
import random
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
from tqdm.auto import tqdm

from ..inference.precision import Precision, cpu_has_bf16
from ..model.config import SRNConfig
from ..model.srn import SRN, resize
from ..model.weights import ModelCard, load_model, resolve_device, save_model
from .config import CONFIG_FILE, MODEL_FIELDS, RUN_ONLY_FIELDS, TrainConfig, dump_config
from .data import (
    DataSource,
    TrainSet,
    ValSet,
    default_workers,
    find_data,
    make_loader,
    split,
)
from .plot import plot_progress
from .synth import ShakeParams

__all__ = [
    "CHECKPOINT",
    "TrainProgress",
    "TrainResult",
    "amp_policy",
    "cpu_has_bf16",
    "evaluate",
    "multiscale_loss",
    "train",
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
CHECKPOINT_FORMAT = "napari-srn-train-checkpoint"


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
        target = resize(sharp, tuple(out.shape[-2:])).float()
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


# ------------------------------------------------------------------------------ run folder


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


def _prepare_run_dir(config: TrainConfig, out: Path) -> list[Path]:
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


def _discard_unstarted(out: Path) -> None:
    """Remove the files of a new run that failed before its first checkpoint (its config, logs
    and curve: nothing that can be resumed), so that the same command can simply be rerun."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    log.warning("the run failed before its first checkpoint; its files in %s were removed", out)


def _check_data_outside_run(cfg: TrainConfig, out: Path) -> None:
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


def _check_resume_config(saved: dict[str, Any], config: TrainConfig, out: Path, step: int) -> None:
    """Refuse a resume whose config would compute something else; ``steps`` alone may change
    (longer, or shorter but past the checkpoint's ``step``): the schedule then follows it.
    ``init_weights`` may name another path (or none): a resumed run takes its weights from the
    checkpoint, so where the starting weights lie does not change what is computed; nor does
    ``out``, so a run directory may be moved or copied and resumed where it now lies."""
    try:
        old = TrainConfig.from_dict({**saved, "resume": False, "overwrite": False})
    except ValueError as err:
        raise ValueError(f"the checkpoint in {str(out)!r} has an unreadable config: {err}") from err
    diffs = [
        f"{f.name}: the run has {getattr(old, f.name)!r}, now {getattr(config, f.name)!r}"
        for f in dataclasses.fields(TrainConfig)
        if f.name not in RUN_ONLY_FIELDS | {"steps", "init_weights", "out"}
        and getattr(old, f.name) != getattr(config, f.name)
    ]
    if config.steps != old.steps:
        if config.steps <= step:
            diffs.append(
                f"steps: the checkpoint is at step {step}, so steps must be larger than "
                f"{step} (the run has {old.steps}, now {config.steps})"
            )
        else:
            log.warning(
                "changing the run's length from %d to %d steps at step %d: the learning rate "
                "follows the new schedule from here, so the run equals no uninterrupted run",
                old.steps,
                config.steps,
                step,
            )
    if diffs:
        raise ValueError(
            f"cannot resume {str(out)!r} exactly with a different config:\n  - "
            + "\n  - ".join(diffs)
            + "\nResume with the run's own config (napari-srn train --resume --out RUN), or "
            "start a new run (--init-weights RUN/model.safetensors fine-tunes from it)"
        )


# ------------------------------------------------------------------------------ checkpoints


def _rng_state(device: torch.device) -> dict[str, Any]:
    # the legacy global generators are saved too, in case user code (a callback) uses them
    name, key, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if device.type == "cuda" else [],
        "numpy": {
            "name": name,
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [version, list(internal), gauss_next],
    }


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    key = n["key"].numpy().astype(np.uint32)
    legacy = (n["name"], key, n["pos"], n["has_gauss"], n["cached_gaussian"])
    np.random.set_state(legacy)  # noqa: NPY002
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _save_checkpoint(path: Path, **state: Any) -> None:
    tmp = path.with_name(path.name + ".partial")
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, **state}, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a broken file
        raise ValueError(f"cannot read the checkpoint {str(path)!r}: {err}") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is not a napari-srn training checkpoint")
    missing = [k for k in _CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ValueError(f"the checkpoint {str(path)!r} is incomplete: it lacks {missing}")
    step, elapsed = state["step"], state["elapsed_s"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"the checkpoint {str(path)!r} has an invalid step {step!r}")
    if not isinstance(elapsed, (int, float)) or not 0 <= elapsed < math.inf:
        raise ValueError(f"the checkpoint {str(path)!r} has an invalid elapsed_s {elapsed!r}")
    if not isinstance(state["config"], dict):
        raise ValueError(f"the checkpoint {str(path)!r} has no config")
    return state


#: What every checkpoint holds (checked before anything of the run is touched).
_CHECKPOINT_KEYS = ("step", "elapsed_s", "model", "optimizer", "scheduler", "rng", "config")


# ------------------------------------------------------------------------------ logs


def _start_log(path: Path, columns: tuple[str, ...], keep_until: int | None) -> None:
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


def _append(path: Path, row: list[Any]) -> None:
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


def _replot(out: Path, title: str, steps: int) -> None:
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
    tries = f" (most textured of {cfg.crop_tries})" if cfg.crop_tries > 1 else ""
    gray = f", {cfg.gray_fraction:.0%} of them turned grey" if cfg.gray_fraction else ""
    return text + f"; {cfg.crop}x{cfg.crop} crops{tries}{gray}, batch {cfg.batch_size}"


# ------------------------------------------------------------------------------ train


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
    cfg, arch, init_state = _resolve(config)
    device = resolve_device(cfg.device)
    out = Path(cfg.out).expanduser()
    _check_data_outside_run(cfg, out)
    stale = _prepare_run_dir(cfg, out)
    state = _load_checkpoint(out / CHECKPOINT) if cfg.resume else None
    if state is not None:
        _check_resume_config(state["config"], cfg, out, int(state["step"]))

    # -- data (all checks before anything is written) --------------------------------------
    source = find_data(cfg.data, cfg.data_kind, cfg.blur_dir)
    train_items, val_items = split(source.items, 0 if cfg.val_data else cfg.val_fraction, cfg.seed)
    val_source = source
    if cfg.val_data:
        val_source = find_data(cfg.val_data, "auto", cfg.blur_dir)
        val_items = val_source.items
    shake = ShakeParams.from_config(cfg)
    common = {"channels": arch.channels, "seed": cfg.seed, "shake": shake}
    train_set = TrainSet(
        train_items,
        crop=cfg.crop,
        crop_tries=cfg.crop_tries,
        gray_fraction=cfg.gray_fraction,
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

    # -- model, optimiser, schedule ------------------------------------------------------------
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
        model.to(memory_format=torch.channels_last)
    precision = f"{str(amp_dtype).removeprefix('torch.')} autocast" if use_amp else "float32"
    log.info("precision: %s", precision)

    policy = Precision(device, amp_dtype, channels_last=device.type == "cpu")
    autocast = policy.autocast

    start, elapsed, last_val, last_loss = 0, 0.0, None, float("nan")
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        decay = PolyDecay(cfg.steps, cfg.lr_power)  # the saved one may have another length
        scheduler.lr_lambdas = [decay]
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
            group["lr"] = base * decay(int(state["step"]))
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"], device)
        start, elapsed = int(state["step"]), float(state["elapsed_s"])
        last_val = state.get("val") or None
        last_loss = float(state.get("loss", float("nan")))
        log.info("resuming %s at step %d of %d", out, start, cfg.steps)
    # the average of the weights (a side computation: training itself is the same with or
    # without it); it starts from the current weights when first switched on
    ema: SRN | None = None
    if cfg.ema_decay is not None:
        ema = copy.deepcopy(model).requires_grad_(False)
        if state is not None and state.get("ema"):
            ema.load_state_dict(state["ema"])
        ema_params, model_params = list(ema.parameters()), list(model.parameters())
    shipped = ema if ema is not None else model  # what is validated and written
    for path in stale:
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    run_config = cfg.replace(resume=False, overwrite=False)  # what the run is, not how it began
    dump_config(run_config, out / CONFIG_FILE)
    _start_log(out / TRAIN_LOG, TRAIN_COLUMNS, start if state is not None else None)
    _start_log(out / VAL_LOG, VAL_COLUMNS, start if state is not None else None)
    title = (
        f"{out.name}: {arch.channels}-channel SRN width {arch.width}, {cfg.crop} px crops, "
        f"batch {cfg.batch_size}"
    )

    def checkpoint(step: int) -> None:
        _save_checkpoint(
            out / CHECKPOINT,
            step=step,
            elapsed_s=elapsed + time.perf_counter() - t_run,
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            scaler=scaler.state_dict() if scaler.is_enabled() else {},
            rng=_rng_state(device),
            config=run_config.to_dict(),
            val=last_val or {},
            loss=last_loss,
            **({"ema": ema.state_dict(), "ema_decay": cfg.ema_decay} if ema is not None else {}),
        )
        _replot(out, title, cfg.steps)

    # -- loop --------------------------------------------------------------------------------
    t_run = time.perf_counter()
    step, stopped, in_update = start, False, False
    interrupt = _GracefulInterrupt()
    session_wait = 0.0
    window_t, window_wait, window_n = t_run, 0.0, 0
    # float64 keeps a long logging window's mean exact enough; MPS has no float64
    acc_dtype = torch.float32 if device.type == "mps" else torch.float64
    window_loss = torch.zeros((), dtype=acc_dtype, device=device)
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        unit="step",
        desc="train",
        disable=not cfg.progress,
        dynamic_ncols=True,
    )
    loader = make_loader(
        train_set,
        start,
        cfg.steps,
        cfg.batch_size,
        cfg.num_workers,
        pin_memory=device.type == "cuda",
    )
    batches = iter(loader)
    try:
        while step < cfg.steps:
            t0 = time.perf_counter()
            blurred, sharp = next(batches)
            waited = time.perf_counter() - t0
            window_wait += waited
            session_wait += waited
            blurred = blurred.to(device, non_blocking=True)
            sharp = sharp.to(device, non_blocking=True)
            if device.type == "cpu":
                blurred = blurred.contiguous(memory_format=torch.channels_last)
            lr = optimizer.param_groups[0]["lr"]
            in_update = True
            with autocast():
                outputs = model(blurred, return_all=True)
            loss = multiscale_loss(outputs, sharp, cfg.loss)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.clip_grad_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if ema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(ema_params, model_params, 1.0 - cfg.ema_decay)
            step += 1
            in_update = False
            window_loss += loss.detach().to(acc_dtype)
            window_n += 1
            bar.update(1)
            event = None
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                last_loss = float(window_loss) / window_n
                speed = window_n / max(now - window_t, 1e-9)
                wait_share = window_wait / max(now - window_t, 1e-9)
                if not math.isfinite(last_loss):
                    raise FloatingPointError(
                        f"the training loss became {last_loss} at step {step}; lower --lr, "
                        "set --clip-grad-norm, or use --amp-dtype bfloat16"
                    )
                wall = elapsed + now - t_run
                _append(
                    out / TRAIN_LOG,
                    [
                        step,
                        step * cfg.batch_size / len(train_set),
                        last_loss,
                        lr,
                        speed,
                        wait_share,
                        wall,
                    ],
                )
                bar.set_postfix(
                    loss=f"{last_loss:.4g}",
                    lr=f"{lr:.2e}",
                    data=f"{100 * wait_share:.0f}%",
                    refresh=False,
                )
                event = TrainProgress(
                    step, cfg.steps, last_loss, lr, speed, wait_share, (cfg.steps - step) / speed
                )
                window_t, window_wait, window_n = now, 0.0, 0
                window_loss.zero_()
            validate = val_set is not None and (
                (cfg.val_every and step % cfg.val_every == 0) or step == cfg.steps
            )
            if validate:
                metrics = evaluate(shipped, val_set, policy)
                last_val = {"step": float(step), **metrics}
                _append(
                    out / VAL_LOG,
                    [
                        step,
                        metrics["psnr"],
                        metrics["ssim"],
                        metrics["psnr_input"],
                        metrics["ssim_input"],
                        int(metrics["images"]),
                        elapsed + time.perf_counter() - t_run,
                    ],
                )
                log.info(
                    "step %d: validation PSNR %.2f dB (input %.2f), SSIM %.4f (input %.4f)",
                    step,
                    metrics["psnr"],
                    metrics["psnr_input"],
                    metrics["ssim"],
                    metrics["ssim_input"],
                )
                base = event or TrainProgress(
                    step, cfg.steps, last_loss, lr, float("nan"), float("nan"), float("nan")
                )
                event = dataclasses.replace(base, val=dict(last_val))
                _replot(out, title, cfg.steps)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                checkpoint(step)
            if event is not None and callback is not None and callback(event) is False:
                stopped = step < cfg.steps
                break
            if interrupt.requested:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        if not in_update and step > start:
            checkpoint(step)
            log.warning(
                "interrupted at step %d; checkpoint written to %s (continue with --resume)",
                step,
                out / CHECKPOINT,
            )
        elif state is None and not (out / CHECKPOINT).exists():
            _discard_unstarted(out)
        raise
    except Exception:
        if state is None and not (out / CHECKPOINT).exists():
            _discard_unstarted(out)  # nothing to resume: a rerun must not be blocked by it
        raise
    finally:
        interrupt.restore()
        bar.close()
        del batches, loader  # stops the workers

    session_s = time.perf_counter() - t_run
    checkpoint(step)
    wall_s = elapsed + session_s
    session_steps = step - start
    speed = session_steps / session_s if session_steps else float("nan")
    wait = session_wait / session_s if session_steps else float("nan")
    if session_steps and wait > 0.1:
        log.warning(
            "the model waited for data %.0f%% of the time; raise num_workers (now %d) "
            "or image_cache if cores are free",
            100 * wait,
            workers,
        )
    metrics: dict[str, Any] = {}
    if last_val:
        metrics = {
            "val_psnr": round(last_val["psnr"], 4),
            "val_ssim": round(last_val["ssim"], 5),
            "val_psnr_input": round(last_val["psnr_input"], 4),
            "val_ssim_input": round(last_val["ssim_input"], 5),
            "val_images": int(last_val["images"]),
            "val_step": int(last_val["step"]),
            "val_crop": cfg.val_crop or "whole image",
        }
    metrics["train_loss"] = round(last_loss, 6) if math.isfinite(last_loss) else None
    if stopped:
        log.info("stopped at step %d of %d; continue with --resume", step, cfg.steps)
        return TrainResult(out, None, out / CHECKPOINT, step, metrics, wall_s, speed, wait, True)
    card = ModelCard(
        name=cfg.name or out.name,
        description=(
            (
                cfg.description
                or f"SRN ({arch.channels} channel(s), width {arch.width}, {arch.scales} "
                f"scales, {arch.res_blocks} ResBlocks, recurrent={arch.recurrent}) trained "
                "with `napari-srn train`"
            ).rstrip(". ")
            # the provenance of fine-tuned weights is kept whatever the description says
            + (f"; fine-tuned from {cfg.init_weights}" if cfg.init_weights else "")
            + (
                f"; moving average of the weights (decay {cfg.ema_decay})"
                if ema is not None
                else ""
            )
        ),
        training_data=_describe_data(cfg, source, len(train_set), val_text),
        training_steps=step,
        wall_time_hours=round(wall_s / 3600, 6),
        hardware=_hardware(device),
        metrics=metrics,
        provisional=cfg.provisional,
    )
    save_model(shipped, out / WEIGHTS, card, half=cfg.half, overwrite=True)
    log.info("wrote %s (%d steps, %.2f h)", out / WEIGHTS, step, wall_s / 3600)
    return TrainResult(
        out, out / WEIGHTS, out / CHECKPOINT, step, metrics, wall_s, speed, wait, False
    )
