"""The configuration of a training run: :class:`TrainConfig`, one frozen dataclass, read from
YAML defaults with command-line overrides (:func:`config_from_file`).

No torch is imported here, so ``napari-srn train --help`` and config checks stay fast.

Each field is declared once, in :class:`TrainConfig`: its default, its group and help (the
``--help`` text and the docs), the :class:`~.config_checks.Check` its value must pass, and
whether it may change when a run is resumed, all in the field's metadata. The few rules that
involve several fields (crop sizes against the network's divisor, an odd shake size, the
architecture, resume against overwrite) are the named functions in
:data:`~.config_checks.CROSS_CHECKS`. Around this module: :mod:`.config_checks` (the checks),
:mod:`.config_types` (strings to field types) and :mod:`.config_file` (the YAML file).

The defaults are the paper's recipe (Tao et al., CVPR 2018, and the authors' released code):
256 x 256 crops, batch 16, Adam with learning rate 1e-4 decayed polynomially (power 0.3) to zero
over the run, the multi-scale Euclidean loss, and the 3-scale color network. ``steps`` defaults
to 2000 epochs of GOPRO's 2,103 training pairs at batch 16 (262,875 updates); a small machine
overrides width, crop, batch and steps.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import typing
from dataclasses import dataclass
from typing import Any, Literal

from ..model.config import SRNConfig
from ..synthesis.params import MotionParams, ShakeParams
from .config_checks import (
    AT_LEAST_ONE,
    BOOL,
    MODEL_FIELDS,
    PERIOD,
    SHAKE_SIZE,
    SHARE,
    Check,
    check_fields,
    choice,
    divisor_for,
    integer,
    number,
    optional,
    pair,
    string,
)
from .config_file import read_config_mapping
from .config_types import convert_fields, parameters_section

_SHAKE = ShakeParams()
_MOTION = MotionParams()

__all__ = [
    "CONFIG_FILE",
    "FIELD_HELP",
    "MODEL_FIELDS",
    "RUN_ONLY_FIELDS",
    "TrainConfig",
    "config_from_file",
    "field_help",
]

#: Name of the resolved config written into every run directory.
CONFIG_FILE = "config.yaml"

DataKind = Literal["auto", "pairs", "sharp", "zarr"]
Recurrent = Literal["none", "convlstm"]
Block = Literal["resblock", "nafblock", "gateblock"]
Pyramid = Literal["bilinear", "area"]
AmpDtype = Literal["bfloat16", "float16"]
Loss = Literal["mse", "l1", "l1+fft"]


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
        string("is required: a folder of pairs or of sharp images, or a zarr group"),
    )
    data_kind: DataKind = _field(
        "auto",
        "data",
        "auto (detect), pairs, sharp or zarr",
        choice(DataKind, "must be auto, pairs, sharp or zarr"),
    )
    blur_dir: str = _field(
        "blur",
        "data",
        "name of the blurred folder (or zarr array) of a pair: blur, or GoPro's blur_gamma",
        string("must name the blurred folder, e.g. blur or blur_gamma", "sharp"),
    )
    val_data: str | None = _field(
        None,
        "data",
        "separate validation data (same kinds as data); by default "
        "val_fraction of data is held out",
        optional(string(""), "must be a path or None"),
        run_only=True,
    )
    val_fraction: float = _field(
        0.1,
        "data",
        "share of data held out for validation when val_data is not "
        "given (whole sequences for pairs); never trained on",
        number(lambda x: 0 <= x < 1, "must be a number in [0, 1)"),
    )
    val_images: int = _field(
        64,
        "data",
        "validate on at most this many held-out images (0: all)",
        integer(0, "must be >= 0"),
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
        integer(1, "must be an integer >= 1 (1: uniform random crops)"),
    )
    gray_fraction: float = _field(
        0.0,
        "data",
        "share of colour training crops turned grey (luma in every channel) before blurring, "
        "so that a colour model also learns grey and microscopy images; 0: none",
        SHARE,
    )
    augment: bool = _field(True, "data", "random flips and 90-degree rotations", BOOL)
    reuse: int = _field(
        1,
        "data",
        "use each training pair for this many samples, 32 samples apart, each time with its "
        "own flips, rotation and grey choice, so that synthesising a pair (realistic motion "
        "blur costs 5-12x a kernel) is paid once per reuse samples; 1: every sample is new",
        integer(1, "must be an integer from 1 to 64", high=64),
    )
    num_workers: int | None = _field(
        None,
        "data",
        "DataLoader worker processes (none: CPU cores - 1, at most 8; 0: "
        "load in the training process)",
        optional(integer(0, ""), "must be an integer >= 0 or None (automatic)"),
        run_only=True,
    )
    image_cache: int = _field(
        8,
        "data",
        "decoded images kept in memory per worker (helps small folders)",
        integer(0, "must be >= 0"),
        run_only=True,
    )
    # -- synthetic camera shake (sharp-only data; defaults from ShakeParams) ----------------
    shake_size: tuple[int, int] = _field(
        _SHAKE.shake_size,
        "shake",
        "range of kernel sides in pixels (odd sizes drawn uniformly)",
        SHAKE_SIZE,
    )
    shake_length: tuple[float, float] = _field(
        _SHAKE.shake_length,
        "shake",
        "range of the camera path length, as a fraction of the kernel side",
        pair(0, None),
    )
    shakiness: tuple[float, float] = _field(
        _SHAKE.shakiness,
        "shake",
        "range of Boracchi & Foi's anxiety: 0 straight paths, 1 erratic",
        pair(0, 1),
    )
    no_blur_fraction: float = _field(
        _SHAKE.no_blur_fraction,
        "shake",
        "share of samples left unblurred (teaches the network to leave sharp images alone)",
        SHARE,
    )
    gamma: float = _field(
        _SHAKE.gamma,
        "shake",
        "blur in linear light: undo this gamma before blurring and re-apply "
        "it after (1: blur the stored values)",
        number(lambda x: x > 0, "must be > 0 (1 disables it)"),
    )
    highlight_gain: tuple[float, float] = _field(
        _SHAKE.highlight_gain,
        "shake",
        "range of the gain applied in linear light to saturated "
        "pixels before blurring, so highlights streak as in real photos",
        pair(1, None),
    )
    clip: bool = _field(
        _SHAKE.clip, "shake", "clip the blurred image to [0, 1] (saturation, as in GoPro)", BOOL
    )
    noise: tuple[float, float] = _field(
        _SHAKE.noise,
        "shake",
        "range of the sigma of Gaussian noise added to the blurred image (values in [0, 1])",
        pair(0, 1),
    )
    # -- realistic motion blur (sharp-only data; defaults from MotionParams) -----------------
    motion_fraction: float = _field(
        _MOTION.motion_fraction,
        "motion",
        "share of synthetic samples blurred by a moving camera and moving objects in linear "
        "light with highlights, sensor noise, 8 bits and JPEG (napari_srn.synthesis.motion) "
        "instead of one shake kernel; 0: kernels only",
        SHARE,
    )
    motion_length: tuple[float, float] = _field(
        _MOTION.motion_length,
        "motion",
        "range of the longest blur streak in a crop, in pixels (camera motion; each moving "
        "object draws its own)",
        pair(0, 256),
    )
    moving_objects: tuple[int, int] = _field(
        _MOTION.moving_objects,
        "motion",
        "range of the number of independently moving objects (soft-edged regions of other "
        "training photos)",
        pair(0, 8, integer=True),
    )
    motion_highlight_gain: tuple[float, float] = _field(
        _MOTION.motion_highlight_gain,
        "motion",
        "range of the gain on saturated values in linear light (lights streak brighter)",
        pair(1, None),
    )
    linear_light: tuple[float, float] = _field(
        _MOTION.linear_light,
        "motion",
        "range of the weight of the sRGB curve in the camera's tone curve: 1 averages the "
        "sub-frames in linear light (a real exposure), 0 averages the stored values (as "
        "GoPro's blur frames were made)",
        pair(0, 1),
    )
    shot_noise: tuple[float, float] = _field(
        _MOTION.shot_noise,
        "motion",
        "range of the shot noise's sigma at full white, in linear light",
        pair(0, 1),
    )
    read_noise: tuple[float, float] = _field(
        _MOTION.read_noise,
        "motion",
        "range of the read noise's sigma, in linear light",
        pair(0, 1),
    )
    jpeg_fraction: float = _field(
        _MOTION.jpeg_fraction,
        "motion",
        "share of motion-blurred samples saved as JPEG",
        SHARE,
    )
    jpeg_quality: tuple[int, int] = _field(
        _MOTION.jpeg_quality,
        "motion",
        "range of the JPEG quality",
        pair(1, 100, integer=True),
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
    up_slope: float | None = _field(
        None,
        "model",
        "negative slope after the decoder's upsamplings: 0, the paper's ReLU, or a LeakyReLU's "
        "(0.01 keeps a stage from dying; not in the paper)",
    )
    pyramid: Pyramid | None = _field(
        None,
        "model",
        "how the input shrinks to the coarser scales: bilinear (the authors' code, aliased "
        "from 1/4 on) or area (the mean of the pixels covered; not in the paper)",
    )
    init_weights: str | None = _field(
        None,
        "model",
        "fine-tune from these weights (a bundled name or a "
        ".safetensors file); the architecture comes from them",
        optional(string(""), "must be a bundled model name, a .safetensors path, or None"),
    )
    # -- optimisation --------------------------------------------------------------------
    steps: int = _field(
        262_875,
        "optim",
        "optimizer updates in the run (the learning rate reaches 0 at the "
        "end); the default is 2000 GoPro epochs at batch 16",
        AT_LEAST_ONE,
    )
    batch_size: int = _field(16, "optim", "crops per update", AT_LEAST_ONE)
    lr: float = _field(
        1e-4, "optim", "initial Adam learning rate", number(lambda x: x > 0, "must be > 0")
    )
    loss: Loss = _field(
        "mse",
        "optim",
        "per-scale loss: mse (the paper), l1, or l1+fft (L1 plus 0.1 x L1 of the Fourier "
        "transforms, after MIMO-UNet)",
        choice(Loss, "must be mse, l1 or l1+fft"),
    )
    lr_power: float = _field(
        0.3,
        "optim",
        "power of the polynomial decay to zero",
        number(lambda x: x >= 0, "must be >= 0"),
    )
    clip_grad_norm: float | None = _field(
        None,
        "optim",
        "clip the gradient's global norm (the authors clip the ConvLSTM's at 3)",
        optional(number(lambda x: x > 0, ""), "must be > 0 or None"),
    )
    ema_decay: float | None = _field(
        None,
        "optim",
        "keep an exponential moving average of the weights with this decay (e.g. 0.999) and "
        "validate, export and ship it instead of the raw weights; it does not change the "
        "training itself, so it may be switched on when a run is resumed",
        optional(
            number(lambda x: 0 < x < 1, ""),
            "must be between 0 and 1 (e.g. 0.999), or None for no average",
        ),
        run_only=True,
    )
    seed: int = _field(
        0,
        "optim",
        "seed of the initial weights, data order, crops, augmentation, "
        "kernels and validation split",
        integer(0, "must be an integer >= 0"),
    )
    # -- run -----------------------------------------------------------------------------
    out: str = _field(
        "runs/srn",
        "run",
        "run directory: config, checkpoint, logs, plot, final model.safetensors",
        string("must be a directory path"),
    )
    resume: bool = _field(
        False, "run", "continue the run in out from its checkpoint, exactly", BOOL, run_only=True
    )
    overwrite: bool = _field(
        False,
        "run",
        "start again in an existing run directory, deleting its checkpoint, logs and model",
        BOOL,
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
        BOOL,
    )
    amp_dtype: AmpDtype = _field(
        "bfloat16",
        "run",
        "bfloat16, or float16 (with loss scaling; CUDA only), for amp",
        choice(AmpDtype, "must be bfloat16 or float16"),
    )
    val_every: int = _field(
        2000, "run", "validate every this many steps (0: only at the end)", PERIOD, run_only=True
    )
    checkpoint_every: int = _field(
        1000,
        "run",
        "write the resume checkpoint every this many steps (0: only at the end)",
        PERIOD,
        run_only=True,
    )
    log_every: int = _field(
        10, "run", "write a row of train.csv every this many steps", AT_LEAST_ONE, run_only=True
    )
    progress: bool = _field(
        True, "run", "show a progress bar (steps/s, ETA) on stderr", BOOL, run_only=True
    )
    name: str | None = _field(
        None,
        "run",
        "model card name (default: the run directory's name)",
        optional(string(""), "must be a non-empty string or None"),
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
        False, "run", "mark the model card provisional (not for real use)", BOOL, run_only=True
    )
    half: bool = _field(
        False, "run", "save the final weights as float16 (half the size)", BOOL, run_only=True
    )

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        problems = check_fields(dataclasses.fields(self), values)
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
        return divisor_for(self.scales)

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
        values, problems = convert_fields(data, _hints())
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        problems += [
            p
            for p in check_fields(dataclasses.fields(cls), {**defaults, **values})
            if p.split(":")[0] not in {q.split(":")[0] for q in problems}
        ]
        if problems:
            raise ValueError(_message(problems))
        return cls(**values)


#: ``field: (group, help)`` for every TrainConfig field (the --help text and the docs).
FIELD_HELP: dict[str, tuple[str, str]] = {
    f.name: (f.metadata["group"], f.metadata["help"]) for f in dataclasses.fields(TrainConfig)
}

#: Fields that may change when a run is resumed: they do not change what is computed.
RUN_ONLY_FIELDS = frozenset(
    f.name for f in dataclasses.fields(TrainConfig) if f.metadata["run_only"]
)


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


TrainConfig.__doc__ = inspect.cleandoc(TrainConfig.__doc__ or "") + parameters_section(
    TrainConfig, _hints()
)


def config_from_file(
    path: str | os.PathLike | None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read a YAML config (a mapping of field: value) and apply ``overrides`` on top.

    Unknown keys and invalid values in the file and the overrides are reported together.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data.update(read_config_mapping(path))
    data.update(overrides or {})
    return TrainConfig.from_dict(data)
