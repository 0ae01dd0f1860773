"""napari-srn: remove camera shake and motion blur with the Scale-Recurrent Network.

The public API is imported lazily, so ``import napari_srn`` is cheap and imports neither torch
nor napari; ``from napari_srn import deblur`` loads the core (torch, no napari).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_API = {
    "deblur": ".inference.api",
    "iter_deblur": ".inference.api",
    "Progress": ".inference.api",
    "auto_tile_size": ".inference.api",
    "DeblurOptions": ".inference.options",
    "SRN": ".model.srn",
    "SRNConfig": ".model.config",
    "VARIANTS": ".model.config",
    "ModelCard": ".model.weights",
    "load_model": ".model.weights",
    "list_models": ".model.weights",
    "model_card": ".model.weights",
    "save_model": ".model.weights",
    "blurred_sample": ".sample",
    "deblur_to_zarr": ".inference.to_zarr",
    "iter_deblur_to_zarr": ".inference.to_zarr",
    "Cancelled": ".inference.to_zarr",
    "train": ".training.loop",
    "TrainConfig": ".training.config",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


if TYPE_CHECKING:  # pragma: no cover
    from .inference.api import Progress, auto_tile_size, deblur, iter_deblur  # noqa: F401
    from .inference.options import DeblurOptions  # noqa: F401
    from .inference.to_zarr import Cancelled, deblur_to_zarr, iter_deblur_to_zarr  # noqa: F401
    from .model.config import VARIANTS, SRNConfig  # noqa: F401
    from .model.srn import SRN  # noqa: F401
    from .model.weights import ModelCard, list_models, load_model, model_card, save_model  # noqa: F401
    from .sample import blurred_sample  # noqa: F401
    from .training.config import TrainConfig  # noqa: F401
    from .training.loop import train  # noqa: F401
