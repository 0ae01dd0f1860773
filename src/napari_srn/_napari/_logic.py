"""What the Deblur (SRN) widget decides, without napari, Qt or torch.

Everything here takes plain values (or any object with a napari layer's attributes) and is
tested without a viewer: which layers are accepted, compute-now or lazy, the intensity range of
lazy input, the keyword arguments for the library, the result layer's name and transform, the
model card shown in the widget, and the remembered settings.

Decisions (documented in ``docs/napari.md``):

* **Mode** ``auto`` deblurs a single in-memory image now (in a worker thread, with progress and
  Cancel) and everything else lazily: stacks (any leading T/Z axes), dask- or zarr-backed
  layers and multiscale layers get a dask-backed result whose frames are deblurred when viewed.
* **Multiscale** layers: lazily, each level is deblurred at its own resolution with one shared
  intensity range (the full-resolution level, seen when zoomed in, is exactly ``deblur`` of
  level 0; coarser levels are an overview). Compute now and Save to OME-Zarr use the
  full-resolution level only.
* **Intensity range** of lazy (and saved) input: uint8 maps 0..255 and an in-memory array its
  own min..max, as in ``deblur``. For other dtypes backed by dask or zarr (or multiscale), a
  min/max pass would read the whole stack, so the layer's contrast limits are used (napari sets
  them from the first frame viewed; widen them first to keep brighter values, which are
  otherwise clipped); float limits inside [0, 1] use 0..1.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..io.zarr import backing
from ..model import registry
from ..model.config import SRNConfig

__all__ = [
    "DEVICES",
    "INTENSITY",
    "MODES",
    "SAMPLE_FRAMES",
    "SETTINGS_ENV",
    "WEIGHTS_FILE",
    "LayerInfo",
    "Plan",
    "Settings",
    "bundled_models",
    "check_axes",
    "check_layer",
    "check_tile",
    "computing_line",
    "deblur_kwargs",
    "decide",
    "describe",
    "describe_model",
    "guess_axes",
    "gui_words",
    "layer_info",
    "load_settings",
    "make_plan",
    "model_choices",
    "move_axis",
    "quality_line",
    "read_card",
    "result_layer_kwargs",
    "save_settings",
    "settings_path",
    "tile_step",
    "usable_devices",
    "worth_showing",
    "zarr_axes",
]

MODES = ("auto", "compute now", "lazy")
#: How intensities map to the model's 0..1: "auto" (uint8 0..255; an in-memory array's own
#: min..max; for lazy dask/zarr data, the min..max of SAMPLE_FRAMES frames spread over it),
#: the layer's contrast limits (set them in napari's layer controls to give your own), or the
#: data type's full range.
INTENSITY = ("auto", "contrast limits", "data type range")
SAMPLE_FRAMES = 8
DEVICES = ("auto", "cpu", "cuda")
#: napari_srn.inference.precision.PRECISIONS, spelled out here so the widget imports no torch
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: The model choice that enables the weights-file picker.
WEIGHTS_FILE = "weights file..."
#: Environment variable naming the settings file (tests point it into a temporary folder).
SETTINGS_ENV = "NAPARI_SRN_SETTINGS"


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class LayerInfo:
    """What the widget needs to know about a layer (taken from its attributes)."""

    name: str
    kind: str  # "image", or the lower-case layer class name ("labels", "points", ...)
    shape: tuple[int, ...]  # of the full-resolution level
    dtype: np.dtype
    rgb: bool = False
    multiscale: bool = False
    n_levels: int = 1
    backing: str = "numpy"  # "numpy", "dask", "zarr" or "other" (of the full-resolution level)
    contrast_limits: tuple[float, float] = (0.0, 1.0)

    @property
    def frames(self) -> int:
        """Number of 2-D (gray or colour) frames: the product of the leading axes."""
        return math.prod(self.shape[: -3 if self.rgb else -2])


def layer_info(layer: Any) -> LayerInfo:
    """Read a :class:`LayerInfo` from a napari layer (or any object with the same attributes)."""
    cls = layer.__class__  # not type(): napari hands plugins proxies of its layers
    is_image = any(c.__name__ == "Image" for c in cls.__mro__)
    multiscale = bool(getattr(layer, "multiscale", False))
    data = layer.data
    level0 = data[0] if multiscale else data
    held_by = backing(level0)
    limits = getattr(layer, "contrast_limits", None) or (0.0, 1.0)
    return LayerInfo(
        name=str(layer.name),
        kind="image" if is_image else cls.__name__.lower(),
        shape=tuple(int(n) for n in np.shape(level0)),
        dtype=np.dtype(getattr(level0, "dtype", np.float64)),
        rgb=bool(getattr(layer, "rgb", False)),
        multiscale=multiscale,
        n_levels=len(data) if multiscale else 1,
        backing=held_by,
        contrast_limits=(float(limits[0]), float(limits[1])),
    )


def check_layer(info: LayerInfo) -> None:
    """Raise ValueError with a message for the user if ``info`` is not a layer to deblur."""
    if info.kind != "image":
        article = "an" if info.kind[:1] in "aeiou" else "a"
        raise ValueError(
            f"{info.name!r} is {article} {info.kind.capitalize()} layer; Deblur (SRN) works on "
            "Image layers (gray, RGB, or stacks of them). Choose an image layer"
        )
    if info.dtype.kind not in "uif":
        raise ValueError(
            f"{info.name!r} has dtype {info.dtype}; Deblur (SRN) needs an integer or "
            "floating-point image (uint8, uint16, float32, ...)"
        )


# --------------------------------------------------------------------------- settings


#: Settings not remembered between sessions: the mode is a choice for the data at hand (a
#: remembered "lazy" would run the next session's single image lazily, issue 22).
NOT_REMEMBERED = ("mode",)


@dataclass
class Settings:
    """The widget's choices; all but :data:`NOT_REMEMBERED` (the mode) are remembered between
    sessions (the output path is not a setting)."""

    model: str = "default"  # a bundled model name, or WEIGHTS_FILE
    weights: str = ""  # the .safetensors file used when model == WEIGHTS_FILE
    device: str = "auto"
    tile_size: int = 0  # 0: automatic
    mode: str = "auto"
    precision: str = "auto"
    intensity: str = "auto"  # one of INTENSITY

    @classmethod
    def from_dict(cls, data: Any) -> Settings:
        """Remembered settings from a decoded JSON object; unknown keys, invalid values and
        :data:`NOT_REMEMBERED` ones (an older file's mode) are dropped."""
        out = cls()
        if not isinstance(data, dict):
            return out
        valid = {
            "model": lambda v: isinstance(v, str) and v != "",
            "weights": lambda v: isinstance(v, str),
            "device": lambda v: v in DEVICES,
            "tile_size": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "precision": lambda v: v in PRECISIONS,
            "intensity": lambda v: v in INTENSITY,
        }
        for name, ok in valid.items():
            if name in data and ok(data[name]):
                setattr(out, name, data[name])
        return out


def settings_path() -> Path:
    """``$NAPARI_SRN_SETTINGS`` if set, else ``widget.json`` in napari-srn's user config dir."""
    if os.environ.get(SETTINGS_ENV):
        return Path(os.environ[SETTINGS_ENV]).expanduser()
    try:
        from platformdirs import user_config_dir  # a napari dependency
    except ImportError:  # pragma: no cover - napari always brings platformdirs
        return Path.home() / ".config" / "napari-srn" / "widget.json"
    return Path(user_config_dir("napari-srn", appauthor=False)) / "widget.json"


def load_settings(path: Path | None = None) -> Settings:
    """The remembered settings, or the defaults if there are none or the file is unreadable."""
    path = settings_path() if path is None else path
    try:
        return Settings.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return Settings()


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write ``settings`` as JSON (atomically: a temporary file, then a rename)."""
    path = settings_path() if path is None else path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    kept = {k: v for k, v in asdict(settings).items() if k not in NOT_REMEMBERED}
    tmp.write_text(json.dumps(kept, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- models


def _registry() -> dict[str, Any]:
    return registry.registry()


def model_choices() -> list[tuple[str, str]]:
    """The widget's model list as (label, value): each bundled file once (the default named
    as such, not also under its own name), then the weights-file picker."""
    reg = _registry()
    default = reg["default"]
    others = [(name, name) for name in sorted(reg["models"]) if name != default]
    return [(f"{default} (default)", "default"), *others, (WEIGHTS_FILE, WEIGHTS_FILE)]


def usable_devices() -> tuple[str, ...]:
    """The devices worth offering, found without importing torch: ``cuda`` only where the
    installed torch is not a CPU-only build and an NVIDIA driver is present."""
    from importlib import metadata

    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        version = "+cpu"
    driver = Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")
    return DEVICES if driver and "+cpu" not in version else ("auto", "cpu")


def bundled_models() -> list[str]:
    """Names of the bundled models, ``"default"`` first (as ``napari_srn.list_models()``,
    read from the registry without importing torch)."""
    return registry.list_models()


def read_card(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The model card of a bundled model or a napari-srn ``.safetensors`` file, from the file's
    JSON header (no torch, no tensors): the widget shows what a model is before loading it."""
    return registry.read_card(name_or_path)


def describe_model(name_or_path: str | os.PathLike) -> tuple[str, str, bool]:
    """``(short, full, provisional)`` texts for the widget's model label and its tooltip.

    The full text is the model card's name and description; the short one fits a dock widget
    and, for a provisional model, says so first. An unreadable file is described, not raised
    (the run itself reports the error).
    """
    if str(name_or_path) in ("", "."):
        text = "Choose a napari-srn .safetensors weights file."
        return text, text, False
    try:
        card = read_card(name_or_path)
    except (OSError, ValueError) as err:
        text = f"Cannot read the model: {err}"
        return text, text, False
    provisional = bool(card.get("provisional", False))
    name = card.get("name") or Path(str(name_or_path)).stem
    full = f"{name}: {card.get('description', '').strip()}"
    if provisional:
        short = (
            f"{name}: PROVISIONAL, not trained weights; do not trust its output (details: hover)"
        )
    else:
        short = quality_line(card) or (full if len(full) <= 120 else full[:119].rstrip() + "…")
    return short, full, provisional


def quality_line(card: dict[str, Any]) -> str:
    """The model's measured quality in one plain line ("" when its card has no benchmark)."""
    bench = (card.get("metrics") or {}).get("benchmark") or {}
    gain = bench.get("gain_over_input_db")
    if not isinstance(gain, (int, float)):
        return ""
    name = card.get("name") or "this model"
    if gain < 0.5:
        verdict = "barely changes most photos"
    elif gain < 2.0:
        verdict = "sharpens visibly but modestly"
    else:
        verdict = "removes much of the blur"
    return f"{name}: {verdict} (+{gain:.1f} dB on held-out photos)"


def tile_step(model: Any) -> int | None:
    """The multiple a tile must be for ``model`` (a loaded network, a bundled model's name or
    a weights file): ``max(divisor, 8)``, as ``deblur`` checks it. A file's divisor is read
    from its header (no torch); None when it cannot be read (the run then says why)."""
    divisor = getattr(model, "divisor", None)
    if divisor is None:
        try:
            meta = registry.read_metadata(registry.resolve(model)[0])
            divisor = SRNConfig.from_dict(json.loads(meta["config"])).divisor
        except (OSError, ValueError, TypeError, KeyError):
            return None
    return max(int(divisor), 8)


def check_tile(tile_size: int, step: int | None) -> None:
    """Raise ValueError, in the widget's words, for a tile that is not 0 (automatic) or a
    multiple of ``step`` (:func:`tile_step`; None: not known, not checked)."""
    if not step or tile_size == 0 or tile_size % step == 0:
        return
    low = tile_size // step * step
    tries = f"{low} or {low + step}" if low else f"{step}"
    raise ValueError(
        f"tile {tile_size} is not a multiple of {step}, which this model needs: try {tries}, "
        "or 0 (automatic)"
    )


#: Library spellings in messages, and what the widget's user does instead.
_GUI_WORDS = (
    ("pass overwrite=True (--overwrite) to replace it", "tick 'replace an existing output'"),
    ("overwrite=True (--overwrite)", "'replace an existing output'"),
    ("use device='cpu' or device=None", "choose device cpu or auto"),
    ("or leave tile_size unset to choose it automatically", "or set tile to 0 (automatic)"),
    ("or None to choose from free memory", "or 0 (automatic)"),
    ("use tile_size=", "set tile to "),
    ("tile_size=", "tile "),
    ("tile_size", "tile"),
    ("precision='float32'", "precision float32"),
)


def gui_words(message: str) -> str:
    """A library message in the widget's words (its controls, not arguments or flags)."""
    for code, gui in _GUI_WORDS:
        message = message.replace(code, gui)
    return message


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """What a run will do for one layer with given settings."""

    lazy: bool
    channel_axis: int | None
    in_range: tuple[float, float] | None
    levels: str  # "single", "full resolution" (of a multiscale layer) or "each level"
    save_to: str | None
    summary: str  # shown in the widget
    axes: str = ""  # the layer's axes (T, Z, C, Y, X), as checked
    channels_first: int | None = None  # a C axis whose channels are deblurred as grey frames
    sample_range: bool = False  # in_range is found by the job, from SAMPLE_FRAMES frames
    frames: int = 1  # 2-D frames deblurred (channels deblurred as gray images count)


def _lazy_in_range(info: LayerInfo, intensity: str = "auto") -> tuple[float, float] | str | None:
    """The intensity range for lazy or saved work: a pair, None (deblur's own rule) or
    ``"sample"`` (the job samples frames)."""
    if intensity == "data type range":
        if info.dtype.kind in "ui":
            limits = np.iinfo(info.dtype)
            return (float(limits.min), float(limits.max))
        return (0.0, 1.0)
    if intensity == "auto":
        if info.dtype == np.uint8 or (info.backing == "numpy" and not info.multiscale):
            return None  # deblur's own rule: 0..255, or the in-memory array's min..max
        return "sample"
    low, high = info.contrast_limits
    if info.dtype.kind == "f" and low >= 0.0 and high <= 1.0:
        return (0.0, 1.0)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{info.name!r} has non-finite contrast limits {info.contrast_limits}")
    return (low, high) if high > low else (low, low + 1.0)


def _fmt(v: float) -> str:
    return f"{v:g}"


AXIS_LETTERS = "TZCYX"


def guess_axes(info: LayerInfo, axis_labels: Any = None) -> str:
    """The axes field's first value for a layer: napari's axis labels when they are T, Z, C, Y,
    X letters; else YX, with C last for RGB or for a last axis of 2-4 entries after two large
    ones (a grey+alpha or two-channel image), preceded by T, TZ or TCZ."""
    n = len(info.shape)
    labels = "".join(str(a).upper() for a in (axis_labels or ()))
    if len(labels) == n and set(labels) <= set(AXIS_LETTERS) and len(set(labels)) == n:
        with contextlib.suppress(ValueError):
            check_axes(labels, info)
            return labels
    trailing_c = info.rgb or (n >= 3 and info.shape[-1] <= 4 and min(info.shape[-3:-1]) >= 16)
    base = "YXC" if trailing_c else "YX"
    lead = n - len(base)
    return ("", "T", "TZ", "TCZ")[lead] + base if lead <= 3 else "Q" * lead + base


def check_axes(axes: str, info: LayerInfo) -> tuple[int | None, int | None]:
    """Check the axes field against the layer; return ``(channel_axis, channels_first)``: the
    C axis as colour (3 or 4 entries: RGB, RGBA), or as channels each deblurred as a grey image
    (any other number), or neither. Raises ValueError in the widget's words."""
    text = str(axes).strip().upper()
    n = len(info.shape)
    shape = "x".join(map(str, info.shape))
    if len(text) != n:
        raise ValueError(
            f"axes '{text}' has {len(text)} letters but the layer has {n} dimensions ({shape}); "
            f"give one letter per dimension, e.g. '{'T' * (n - 2)}YX'"
        )
    if set(text) - set(AXIS_LETTERS) or len(set(text)) != n:
        raise ValueError(
            f"axes '{text}': use each of the letters T, Z, C, Y, X at most once "
            "(T time, Z depth, C channels, Y and X the image plane)"
        )
    if text.replace("C", "")[-2:] != "YX" or "YX" not in text:
        raise ValueError(
            f"axes '{text}': Y and X must be the last two image axes, side by side (C may come "
            "before or after them)"
        )
    if info.rgb and text[-1] != "C":
        raise ValueError(f"axes '{text}': an RGB layer's colour axis is the last one: end with C")
    if "C" not in text:
        return None, None
    c = text.index("C")
    if info.shape[c] in (3, 4) and c == n - 1:
        return -1, None  # colour, the last axis (RGBA: the alpha is kept)
    return None, c


def make_plan(
    info: LayerInfo,
    settings: Settings,
    save_to: str | os.PathLike | None = None,
    axes: str | None = None,
    tile_step: int | None = None,
) -> Plan:
    """Decide what a run does (:func:`decide`), and say it (:func:`describe`); a tile that is
    not a multiple of ``tile_step`` (the model's, :func:`tile_step`) is refused first."""
    check_tile(settings.tile_size, tile_step)
    plan = decide(info, settings, save_to, axes)
    return replace(plan, summary=describe(info, settings, plan))


def decide(
    info: LayerInfo,
    settings: Settings,
    save_to: str | os.PathLike | None = None,
    axes: str | None = None,
) -> Plan:
    """Compute-now or lazy, the channel axis, the levels and the intensity range (see the module
    doc); ``axes`` (default: :func:`guess_axes`) names the layer's dimensions. The summary is
    left empty: :func:`describe` writes it."""
    check_layer(info)
    axes = guess_axes(info) if axes is None else str(axes).strip().upper()
    channel_axis, channels_first = check_axes(axes, info)
    frames = math.prod(n for a, n in zip(axes, info.shape, strict=True) if a not in "YXC")
    if channels_first is not None:
        frames *= info.shape[channels_first]
    if settings.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {settings.mode!r}")
    if settings.mode == "auto":
        lazy = info.multiscale or info.backing != "numpy" or frames > 1
    else:
        lazy = settings.mode == "lazy"
    save = str(save_to) if save_to not in (None, "") else None
    if save is not None and not save.rstrip("/\\").endswith(".zarr"):
        raise ValueError(f"the OME-Zarr output must be a folder name ending in .zarr, got {save!r}")
    if settings.intensity not in INTENSITY:
        raise ValueError(f"intensity must be one of {INTENSITY}, got {settings.intensity!r}")
    # compute now on in-memory data with "auto" uses deblur's own rule (the exact min..max)
    explicit = lazy or save or settings.intensity != "auto"
    in_range = _lazy_in_range(info, settings.intensity) if explicit else None
    sample = in_range == "sample"
    if info.multiscale:
        levels = "each level" if lazy and not save else "full resolution"
    else:
        levels = "single"
    return Plan(
        lazy=lazy,
        channel_axis=channel_axis,
        in_range=None if sample else in_range,  # type: ignore[arg-type]
        levels=levels,
        save_to=save,
        summary="",
        axes=axes,
        channels_first=channels_first,
        sample_range=sample,
        frames=frames,
    )


def describe(info: LayerInfo, settings: Settings, plan: Plan) -> str:
    """The widget's summary line for ``plan``: what the layer is and what a run will do."""
    if plan.channel_axis is not None:
        layout = "RGB" if info.shape[-1] == 3 else "RGBA"
    else:
        layout = "gray"
    shape = "x".join(str(n) for n in info.shape)
    what = f"{layout} {info.dtype} {shape} ({plan.axes})"
    if plan.frames > 1:
        what += f" ({plan.frames} frames)"
    if plan.channels_first is not None:
        what += f", {info.shape[plan.channels_first]} channels each deblurred as a gray image"
    if info.multiscale:
        what += f", multiscale ({info.n_levels} levels)"
    if info.backing in ("dask", "zarr"):
        what += f", {info.backing}-backed"
    lines = [what + "."]
    if plan.save_to:
        lines.append(
            f"Writes {plan.save_to} (OME-Zarr, full resolution, resumable) with progress and "
            "Cancel, then shows it from disk."
        )
    elif plan.lazy:
        lines.append("Lazy: adds a result layer at once; a frame is deblurred when you view it.")
        if plan.levels == "each level":
            lines.append(
                "Multiscale: each level is deblurred at its own resolution (zoomed in you see "
                "the full-resolution result; coarser levels are an overview)."
            )
    else:
        lines.append("Compute now: in the background, with progress and Cancel.")
        if info.multiscale:
            lines.append("Multiscale: the full-resolution level only.")
    source = {
        "contrast limits": "the layer's contrast limits",
        "data type range": f"the full {info.dtype} range",
    }.get(settings.intensity, "the layer's contrast limits")
    if plan.sample_range:
        lines.append(
            f"Intensities: the min..max of {SAMPLE_FRAMES} frames spread over the data (found "
            "when you run, recorded in the result's metadata) map to the model's 0..1; values "
            "beyond them are clipped. Choose 'contrast limits' to give your own."
        )
    elif plan.in_range is not None:
        low, high = plan.in_range
        lines.append(
            f"Intensities {_fmt(low)}..{_fmt(high)} map to the model's 0..1 "
            f"({source}; brighter or darker values are clipped)."
            if plan.in_range != (0.0, 1.0)
            else "Intensities 0..1 are used as they are."
        )
    return " ".join(lines)


def computing_line(name: str, frame: tuple[int, ...], waiting: int = 0) -> str:
    """The status line while a lazy result ``name`` computes ``frame`` (its index on the
    leading axes; ``()`` for a single image, which has no frame number)."""
    where = f"frame {', '.join(map(str, frame))} of " if frame else ""
    more = f" ({waiting} more queued)" if waiting > 0 else ""
    return f"Computing {where}'{name}'{more}..."


def deblur_kwargs(settings: Settings, plan: Plan) -> dict[str, Any]:
    """Keyword arguments for ``napari_srn.deblur`` / ``iter_deblur`` / ``deblur_to_zarr``."""
    if settings.model == WEIGHTS_FILE:
        if not settings.weights or settings.weights == ".":
            raise ValueError("choose a weights file (.safetensors), or a bundled model")
        model: str = str(Path(settings.weights).expanduser())
    else:
        model = settings.model
    if settings.device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {settings.device!r}")
    return {
        "model": model,
        "device": None if settings.device == "auto" else settings.device,
        "tile_size": settings.tile_size or None,
        "precision": settings.precision,
        "channel_axis": plan.channel_axis,
        "in_range": plan.in_range,
    }


def move_axis(data: Any, source: int, destination: int) -> Any:
    """``np.moveaxis`` for numpy and dask data; zarr arrays are opened with dask first (lazy)."""
    module = backing(data)
    if module == "zarr":
        import dask.array as da

        data = da.from_zarr(data)
    if module in ("dask", "zarr"):
        import dask.array as da

        return da.moveaxis(data, source, destination)
    return np.moveaxis(np.asarray(data), source, destination)


def zarr_axes(plan: Plan) -> str:
    """NGFF axis names for saving ``plan``'s layer (C first when its channels go as frames)."""
    axes = plan.axes.lower()
    if "q" in axes:
        raise ValueError(
            f"to save to OME-Zarr, name every axis in 'axes' (T, Z, C, Y, X), not {plan.axes!r}"
        )
    if plan.channels_first is not None:
        axes = "c" + axes.replace("c", "")
    return axes


def worth_showing(category: type[Warning]) -> bool:
    """Whether a warning raised in a worker becomes a notification: the library's own
    (UserWarning, RuntimeWarning) do; third-party deprecations, which napari's worker threads
    catch too, do not."""
    return not issubclass(category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning))


# --------------------------------------------------------------------------- result layer


def result_layer_kwargs(layer: Any, model_meta: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """``viewer.add_image`` keyword arguments for the result of deblurring ``layer``.

    Named after the source (``"<name> (deblurred)"``), with its transform (scale, translate,
    rotate, shear, affine), units, axis labels, display settings (colormap, contrast limits,
    gamma, blending) and metadata, plus ``metadata["napari_srn"]`` recording the model and
    settings. Passing the contrast limits also keeps napari from reading a lazy result to find
    them.
    """
    info = layer_info(layer)
    meta = dict(getattr(layer, "metadata", None) or {})
    meta["napari_srn"] = {
        **model_meta,
        "source_layer": info.name,
        "mode": "lazy" if plan.lazy else "compute now",
        "levels": plan.levels,
        # a range the job sampled comes with the model's record; a planned one from the plan
        "in_range": model_meta.get("in_range")
        or (None if plan.in_range is None else list(plan.in_range)),
        "saved_to": plan.save_to,
    }
    kwargs: dict[str, Any] = {
        "name": f"{info.name} (deblurred)",
        "rgb": info.rgb,
        "multiscale": plan.levels == "each level",
        "contrast_limits": list(info.contrast_limits),
        "metadata": meta,
    }
    for attr in ("scale", "translate", "rotate", "shear", "units", "axis_labels"):
        value = getattr(layer, attr, None)
        if value is not None:
            kwargs[attr] = value
    affine = getattr(layer, "affine", None)
    if affine is not None:
        kwargs["affine"] = np.asarray(getattr(affine, "affine_matrix", affine))
    for attr in ("colormap", "gamma", "blending"):
        with contextlib.suppress(AttributeError):
            kwargs[attr] = getattr(layer, attr)
    if info.rgb:
        kwargs.pop("colormap", None)
    return kwargs
