"""The models the widget offers and what it says about them, without torch.

The model list and each model's card come from the registry and the weights file's JSON header
(:mod:`napari_srn.model.registry`), so the widget shows what a model is before loading it; the
tile step a model needs is read the same way. The devices offered are found without torch too.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ... import tiling
from ...model import registry
from ...model.config import SRNConfig
from .settings import DEVICES, WEIGHTS_FILE

__all__ = [
    "bundled_models",
    "check_tile",
    "describe_model",
    "model_choices",
    "quality_line",
    "read_card",
    "tile_step",
    "usable_devices",
]


def model_choices() -> list[tuple[str, str]]:
    """The widget's model list as (label, value): each bundled file once (the default named
    as such, not also under its own name), then the weights-file picker."""
    reg = registry.registry()
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
    a weights file): :func:`napari_srn.tiling.tile_step` of its divisor, as ``deblur`` checks
    it. A file's divisor is read from its header (no torch); None when it cannot be read (the
    run then says why)."""
    divisor = getattr(model, "divisor", None)
    if divisor is None:
        try:
            meta = registry.read_metadata(registry.resolve(model)[0])
            divisor = SRNConfig.from_dict(json.loads(meta["config"])).divisor
        except (OSError, ValueError, TypeError, KeyError):
            return None
    return tiling.tile_step(int(divisor))


def check_tile(tile_size: int, step: int | None) -> None:
    """Raise ValueError, in the widget's words, for a tile that is not 0 (automatic) or a
    multiple of ``step`` (:func:`tile_step`; None: not known, not checked)."""
    fixes = () if not step or tile_size == 0 else tiling.tiles_to_try(tile_size, step)
    if not fixes:
        return
    tries = " or ".join(map(str, fixes))
    raise ValueError(
        f"tile {tile_size} is not a multiple of {step}, which this model needs: try {tries}, "
        "or 0 (automatic)"
    )
