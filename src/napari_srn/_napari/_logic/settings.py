"""The widget's choices (:class:`Settings`) and the file that remembers them between sessions.

The choices offered (:data:`MODES`, :data:`INTENSITY`, :data:`DEVICES`, :data:`PRECISIONS`) are
declared here; the remembered ones are kept as JSON (:func:`save_settings`,
:func:`load_settings`), and a remembered file's invalid entries are dropped one by one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
SAMPLE_FRAMES = 8
DEVICES = ("auto", "cpu", "cuda")
#: napari_srn.inference.precision.PRECISIONS, spelled out here so the widget imports no torch
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: The model choice that enables the weights-file picker.
WEIGHTS_FILE = "weights file..."
#: Environment variable naming the settings file (tests point it into a temporary folder).
SETTINGS_ENV = "NAPARI_SRN_SETTINGS"


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
