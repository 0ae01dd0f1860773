"""The result layer: its name, transform, display settings and metadata (no napari, Qt or torch).

The result of deblurring a layer is added with :func:`result_layer_kwargs`: named after the
source, placed and shown as the source is, and recording in ``metadata["napari_srn"]`` the model
and the settings that made it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from .layers import layer_info
from .run import RunChoice

__all__ = ["result_layer_kwargs"]


def result_layer_kwargs(
    layer: Any, model_meta: dict[str, Any], choice: RunChoice
) -> dict[str, Any]:
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
        "mode": "lazy" if choice.lazy else "compute now",
        "levels": choice.levels,
        # a range the job sampled comes with the model's record; a planned one from the choice
        "in_range": model_meta.get("in_range")
        or (None if choice.in_range is None else list(choice.in_range)),
        "saved_to": choice.save_to,
    }
    kwargs: dict[str, Any] = {
        "name": f"{info.name} (deblurred)",
        "rgb": info.rgb,
        "multiscale": choice.levels == "each level",
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
