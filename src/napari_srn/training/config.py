"""Configuration of a training run: one frozen dataclass, YAML defaults, command-line overrides.

No torch is imported here, so ``napari-srn train --help`` and config checks stay fast.

The defaults are the paper's recipe (Tao et al., CVPR 2018, and the authors' released code):
256 x 256 crops, batch 16, Adam with learning rate 1e-4 decayed polynomially (power 0.3) to zero
over the run, the multi-scale Euclidean loss, and the 3-scale color network. ``steps`` defaults
to 2000 epochs of GOPRO's 2,103 training pairs at batch 16 (262,875 updates); a small machine
overrides width, crop, batch and steps.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from ..model.config import SRNConfig
from .synth import ShakeParams

_SHAKE = ShakeParams()

__all__ = [
    "CONFIG_FILE",
    "RUN_ONLY_FIELDS",
    "TrainConfig",
    "config_from_file",
    "convert_value",
    "field_help",
]

#: Name of the resolved config written into every run directory.
CONFIG_FILE = "config.yaml"

#: Fields that may change when a run is resumed: they do not change what is computed.
RUN_ONLY_FIELDS = frozenset(
    {
        "resume",
        "overwrite",
        "num_workers",
        "image_cache",
        "progress",
        "device",
        "checkpoint_every",
        "log_every",
        "val_every",
        "val_data",
        "val_images",
        "val_crop",
        "name",
        "description",
        "provisional",
        "half",
        "ema_decay",
    }
)

DataKind = Literal["auto", "pairs", "sharp", "zarr"]
Recurrent = Literal["none", "convlstm"]
Block = Literal["resblock", "nafblock"]
AmpDtype = Literal["bfloat16", "float16"]
Loss = Literal["mse", "l1", "l1+fft"]

#: Architecture fields: None means "from init_weights when given, else SRNConfig's default".
MODEL_FIELDS = (
    "channels",
    "width",
    "scales",
    "res_blocks",
    "kernel_size",
    "recurrent",
    "global_residual",
    "block",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; every field can be set in YAML or as ``--field value``.

    Build one with keywords (``TrainConfig(data="photos/", out="runs/a", width=8)``), from a
    mapping (:meth:`from_dict`, which also converts strings) or from a YAML file plus overrides
    (:func:`config_from_file`). All invalid fields are reported in one ``ValueError``.
    See ``napari-srn train --help`` or ``docs/training.md`` for what each field means.
    """

    # -- data ----------------------------------------------------------------------------
    data: str = ""
    data_kind: DataKind = "auto"
    blur_dir: str = "blur"
    val_data: str | None = None
    val_fraction: float = 0.1
    val_images: int = 64
    val_crop: int = 512
    crop: int = 256
    crop_tries: int = 1
    gray_fraction: float = 0.0
    augment: bool = True
    num_workers: int | None = None
    image_cache: int = 8
    # -- synthetic camera shake (sharp-only data) ----------------------------------------
    # (defaults from ShakeParams, the one place they are written)
    shake_size: tuple[int, int] = _SHAKE.shake_size
    shake_length: tuple[float, float] = _SHAKE.shake_length
    shakiness: tuple[float, float] = _SHAKE.shakiness
    no_blur_fraction: float = _SHAKE.no_blur_fraction
    gamma: float = _SHAKE.gamma
    highlight_gain: tuple[float, float] = _SHAKE.highlight_gain
    clip: bool = _SHAKE.clip
    noise: tuple[float, float] = _SHAKE.noise
    # -- model ---------------------------------------------------------------------------
    channels: int | None = None
    width: int | None = None
    scales: int | None = None
    res_blocks: int | None = None
    kernel_size: int | None = None
    recurrent: Recurrent | None = None
    global_residual: bool | None = None
    block: Block | None = None
    init_weights: str | None = None
    # -- optimisation --------------------------------------------------------------------
    steps: int = 262_875
    batch_size: int = 16
    lr: float = 1e-4
    loss: Loss = "mse"
    lr_power: float = 0.3
    clip_grad_norm: float | None = None
    ema_decay: float | None = None
    seed: int = 0
    # -- run -----------------------------------------------------------------------------
    out: str = "runs/srn"
    resume: bool = False
    overwrite: bool = False
    device: str | None = None
    amp: bool = True
    amp_dtype: AmpDtype = "bfloat16"
    val_every: int = 2000
    checkpoint_every: int = 1000
    log_every: int = 10
    progress: bool = True
    name: str | None = None
    description: str = ""
    provisional: bool = False
    half: bool = False

    def __post_init__(self) -> None:
        problems = _problems({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if problems:
            raise ValueError(_message(problems))

    # -- derived ----------------------------------------------------------------------------
    def model_config(self, base: SRNConfig | None = None) -> SRNConfig:
        """The architecture: the fields that are set, the rest from ``base`` (or defaults)."""
        values = (base or SRNConfig()).to_dict()
        values.update({k: getattr(self, k) for k in MODEL_FIELDS if getattr(self, k) is not None})
        return SRNConfig.from_dict(values)

    @property
    def divisor(self) -> int:
        return 4 * 2 ** ((self.scales or SRNConfig().scales) - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (tuples become lists), ready for YAML or JSON."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from a mapping; strings (from YAML or the command line) are
        converted to each field's type. Unknown keys and invalid values are all reported in
        one ``ValueError``."""
        if not isinstance(data, dict):
            raise TypeError(f"a training config must be a mapping, got {type(data).__name__}")
        hints = _hints()
        problems, values = [], {}
        for key, value in data.items():
            if key not in hints:
                close = difflib.get_close_matches(str(key), list(hints), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{key}: unknown field{hint}")
                continue
            try:
                values[key] = convert_value(key, value, hints[key])
            except ValueError as err:
                problems.append(f"{key}: {err}")
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        problems += [
            p
            for p in _problems({**defaults, **values})
            if p.split(":")[0] not in {q.split(":")[0] for q in problems}
        ]
        if problems:
            raise ValueError(_message(problems))
        return cls(**values)


#: ``field: (group, help)`` for every TrainConfig field (the --help text and the docs).
FIELD_HELP: dict[str, tuple[str, str]] = {
    # data
    "data": (
        "data",
        "training data: a folder of GoPro-style pairs (SEQ/blur, SEQ/sharp), a "
        "folder of sharp images (png/jpg/tif; camera shake is synthesised), or a zarr "
        "group with 'blur' and 'sharp' (or only 'sharp') arrays",
    ),
    "data_kind": ("data", "auto (detect), pairs, sharp or zarr"),
    "blur_dir": (
        "data",
        "name of the blurred folder (or zarr array) of a pair: blur, or GoPro's blur_gamma",
    ),
    "val_data": (
        "data",
        "separate validation data (same kinds as data); by default "
        "val_fraction of data is held out",
    ),
    "val_fraction": (
        "data",
        "share of data held out for validation when val_data is not "
        "given (whole sequences for pairs); never trained on",
    ),
    "val_images": ("data", "validate on at most this many held-out images (0: all)"),
    "val_crop": (
        "data",
        "validate on the central val_crop x val_crop of each image (0: the "
        "whole image, cut down to a multiple of the divisor)",
    ),
    "crop": (
        "data",
        "side of the random training crops (a multiple of the divisor: 16 for 3 scales)",
    ),
    "crop_tries": (
        "data",
        "draw this many random crop positions and train on the most textured one (largest "
        "mean gradient of the sharp image); 1: uniform crops, as the paper. Photos with large "
        "smooth areas (sky, bokeh) waste most uniform crops on nothing to deblur",
    ),
    "gray_fraction": (
        "data",
        "share of colour training crops turned grey (luma in every channel) before blurring, "
        "so that a colour model also learns grey and microscopy images; 0: none",
    ),
    "augment": ("data", "random flips and 90-degree rotations"),
    "num_workers": (
        "data",
        "DataLoader worker processes (none: CPU cores - 1, at most 8; 0: "
        "load in the training process)",
    ),
    "image_cache": ("data", "decoded images kept in memory per worker (helps small folders)"),
    # synthetic camera shake
    "shake_size": ("shake", "range of kernel sides in pixels (odd sizes drawn uniformly)"),
    "shake_length": ("shake", "range of the camera path length, as a fraction of the kernel side"),
    "shakiness": ("shake", "range of Boracchi & Foi's anxiety: 0 straight paths, 1 erratic"),
    "no_blur_fraction": (
        "shake",
        "share of samples left unblurred (teaches the network to leave sharp images alone)",
    ),
    "gamma": (
        "shake",
        "blur in linear light: undo this gamma before blurring and re-apply "
        "it after (1: blur the stored values)",
    ),
    "highlight_gain": (
        "shake",
        "range of the gain applied in linear light to saturated "
        "pixels before blurring, so highlights streak as in real photos",
    ),
    "clip": ("shake", "clip the blurred image to [0, 1] (saturation, as in GoPro)"),
    "noise": (
        "shake",
        "range of the sigma of Gaussian noise added to the blurred image (values in [0, 1])",
    ),
    # model
    "channels": ("model", "1 (gray) or 3 (color); default 3, or from init_weights"),
    "width": ("model", "channels of the first block (32 in the paper)"),
    "scales": ("model", "coarse-to-fine levels (3)"),
    "res_blocks": ("model", "ResBlocks per stage (3)"),
    "kernel_size": ("model", "convolution size (5)"),
    "recurrent": ("model", "none, or convlstm (the paper's scale-recurrent ConvLSTM)"),
    "global_residual": ("model", "predict a correction added to the input (not in the paper)"),
    "block": ("model", "stage blocks: resblock (the paper's) or nafblock (NAFNet-style, cheaper)"),
    "init_weights": (
        "model",
        "fine-tune from these weights (a bundled name or a "
        ".safetensors file); the architecture comes from them",
    ),
    # optimisation
    "steps": (
        "optim",
        "optimizer updates in the run (the learning rate reaches 0 at the "
        "end); the default is 2000 GoPro epochs at batch 16",
    ),
    "batch_size": ("optim", "crops per update"),
    "lr": ("optim", "initial Adam learning rate"),
    "lr_power": ("optim", "power of the polynomial decay to zero"),
    "loss": (
        "optim",
        "per-scale loss: mse (the paper), l1, or l1+fft (L1 plus 0.1 x L1 of the Fourier "
        "transforms, after MIMO-UNet)",
    ),
    "clip_grad_norm": (
        "optim",
        "clip the gradient's global norm (the authors clip the ConvLSTM's at 3)",
    ),
    "ema_decay": (
        "optim",
        "keep an exponential moving average of the weights with this decay (e.g. 0.999) and "
        "validate, export and ship it instead of the raw weights; it does not change the "
        "training itself, so it may be switched on when a run is resumed",
    ),
    "seed": (
        "optim",
        "seed of the initial weights, data order, crops, augmentation, "
        "kernels and validation split",
    ),
    # run
    "out": ("run", "run directory: config, checkpoint, logs, plot, final model.safetensors"),
    "resume": ("run", "continue the run in out from its checkpoint, exactly"),
    "overwrite": (
        "run",
        "start again in an existing run directory, deleting its checkpoint, logs and model",
    ),
    "device": ("run", "cpu, cuda, cuda:N (default: CUDA if available, else CPU)"),
    "amp": (
        "run",
        "mixed precision (autocast): amp_dtype on CUDA, bfloat16 on a CPU with native "
        "bfloat16 (AVX512-BF16 or AMX), float32 elsewhere",
    ),
    "amp_dtype": ("run", "bfloat16, or float16 (with loss scaling; CUDA only), for amp"),
    "val_every": ("run", "validate every this many steps (0: only at the end)"),
    "checkpoint_every": (
        "run",
        "write the resume checkpoint every this many steps (0: only at the end)",
    ),
    "log_every": ("run", "write a row of train.csv every this many steps"),
    "progress": ("run", "show a progress bar (steps/s, ETA) on stderr"),
    "name": ("run", "model card name (default: the run directory's name)"),
    "description": ("run", "model card description"),
    "provisional": ("run", "mark the model card provisional (not for real use)"),
    "half": ("run", "save the final weights as float16 (half the size)"),
}


def _message(problems: list[str]) -> str:
    return (
        f"Invalid training config ({len(problems)} problem(s)):\n  - "
        + "\n  - ".join(problems)
        + "\nSee `napari-srn train --help` for every field."
    )


@typing.no_type_check
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def field_help() -> list[tuple[str, Any, str, str, Any]]:
    """``(name, type, group, help, default)`` for every field, in declaration order."""
    hints = _hints()
    return [
        (f.name, hints[f.name], *FIELD_HELP[f.name], f.default)
        for f in dataclasses.fields(TrainConfig)
    ]


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def convert_value(name: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` (possibly a string) to the type ``hint``; ValueError if it cannot."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if typing.get_origin(inner[0]) is Literal and value in typing.get_args(inner[0]):
            return value  # e.g. recurrent: "none" is a value, not a missing one
        if value is None or (
            isinstance(value, str) and value.strip().lower() in ("none", "null", "~", "")
        ):
            return None
        return convert_value(name, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ValueError(f"must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        items = value
        if isinstance(value, str):
            items = [s for s in value.strip().strip("[]()").replace(",", " ").split() if s]
        if not isinstance(items, (list, tuple)) or len(items) != len(args):
            raise ValueError(f"must be {len(args)} values like '{_example(args)}', got {value!r}")
        return tuple(convert_value(name, v, a) for v, a in zip(items, args, strict=True))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ValueError(f"must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            pass
        try:
            number = float(str(value).strip())
        except ValueError:
            number = float("nan")
        if number.is_integer():
            return int(number)
        raise ValueError(f"must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, bool):
            raise ValueError(f"must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, (str, os.PathLike)):
            return str(value)
        raise ValueError(f"must be a string, got {value!r}")
    raise ValueError(f"cannot convert {value!r} to {hint}")  # pragma: no cover


def _example(args: tuple[Any, ...]) -> str:
    return ",".join("1" if a is int else "0.5" for a in args)


def _problems(v: dict[str, Any]) -> list[str]:
    """Every invalid field of ``v`` (already of the right types, or wrong ones) as messages."""
    out: list[str] = []

    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    def is_num(x: Any) -> bool:  # a finite number (YAML's .inf and .nan are not)
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    def need(cond: bool, name: str, text: str) -> None:
        if not cond:
            out.append(f"{name}: {text}, got {v[name]!r}")

    def pair(name: str, lo: float, hi: float | None, integer: bool = False) -> None:
        x = v[name]
        ok = (
            isinstance(x, tuple)
            and len(x) == 2
            and all((is_int(a) if integer else is_num(a)) for a in x)
        )
        ok = ok and lo <= x[0] <= x[1] and (hi is None or x[1] <= hi)
        upper = "" if hi is None else f" and <= {hi}"
        kind = "integers" if integer else "numbers"
        need(ok, name, f"must be two {kind} (low, high) with {lo} <= low <= high{upper}")

    need(
        isinstance(v["data"], str) and v["data"] != "",
        "data",
        "is required: a folder of pairs or of sharp images, or a zarr group",
    )
    need(
        v["data_kind"] in ("auto", "pairs", "sharp", "zarr"),
        "data_kind",
        "must be auto, pairs, sharp or zarr",
    )
    need(
        isinstance(v["blur_dir"], str) and v["blur_dir"] not in ("", "sharp"),
        "blur_dir",
        "must name the blurred folder, e.g. blur or blur_gamma",
    )
    need(
        v["val_data"] is None or (isinstance(v["val_data"], str) and v["val_data"] != ""),
        "val_data",
        "must be a path or None",
    )
    need(
        is_num(v["val_fraction"]) and 0 <= v["val_fraction"] < 1,
        "val_fraction",
        "must be a number in [0, 1)",
    )
    need(is_int(v["val_images"]) and v["val_images"] >= 0, "val_images", "must be >= 0")
    divisor = 16
    if is_int(v["scales"]) and 1 <= v["scales"] <= 6:
        divisor = 4 * 2 ** (v["scales"] - 1)
    need(
        is_int(v["val_crop"]) and v["val_crop"] >= 0 and v["val_crop"] % divisor == 0,
        "val_crop",
        f"must be 0 or a positive multiple of {divisor}",
    )
    crop = v["crop"]
    if not (is_int(crop) and crop >= divisor and crop % divisor == 0):
        lo = max(divisor, crop // divisor * divisor) if is_int(crop) else 256
        out.append(
            f"crop: must be a positive multiple of {divisor} (the network's divisor), "
            f"got {crop!r}; try {lo} or {lo + divisor}"
        )
    need(
        is_int(v["crop_tries"]) and v["crop_tries"] >= 1,
        "crop_tries",
        "must be an integer >= 1 (1: uniform random crops)",
    )
    need(
        is_num(v["gray_fraction"]) and 0 <= v["gray_fraction"] <= 1,
        "gray_fraction",
        "must be in [0, 1]",
    )
    need(isinstance(v["augment"], bool), "augment", "must be true or false")
    need(
        v["num_workers"] is None or (is_int(v["num_workers"]) and v["num_workers"] >= 0),
        "num_workers",
        "must be an integer >= 0 or None (automatic)",
    )
    need(is_int(v["image_cache"]) and v["image_cache"] >= 0, "image_cache", "must be >= 0")
    pair("shake_size", 1, None, integer=True)
    if not out or not out[-1].startswith("shake_size"):
        need(
            v["shake_size"][0] % 2 == 1 or v["shake_size"][0] != v["shake_size"][1],
            "shake_size",
            "must contain an odd size",
        )
    pair("shake_length", 0, None)
    pair("shakiness", 0, 1)
    need(
        is_num(v["no_blur_fraction"]) and 0 <= v["no_blur_fraction"] <= 1,
        "no_blur_fraction",
        "must be in [0, 1]",
    )
    need(is_num(v["gamma"]) and v["gamma"] > 0, "gamma", "must be > 0 (1 disables it)")
    pair("highlight_gain", 1, None)
    need(isinstance(v["clip"], bool), "clip", "must be true or false")
    pair("noise", 0, 1)
    # the architecture: SRNConfig's own checks, one message per field
    arch = {k: v[k] for k in MODEL_FIELDS if v[k] is not None}
    try:
        SRNConfig(**arch)
    except ValueError as err:
        for line in str(err).splitlines()[1:]:
            text = line.strip(" -")
            out.append(f"{text.split(' ')[0]}: {text}")
    except TypeError as err:  # pragma: no cover - wrong keyword can't happen here
        out.append(f"model: {err}")
    need(
        v["init_weights"] is None
        or (isinstance(v["init_weights"], str) and v["init_weights"] != ""),
        "init_weights",
        "must be a bundled model name, a .safetensors path, or None",
    )
    need(is_int(v["steps"]) and v["steps"] >= 1, "steps", "must be an integer >= 1")
    need(is_int(v["batch_size"]) and v["batch_size"] >= 1, "batch_size", "must be an integer >= 1")
    need(is_num(v["lr"]) and v["lr"] > 0, "lr", "must be > 0")
    need(is_num(v["lr_power"]) and v["lr_power"] >= 0, "lr_power", "must be >= 0")
    need(
        v["clip_grad_norm"] is None or (is_num(v["clip_grad_norm"]) and v["clip_grad_norm"] > 0),
        "clip_grad_norm",
        "must be > 0 or None",
    )
    need(
        v["ema_decay"] is None or (is_num(v["ema_decay"]) and 0 < v["ema_decay"] < 1),
        "ema_decay",
        "must be between 0 and 1 (e.g. 0.999), or None for no average",
    )
    need(is_int(v["seed"]) and v["seed"] >= 0, "seed", "must be an integer >= 0")
    need(isinstance(v["out"], str) and v["out"] != "", "out", "must be a directory path")
    for name in ("resume", "overwrite", "amp", "progress", "provisional", "half"):
        need(isinstance(v[name], bool), name, "must be true or false")
    if v["resume"] is True and v["overwrite"] is True:
        out.append(
            "resume: resume and overwrite exclude each other (resume continues the "
            "run in out, overwrite starts it again), got both"
        )
    need(
        v["device"] is None or isinstance(v["device"], str),
        "device",
        "must be cpu, cuda, cuda:N or None",
    )
    need(v["amp_dtype"] in ("bfloat16", "float16"), "amp_dtype", "must be bfloat16 or float16")
    need(v["loss"] in ("mse", "l1", "l1+fft"), "loss", "must be mse, l1 or l1+fft")
    for name in ("val_every", "checkpoint_every"):
        need(is_int(v[name]) and v[name] >= 0, name, "must be an integer >= 0 (0: only at the end)")
    need(is_int(v["log_every"]) and v["log_every"] >= 1, "log_every", "must be an integer >= 1")
    need(
        v["name"] is None or (isinstance(v["name"], str) and v["name"] != ""),
        "name",
        "must be a non-empty string or None",
    )
    need(isinstance(v["description"], str), "description", "must be a string")
    return out


def config_from_file(
    path: str | os.PathLike | None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read a YAML config (a mapping of field: value) and apply ``overrides`` on top.

    Unknown keys and invalid values in the file and the overrides are reported together.
    """
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {str(p)!r} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"config file {str(p)!r} is not valid YAML: {err}") from err
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ValueError(
                f"config file {str(p)!r} must hold a mapping of field: value, "
                f"got a {type(loaded).__name__}"
            )
        data.update(loaded)
    data.update(overrides or {})
    return TrainConfig.from_dict(data)


def dump_config(config: TrainConfig, path: str | os.PathLike) -> None:
    """Write ``config`` as YAML (atomically), with a header saying how to reuse it."""
    import yaml

    p = Path(path)
    text = (
        "# Resolved napari-srn training config (every field); reuse it with\n"
        "#   napari-srn train --config THIS_FILE [--field value ...]\n"
        + yaml.safe_dump(config.to_dict(), sort_keys=False)
    )
    tmp = p.with_name(p.name + ".partial")
    tmp.write_text(text)
    os.replace(tmp, p)
