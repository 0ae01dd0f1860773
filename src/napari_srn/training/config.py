"""Configuration of a training run: one frozen dataclass, YAML defaults, command-line overrides.

No torch is imported here, so ``napari-srn train --help`` and config checks stay fast.

Each field is declared once, in :class:`TrainConfig`: its default, its group and help (the
``--help`` text and the docs), the :class:`Check` its value must pass, and whether it may
change when a run is resumed, all in the field's metadata. The few rules that involve several
fields (crop sizes against the network's divisor, an odd shake size, the architecture,
resume against overwrite) are the named functions in :data:`CROSS_CHECKS`.

The defaults are the paper's recipe (Tao et al., CVPR 2018, and the authors' released code):
256 x 256 crops, batch 16, Adam with learning rate 1e-4 decayed polynomially (power 0.3) to zero
over the run, the multi-scale Euclidean loss, and the 3-scale color network. ``steps`` defaults
to 2000 epochs of GOPRO's 2,103 training pairs at batch 16 (262,875 updates); a small machine
overrides width, crop, batch and steps.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import textwrap
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from ..model.config import SRNConfig
from ..synthesis.params import MotionParams, ShakeParams

_SHAKE = ShakeParams()
_MOTION = MotionParams()

__all__ = [
    "CONFIG_FILE",
    "CROSS_CHECKS",
    "FIELD_HELP",
    "MODEL_FIELDS",
    "RUN_ONLY_FIELDS",
    "Check",
    "TrainConfig",
    "config_from_file",
    "convert_value",
    "field_help",
]

#: Name of the resolved config written into every run directory.
CONFIG_FILE = "config.yaml"

DataKind = Literal["auto", "pairs", "sharp", "zarr"]
Recurrent = Literal["none", "convlstm"]
Block = Literal["resblock", "nafblock", "gateblock"]
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

# ------------------------------------------------------------------------- field rules


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:  # a finite number (YAML's .inf and .nan are not)
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class Check:
    """The rule for one field's value: ``ok(value)``, and what to say when it is broken.

    The message is ``"<field>: <text>, got <value>"``; ``ok`` must accept values of any type
    (a config built from keywords is checked before anything converts it).
    """

    ok: Callable[[Any], bool]
    text: str

    def problem(self, name: str, value: Any) -> str | None:
        """The message for field ``name`` holding ``value``, or None when it is valid."""
        return None if self.ok(value) else f"{name}: {self.text}, got {value!r}"


def _integer(low: int, text: str) -> Check:
    return Check(lambda x: _is_int(x) and x >= low, text)


def _number(test: Callable[[float], bool], text: str) -> Check:
    return Check(lambda x: _is_num(x) and test(x), text)


def _optional(check: Check, text: str) -> Check:
    return Check(lambda x: x is None or check.ok(x), text)


def _choice(kind: Any, text: str) -> Check:
    values = typing.get_args(kind)
    return Check(lambda x: isinstance(x, str) and x in values, text)


def _text(text: str, *refused: str) -> Check:
    return Check(lambda x: isinstance(x, str) and x not in ("", *refused), text)


def _pair(low: float, high: float | None, integer: bool = False) -> Check:
    item = _is_int if integer else _is_num

    def ok(x: Any) -> bool:
        return (
            isinstance(x, tuple)
            and len(x) == 2
            and all(item(a) for a in x)
            and low <= x[0] <= x[1]
            and (high is None or x[1] <= high)
        )

    upper = "" if high is None else f" and <= {high}"
    kind = "integers" if integer else "numbers"
    return Check(ok, f"must be two {kind} (low, high) with {low} <= low <= high{upper}")


_BOOL = Check(lambda x: isinstance(x, bool), "must be true or false")
_SHAKE_SIZE = _pair(1, None, integer=True)  # also read by _shake_has_an_odd_size
_SHARE = _number(lambda x: 0 <= x <= 1, "must be in [0, 1]")
_PERIOD = _integer(0, "must be an integer >= 0 (0: only at the end)")
_AT_LEAST_ONE = _integer(1, "must be an integer >= 1")


def _field(
    default: Any, group: str, help: str, check: Check | None = None, *, run_only: bool = False
) -> Any:
    """A TrainConfig field: its default, ``--help`` group and text, check and resume rule.

    ``run_only`` fields may change when a run is resumed: they do not change what is computed.
    ``check=None`` leaves the value to a cross-field check (the architecture, the crops).
    """
    meta = {"group": group, "help": help, "check": check, "run_only": run_only}
    return dataclasses.field(default=default, metadata=meta)


# ------------------------------------------------------------------------- the config


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; every field can be set in YAML or as ``--field value``.

    Build one with keywords (``TrainConfig(data="photos/", out="runs/a", width=8)``), from a
    mapping (:meth:`from_dict`, which also converts strings) or from a YAML file plus overrides
    (:func:`config_from_file`). All invalid fields are reported in one ``ValueError``.
    See ``napari-srn train --help`` or ``docs/training.md`` for what each field means.
    """

    # -- data ----------------------------------------------------------------------------
    data: str = _field(
        "",
        "data",
        "training data: a folder of GoPro-style pairs (SEQ/blur, SEQ/sharp), a "
        "folder of sharp images (png/jpg/tif; camera shake is synthesised), or a zarr "
        "group with 'blur' and 'sharp' (or only 'sharp') arrays",
        _text("is required: a folder of pairs or of sharp images, or a zarr group"),
    )
    data_kind: DataKind = _field(
        "auto",
        "data",
        "auto (detect), pairs, sharp or zarr",
        _choice(DataKind, "must be auto, pairs, sharp or zarr"),
    )
    blur_dir: str = _field(
        "blur",
        "data",
        "name of the blurred folder (or zarr array) of a pair: blur, or GoPro's blur_gamma",
        _text("must name the blurred folder, e.g. blur or blur_gamma", "sharp"),
    )
    val_data: str | None = _field(
        None,
        "data",
        "separate validation data (same kinds as data); by default "
        "val_fraction of data is held out",
        _optional(_text(""), "must be a path or None"),
        run_only=True,
    )
    val_fraction: float = _field(
        0.1,
        "data",
        "share of data held out for validation when val_data is not "
        "given (whole sequences for pairs); never trained on",
        _number(lambda x: 0 <= x < 1, "must be a number in [0, 1)"),
    )
    val_images: int = _field(
        64,
        "data",
        "validate on at most this many held-out images (0: all)",
        _integer(0, "must be >= 0"),
        run_only=True,
    )
    val_crop: int = _field(
        512,
        "data",
        "validate on the central val_crop x val_crop of each image (0: the "
        "whole image, cut down to a multiple of the divisor)",
        run_only=True,
    )
    crop: int = _field(
        256,
        "data",
        "side of the random training crops (a multiple of the divisor: 16 for 3 scales)",
    )
    crop_tries: int = _field(
        1,
        "data",
        "draw this many random crop positions and train on the most textured one (largest "
        "mean gradient of the sharp image); 1: uniform crops, as the paper. Photos with large "
        "smooth areas (sky, bokeh) waste most uniform crops on nothing to deblur",
        _integer(1, "must be an integer >= 1 (1: uniform random crops)"),
    )
    gray_fraction: float = _field(
        0.0,
        "data",
        "share of colour training crops turned grey (luma in every channel) before blurring, "
        "so that a colour model also learns grey and microscopy images; 0: none",
        _SHARE,
    )
    augment: bool = _field(True, "data", "random flips and 90-degree rotations", _BOOL)
    reuse: int = _field(
        1,
        "data",
        "use each training pair for this many samples, 32 samples apart, each time with its "
        "own flips, rotation and grey choice, so that synthesising a pair (realistic motion "
        "blur costs 5-12x a kernel) is paid once per reuse samples; 1: every sample is new",
        Check(lambda x: _is_int(x) and 1 <= x <= 64, "must be an integer from 1 to 64"),
    )
    num_workers: int | None = _field(
        None,
        "data",
        "DataLoader worker processes (none: CPU cores - 1, at most 8; 0: "
        "load in the training process)",
        _optional(_integer(0, ""), "must be an integer >= 0 or None (automatic)"),
        run_only=True,
    )
    image_cache: int = _field(
        8,
        "data",
        "decoded images kept in memory per worker (helps small folders)",
        _integer(0, "must be >= 0"),
        run_only=True,
    )
    # -- synthetic camera shake (sharp-only data; defaults from ShakeParams) ----------------
    shake_size: tuple[int, int] = _field(
        _SHAKE.shake_size,
        "shake",
        "range of kernel sides in pixels (odd sizes drawn uniformly)",
        _SHAKE_SIZE,
    )
    shake_length: tuple[float, float] = _field(
        _SHAKE.shake_length,
        "shake",
        "range of the camera path length, as a fraction of the kernel side",
        _pair(0, None),
    )
    shakiness: tuple[float, float] = _field(
        _SHAKE.shakiness,
        "shake",
        "range of Boracchi & Foi's anxiety: 0 straight paths, 1 erratic",
        _pair(0, 1),
    )
    no_blur_fraction: float = _field(
        _SHAKE.no_blur_fraction,
        "shake",
        "share of samples left unblurred (teaches the network to leave sharp images alone)",
        _SHARE,
    )
    gamma: float = _field(
        _SHAKE.gamma,
        "shake",
        "blur in linear light: undo this gamma before blurring and re-apply "
        "it after (1: blur the stored values)",
        _number(lambda x: x > 0, "must be > 0 (1 disables it)"),
    )
    highlight_gain: tuple[float, float] = _field(
        _SHAKE.highlight_gain,
        "shake",
        "range of the gain applied in linear light to saturated "
        "pixels before blurring, so highlights streak as in real photos",
        _pair(1, None),
    )
    clip: bool = _field(
        _SHAKE.clip, "shake", "clip the blurred image to [0, 1] (saturation, as in GoPro)", _BOOL
    )
    noise: tuple[float, float] = _field(
        _SHAKE.noise,
        "shake",
        "range of the sigma of Gaussian noise added to the blurred image (values in [0, 1])",
        _pair(0, 1),
    )
    # -- realistic motion blur (sharp-only data; defaults from MotionParams) -----------------
    motion_fraction: float = _field(
        _MOTION.motion_fraction,
        "motion",
        "share of synthetic samples blurred by a moving camera and moving objects in linear "
        "light with highlights, sensor noise, 8 bits and JPEG (napari_srn.synthesis.motion) "
        "instead of one shake kernel; 0: kernels only",
        _SHARE,
    )
    motion_length: tuple[float, float] = _field(
        _MOTION.motion_length,
        "motion",
        "range of the longest blur streak in a crop, in pixels (camera motion; each moving "
        "object draws its own)",
        _pair(0, 256),
    )
    moving_objects: tuple[int, int] = _field(
        _MOTION.moving_objects,
        "motion",
        "range of the number of independently moving objects (soft-edged regions of other "
        "training photos)",
        _pair(0, 8, integer=True),
    )
    motion_highlight_gain: tuple[float, float] = _field(
        _MOTION.motion_highlight_gain,
        "motion",
        "range of the gain on saturated values in linear light (lights streak brighter)",
        _pair(1, None),
    )
    linear_light: tuple[float, float] = _field(
        _MOTION.linear_light,
        "motion",
        "range of the weight of the sRGB curve in the camera's tone curve: 1 averages the "
        "sub-frames in linear light (a real exposure), 0 averages the stored values (as "
        "GoPro's blur frames were made)",
        _pair(0, 1),
    )
    shot_noise: tuple[float, float] = _field(
        _MOTION.shot_noise,
        "motion",
        "range of the shot noise's sigma at full white, in linear light",
        _pair(0, 1),
    )
    read_noise: tuple[float, float] = _field(
        _MOTION.read_noise,
        "motion",
        "range of the read noise's sigma, in linear light",
        _pair(0, 1),
    )
    jpeg_fraction: float = _field(
        _MOTION.jpeg_fraction,
        "motion",
        "share of motion-blurred samples saved as JPEG",
        _SHARE,
    )
    jpeg_quality: tuple[int, int] = _field(
        _MOTION.jpeg_quality,
        "motion",
        "range of the JPEG quality",
        _pair(1, 100, integer=True),
    )
    # -- model (checked by SRNConfig: see _architecture) --------------------------------------
    channels: int | None = _field(
        None, "model", "1 (gray) or 3 (color); default 3, or from init_weights"
    )
    width: int | None = _field(None, "model", "channels of the first block (32 in the paper)")
    scales: int | None = _field(None, "model", "coarse-to-fine levels (3)")
    res_blocks: int | None = _field(None, "model", "ResBlocks per stage (3)")
    kernel_size: int | None = _field(None, "model", "convolution size (5)")
    recurrent: Recurrent | None = _field(
        None, "model", "none, or convlstm (the paper's scale-recurrent ConvLSTM)"
    )
    global_residual: bool | None = _field(
        None, "model", "predict a correction added to the input (not in the paper)"
    )
    block: Block | None = _field(
        None,
        "model",
        "stage blocks: resblock (the paper's), nafblock (NAFNet-style, cheaper) or gateblock "
        "(LayerNorm and SimpleGate around dense convolutions)",
    )
    init_weights: str | None = _field(
        None,
        "model",
        "fine-tune from these weights (a bundled name or a "
        ".safetensors file); the architecture comes from them",
        _optional(_text(""), "must be a bundled model name, a .safetensors path, or None"),
    )
    # -- optimisation --------------------------------------------------------------------
    steps: int = _field(
        262_875,
        "optim",
        "optimizer updates in the run (the learning rate reaches 0 at the "
        "end); the default is 2000 GoPro epochs at batch 16",
        _AT_LEAST_ONE,
    )
    batch_size: int = _field(16, "optim", "crops per update", _AT_LEAST_ONE)
    lr: float = _field(
        1e-4, "optim", "initial Adam learning rate", _number(lambda x: x > 0, "must be > 0")
    )
    loss: Loss = _field(
        "mse",
        "optim",
        "per-scale loss: mse (the paper), l1, or l1+fft (L1 plus 0.1 x L1 of the Fourier "
        "transforms, after MIMO-UNet)",
        _choice(Loss, "must be mse, l1 or l1+fft"),
    )
    lr_power: float = _field(
        0.3,
        "optim",
        "power of the polynomial decay to zero",
        _number(lambda x: x >= 0, "must be >= 0"),
    )
    clip_grad_norm: float | None = _field(
        None,
        "optim",
        "clip the gradient's global norm (the authors clip the ConvLSTM's at 3)",
        _optional(_number(lambda x: x > 0, ""), "must be > 0 or None"),
    )
    ema_decay: float | None = _field(
        None,
        "optim",
        "keep an exponential moving average of the weights with this decay (e.g. 0.999) and "
        "validate, export and ship it instead of the raw weights; it does not change the "
        "training itself, so it may be switched on when a run is resumed",
        _optional(
            _number(lambda x: 0 < x < 1, ""),
            "must be between 0 and 1 (e.g. 0.999), or None for no average",
        ),
        run_only=True,
    )
    seed: int = _field(
        0,
        "optim",
        "seed of the initial weights, data order, crops, augmentation, "
        "kernels and validation split",
        _integer(0, "must be an integer >= 0"),
    )
    # -- run -----------------------------------------------------------------------------
    out: str = _field(
        "runs/srn",
        "run",
        "run directory: config, checkpoint, logs, plot, final model.safetensors",
        _text("must be a directory path"),
    )
    resume: bool = _field(
        False, "run", "continue the run in out from its checkpoint, exactly", _BOOL, run_only=True
    )
    overwrite: bool = _field(
        False,
        "run",
        "start again in an existing run directory, deleting its checkpoint, logs and model",
        _BOOL,
        run_only=True,
    )
    device: str | None = _field(
        None,
        "run",
        "cpu, cuda, cuda:N (default: CUDA if available, else CPU)",
        Check(lambda x: x is None or isinstance(x, str), "must be cpu, cuda, cuda:N or None"),
        run_only=True,
    )
    amp: bool = _field(
        True,
        "run",
        "mixed precision (autocast): amp_dtype on CUDA, bfloat16 on a CPU with native "
        "bfloat16 (AVX512-BF16 or AMX), float32 elsewhere",
        _BOOL,
    )
    amp_dtype: AmpDtype = _field(
        "bfloat16",
        "run",
        "bfloat16, or float16 (with loss scaling; CUDA only), for amp",
        _choice(AmpDtype, "must be bfloat16 or float16"),
    )
    val_every: int = _field(
        2000, "run", "validate every this many steps (0: only at the end)", _PERIOD, run_only=True
    )
    checkpoint_every: int = _field(
        1000,
        "run",
        "write the resume checkpoint every this many steps (0: only at the end)",
        _PERIOD,
        run_only=True,
    )
    log_every: int = _field(
        10, "run", "write a row of train.csv every this many steps", _AT_LEAST_ONE, run_only=True
    )
    progress: bool = _field(
        True, "run", "show a progress bar (steps/s, ETA) on stderr", _BOOL, run_only=True
    )
    name: str | None = _field(
        None,
        "run",
        "model card name (default: the run directory's name)",
        _optional(_text(""), "must be a non-empty string or None"),
        run_only=True,
    )
    description: str = _field(
        "",
        "run",
        "model card description",
        Check(lambda x: isinstance(x, str), "must be a string"),
        run_only=True,
    )
    provisional: bool = _field(
        False, "run", "mark the model card provisional (not for real use)", _BOOL, run_only=True
    )
    half: bool = _field(
        False, "run", "save the final weights as float16 (half the size)", _BOOL, run_only=True
    )

    def __post_init__(self) -> None:
        problems = _problems({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if problems:
            raise ValueError(_message(problems))

    # -- derived ----------------------------------------------------------------------------
    def model_config(self, base: SRNConfig | None = None) -> SRNConfig:
        """The architecture: the fields that are set, the rest from ``base`` (or defaults).

        Parameters
        ----------
        base : SRNConfig, optional
            Where the unset architecture fields come from (e.g. ``init_weights``' config).

        Returns
        -------
        SRNConfig
            The network this run trains.
        """
        values = (base or SRNConfig()).to_dict()
        values.update({k: getattr(self, k) for k in MODEL_FIELDS if getattr(self, k) is not None})
        return SRNConfig.from_dict(values)

    @property
    def divisor(self) -> int:
        """What the crop sides must be a multiple of (the coarsest scale's stride)."""
        return _divisor(self.scales)

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain types (tuples become lists), ready for YAML or JSON.

        Returns
        -------
        dict
            ``{field: value}`` in declaration order.
        """
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (and checked).

        Parameters
        ----------
        **changes
            New values of fields, by name.

        Returns
        -------
        TrainConfig
            The new config; ValueError lists every invalid field.
        """
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from a mapping, converting strings to each field's type.

        Parameters
        ----------
        data : dict
            ``{field: value}``; values may be strings (from YAML or the command line).

        Returns
        -------
        TrainConfig
            The config. Unknown keys and invalid values are all reported in one
            ``ValueError``.
        """
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


def _type_text(hint: Any) -> str:
    """A type as numpydoc writes it: ``{'a', 'b'}``, ``(int, int)``, ``float or None``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "{" + ", ".join(repr(a) for a in args) + "}"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args if a is not type(None)) + " or None"
    if origin is tuple:
        return "(" + ", ".join(_type_text(a) for a in args) + ")"
    return getattr(hint, "__name__", str(hint))


def _parameters_section() -> str:
    """TrainConfig's Parameters section, written from each field's metadata."""
    lines, hints = ["", "", "Parameters", "----------"], _hints()
    for f in dataclasses.fields(TrainConfig):
        lines.append(f"{f.name} : {_type_text(hints[f.name])}, optional")
        text = f"Default ``{f.default!r}``; {f.metadata['help']}."
        lines += textwrap.wrap(text, 88, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)


#: ``field: (group, help)`` for every TrainConfig field (the --help text and the docs).
FIELD_HELP: dict[str, tuple[str, str]] = {
    f.name: (f.metadata["group"], f.metadata["help"]) for f in dataclasses.fields(TrainConfig)
}

#: Fields that may change when a run is resumed: they do not change what is computed.
RUN_ONLY_FIELDS = frozenset(
    f.name for f in dataclasses.fields(TrainConfig) if f.metadata["run_only"]
)

# ------------------------------------------------------------------ cross-field checks


def _divisor(scales: Any) -> int:
    if scales is None:
        scales = SRNConfig().scales
    return 4 * 2 ** (scales - 1) if _is_int(scales) and 1 <= scales <= 6 else 16


def _crops_suit_the_network(v: dict[str, Any]) -> list[str]:
    """Training and validation crops are multiples of the network's divisor."""
    out = []
    divisor = _divisor(v["scales"])
    val_crop, crop = v["val_crop"], v["crop"]
    if not (_is_int(val_crop) and val_crop >= 0 and val_crop % divisor == 0):
        out.append(f"val_crop: must be 0 or a positive multiple of {divisor}, got {val_crop!r}")
    if not (_is_int(crop) and crop >= divisor and crop % divisor == 0):
        low = max(divisor, crop // divisor * divisor) if _is_int(crop) else 256
        out.append(
            f"crop: must be a positive multiple of {divisor} (the network's divisor), "
            f"got {crop!r}; try {low} or {low + divisor}"
        )
    return out


def _shake_has_an_odd_size(v: dict[str, Any]) -> list[str]:
    """Kernels have odd sides: a range of sizes must contain one."""
    low, high = v["shake_size"] if _SHAKE_SIZE.ok(v["shake_size"]) else (1, 1)
    if low % 2 == 0 and low == high:
        return [f"shake_size: must contain an odd size, got {v['shake_size']!r}"]
    return []


#: Upper limits of the fields whose size drives memory (or processes), far above any sensible
#: run (the paper: width 32, 3 blocks, batch 16, 256 px crops): a few hundred bytes of YAML
#: must never ask for gigabytes. A pair's limit is on its high end.
LIMITS: dict[str, int] = {
    "width": 256,
    "res_blocks": 64,
    "kernel_size": 31,
    "batch_size": 1024,
    "crop": 4096,
    "val_crop": 8192,
    "num_workers": 64,
    "image_cache": 4096,
    "shake_size": 511,
    "moving_objects": 64,
}
#: The most pixels in one batch (``batch_size x crop x crop``): 16 crops of 4096 x 4096.
MAX_BATCH_PIXELS = 2**28


def _beyond(name: str, value: Any) -> bool:
    """Whether ``value`` (a number, or a pair's high end) exceeds ``LIMITS[name]``."""
    high = value[-1] if isinstance(value, tuple) and value else value
    return _is_num(high) and high > LIMITS[name]


def _within_limits(v: dict[str, Any]) -> list[str]:
    """The fields that size memory stay under :data:`LIMITS` (checked before anything is
    allocated), and a batch under :data:`MAX_BATCH_PIXELS`."""
    out = [
        f"{name}: must be at most {limit} (more would not fit in memory), got {v[name]!r}"
        for name, limit in LIMITS.items()
        if _beyond(name, v[name])
    ]
    batch, crop = v["batch_size"], v["crop"]
    if _is_int(batch) and _is_int(crop) and batch * crop * crop > MAX_BATCH_PIXELS:
        out.append(
            f"batch_size x crop x crop: must be at most {MAX_BATCH_PIXELS} pixels per batch "
            f"(16 crops of 4096 x 4096), got {batch} x {crop} x {crop}"
        )
    return out


def _architecture(v: dict[str, Any]) -> list[str]:
    """The model fields that are set pass SRNConfig's own checks (one message per field;
    those beyond :data:`LIMITS` are reported there)."""
    try:
        SRNConfig(
            **{
                k: v[k]
                for k in MODEL_FIELDS
                if v[k] is not None and not (k in LIMITS and _beyond(k, v[k]))
            }
        )
    except ValueError as err:
        lines = [line.strip(" -") for line in str(err).splitlines()[1:]]
        return [f"{text.split(' ')[0]}: {text}" for text in lines]
    return []


def _resume_or_overwrite(v: dict[str, Any]) -> list[str]:
    """A run is either continued or started again, not both."""
    if v["resume"] is True and v["overwrite"] is True:
        return [
            "resume: resume and overwrite exclude each other (resume continues the "
            "run in out, overwrite starts it again), got both"
        ]
    return []


#: The rules that involve several fields, run after each field's own check.
CROSS_CHECKS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    _crops_suit_the_network,
    _shake_has_an_odd_size,
    _within_limits,
    _architecture,
    _resume_or_overwrite,
)


def _problems(v: dict[str, Any]) -> list[str]:
    """Every invalid field of ``v`` (of the right types, or wrong ones) as messages."""
    out = []
    for f in dataclasses.fields(TrainConfig):
        check: Check | None = f.metadata["check"]
        problem = check.problem(f.name, v[f.name]) if check is not None else None
        if problem is not None:
            out.append(problem)
    for rule in CROSS_CHECKS:
        out += rule(v)
    return out


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


TrainConfig.__doc__ = inspect.cleandoc(TrainConfig.__doc__ or "") + _parameters_section()


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


def config_from_file(
    path: str | os.PathLike | None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read a YAML config (a mapping of field: value) and apply ``overrides`` on top.

    Unknown keys and invalid values in the file and the overrides are reported together.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {str(p)!r} does not exist")
        loaded = _read_yaml(p)
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


#: A config file is a few hundred bytes: larger ones are refused unread.
MAX_CONFIG_BYTES = 1 << 20
#: Values a config file may hold once its YAML aliases are expanded (a config has about 80).
MAX_YAML_VALUES = 10_000


def _read_yaml(p: Path) -> Any:
    """``yaml.safe_load`` of a config file, refused (ValueError) before anything is built when
    it is over :data:`MAX_CONFIG_BYTES`, nested too deeply, or its anchors and aliases expand
    to more than :data:`MAX_YAML_VALUES` values ("billion laughs", a recursive alias)."""
    import yaml

    with p.open("rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValueError(f"config file {str(p)!r} is larger than 1 MiB; is it a config?")
    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded(node, {}, set()) > MAX_YAML_VALUES:
            raise ValueError(
                f"config file {str(p)!r} expands to more than {MAX_YAML_VALUES} values through "
                "its YAML anchors and aliases; write the fields out"
            )
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ValueError(f"config file {str(p)!r} is not valid YAML: {err}") from err
    except RecursionError:
        raise ValueError(f"config file {str(p)!r} is nested too deeply") from None
    finally:
        loader.dispose()


def _expanded(node: Any, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values YAML ``node`` holds with every alias expanded (each shared node is
    counted once per use, computed once); a node inside itself (a recursive alias) expands
    without end: over the limit."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        return MAX_YAML_VALUES + 1
    open_.add(key)
    children = node.value if isinstance(node.value, list) else []
    items = [c for pair in children for c in (pair if isinstance(pair, tuple) else (pair,))]
    sizes[key] = 1 + sum(_expanded(c, sizes, open_) for c in items)
    open_.discard(key)
    return sizes[key]


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
