"""The widget's choices (:class:`Settings`), each declared once with its check, and their file.

A :class:`Settings` holds only valid values: the constructor checks every field against the
check declared beside it and names all that fail in one message, so the plan and the run need
not check again. The remembered ones are kept as JSON between sessions (:func:`save_settings`,
:func:`load_settings`); a remembered file's invalid entries are dropped one by one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ...inference.options import PRECISIONS

__all__ = [
    "DEVICES",
    "INTENSITY",
    "MODES",
    "NOT_REMEMBERED",
    "PRECISIONS",
    "SAMPLE_FRAMES",
    "SETTINGS_ENV",
    "WEIGHTS_FILE",
    "Settings",
    "load_settings",
    "save_settings",
    "settings_path",
]

MODES = ("auto", "compute now", "lazy")
#: How intensities map to the model's 0..1: "auto" (uint8 0..255; an in-memory array's own
#: min..max; for lazy dask/zarr data, the min..max of SAMPLE_FRAMES frames spread over it),
#: the layer's contrast limits (set them in napari's layer controls to give your own), or the
#: data type's full range.
INTENSITY = ("auto", "contrast limits", "data type range")
#: Frames whose min..max give a lazy stack's intensity range under "auto".
SAMPLE_FRAMES = 8
DEVICES = ("auto", "cpu", "cuda")
#: The model choice that enables the weights-file picker.
WEIGHTS_FILE = "weights file..."
#: Environment variable naming the settings file (tests point it into a temporary folder).
SETTINGS_ENV = "NAPARI_SRN_SETTINGS"


def _one_of(choices: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), f"one of {choices}"


def _setting(
    default: Any, check: tuple[Callable[[Any], bool], str], *, remembered: bool = True
) -> Any:
    """A :class:`Settings` field: its default, its check (a predicate and what it expects) and
    whether it is remembered between sessions."""
    ok, expected = check
    return field(
        default=default, metadata={"ok": ok, "expected": expected, "remembered": remembered}
    )


@dataclass(frozen=True)
class Settings:
    """The widget's choices; all but :data:`NOT_REMEMBERED` (the mode) are remembered between
    sessions (the output path is not a setting). Invalid values raise ValueError, naming every
    field that has one."""

    #: a bundled model name, or WEIGHTS_FILE
    model: str = _setting(
        "default", (lambda v: isinstance(v, str) and v != "", "a model name, not empty")
    )
    #: the .safetensors file used when model == WEIGHTS_FILE
    weights: str = _setting("", (lambda v: isinstance(v, str), "a path (str)"))
    device: str = _setting("auto", _one_of(DEVICES))
    #: pixels per model call; 0: automatic
    tile_size: int = _setting(
        0,
        (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "an int >= 0 (0: automatic)",
        ),
    )
    #: not remembered: a choice for the data at hand (a remembered "lazy" would run the next
    #: session's single image lazily, issue 22)
    mode: str = _setting("auto", _one_of(MODES), remembered=False)
    precision: str = _setting("auto", _one_of(PRECISIONS))
    intensity: str = _setting("auto", _one_of(INTENSITY))

    def __post_init__(self) -> None:
        bad = [
            f"{f.name} must be {f.metadata['expected']}, got {getattr(self, f.name)!r}"
            for f in fields(self)
            if not f.metadata["ok"](getattr(self, f.name))
        ]
        if bad:
            raise ValueError("; ".join(bad))

    @classmethod
    def from_dict(cls, data: Any) -> Settings:
        """Remembered settings from a decoded JSON object; unknown keys, invalid values and
        :data:`NOT_REMEMBERED` ones (an older file's mode) are dropped."""
        if not isinstance(data, dict):
            return cls()
        kept = {
            f.name: data[f.name]
            for f in fields(cls)
            if f.metadata["remembered"] and f.name in data and f.metadata["ok"](data[f.name])
        }
        return cls(**kept)


#: Settings not remembered between sessions (declared on each :class:`Settings` field).
NOT_REMEMBERED = tuple(f.name for f in fields(Settings) if not f.metadata["remembered"])


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
