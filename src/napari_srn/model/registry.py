"""The bundled models and what a weights file's header says, without torch.

One home for both, used by :mod:`.weights` (which loads the tensors) and by the napari widget
(which shows a model's card before anything is loaded, and must not import torch to do so).
"""

from __future__ import annotations

import json
import os
import struct
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT",
    "bundled_file",
    "list_models",
    "read_card",
    "read_metadata",
    "registry",
    "resolve",
]

#: The ``format`` entry of a napari-srn weights file's metadata.
FORMAT = "napari-srn"
#: A safetensors header larger than this is refused before it is read (a hostile file).
MAX_HEADER_BYTES = 100_000_000


def registry() -> dict[str, Any]:
    """``weights/registry.json``: ``{"default": name, "models": {name: {file, sha256}}}``."""
    text = resources.files(__package__).joinpath("weights/registry.json").read_text()
    return json.loads(text)


def list_models(reg: dict[str, Any] | None = None) -> list[str]:
    """Names of the weights bundled with napari-srn (``"default"`` is an alias of one)."""
    reg = registry() if reg is None else reg
    return ["default", *sorted(reg["models"])]


def bundled_file(entry: dict[str, Any]) -> Path:
    """The installed file of a registry entry."""
    return Path(str(resources.files(__package__).joinpath("weights", entry["file"])))


def resolve(
    name_or_path: str | os.PathLike, reg: dict[str, Any] | None = None
) -> tuple[Path, str | None, str]:
    """``(file, expected SHA-256 or None, display name)`` of a bundled model's name (or
    ``"default"``) or of a weights file's path."""
    reg = registry() if reg is None else reg
    name = str(name_or_path)
    if name == "default":
        name = reg["default"]
    if name in reg["models"]:
        entry = reg["models"][name]
        return bundled_file(entry), entry["sha256"], name
    path = Path(name_or_path).expanduser()
    if path.suffix != ".safetensors" and not path.exists():
        raise ValueError(
            f"model {str(name_or_path)!r} is neither a bundled model ({list_models(reg)}) nor an "
            "existing .safetensors file"
        )
    return path, None, path.stem


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, from its JSON header alone (no tensors)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    try:
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > MAX_HEADER_BYTES:
                raise ValueError(f"header of {size} bytes")
            header = json.loads(f.read(size))
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict):
            raise ValueError("__metadata__ is not an object")
    except (OSError, ValueError, struct.error, AttributeError) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable napari-srn weights file ({err})"
        ) from err
    return meta


def read_card(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The model card of a bundled model or a napari-srn weights file, from its header.
    Raises FileNotFoundError or ValueError."""
    path = resolve(name_or_path)[0]
    meta = read_metadata(path)
    try:
        card = json.loads(meta["card"]) if meta.get("format") == FORMAT else None
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable napari-srn weights file ({err})"
        ) from err
    if not isinstance(card, dict):
        raise ValueError(
            f"{str(path)!r} is not a napari-srn weights file (save models with "
            "napari_srn.save_model or napari-srn train)"
        )
    return card
