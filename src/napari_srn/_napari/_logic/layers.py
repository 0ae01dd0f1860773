"""Which layers the widget takes, and what their axes mean (no napari, Qt or torch).

A napari layer is read into a :class:`LayerInfo` (anything with a layer's attributes will do,
so the tests need no viewer); :func:`check_layer` refuses what Deblur (SRN) cannot take, and
the axes field (T, Z, C, Y, X) is guessed (:func:`guess_axes`) and checked
(:func:`check_axes`) against the layer's shape.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...io.zarr import backing

__all__ = [
    "AXIS_LETTERS",
    "LayerInfo",
    "check_axes",
    "check_layer",
    "guess_axes",
    "layer_info",
    "move_axis",
]

#: The letters the axes field takes: T time, Z depth, C channels, Y and X the image plane.
AXIS_LETTERS = "TZCYX"


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
        """Number of 2-D (gray or color) frames: the product of the leading axes."""
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


def guess_axes(info: LayerInfo, axis_labels: Any = None) -> str:
    """The axes field's first value for a layer: napari's axis labels when they are T, Z, C, Y,
    X letters; else YX, with C last for RGB or for a last axis of 2-4 entries after two large
    ones (a gray+alpha or two-channel image), preceded by T, TZ or TCZ."""
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
    C axis as color (3 or 4 entries: RGB, RGBA), or as channels each deblurred as a gray image
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
        return -1, None  # color, the last axis (RGBA: the alpha is kept)
    return None, c


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
