"""Checks of the image itself (its type, dtype and shape, and the channel axis against it), with
the messages users see. The settings are checked by
:class:`~napari_srn.inference.options.DeblurOptions`, intensities by :mod:`.intensity`."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import dask.array as da

__all__ = [
    "GuessedAxis",
    "ImageLike",
    "MaybeLazy",
    "check_dtype_and_shape",
    "check_image",
    "normalize_channel_axis",
]

#: What :func:`napari_srn.deblur` and :func:`napari_srn.deblur_to_zarr` take: anything
#: :func:`numpy.asarray` takes (held in memory), a dask or zarr array (both array-likes, which
#: are processed lazily), or the path (``str`` or ``os.PathLike``) of a zarr store.
ImageLike: TypeAlias = npt.ArrayLike | os.PathLike
#: A numpy array, or a dask array on the lazy path (dask is imported only there).
MaybeLazy: TypeAlias = "np.ndarray | da.Array"


def check_dtype_and_shape(dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """Raise a clear TypeError/ValueError for an image dtype or shape deblur cannot take."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        raise TypeError(
            "image has dtype bool; deblurring needs intensities. "
            "Convert it, e.g. image.astype(np.uint8) * 255"
        )
    if dt.kind == "c":
        raise TypeError(f"image has complex dtype {dt}; pass np.abs(image) or image.real instead")
    if dt.kind not in "uif":
        raise TypeError(
            f"image has dtype {dt}; expected an integer or floating-point image "
            "(uint8, uint16, float32, float64, ...)"
        )
    if len(shape) < 2:
        raise ValueError(
            f"image must have at least 2 dimensions (height, width), got shape {tuple(shape)}"
        )
    if 0 in shape:
        raise ValueError(f"image is empty (shape {tuple(shape)}); every axis needs length >= 1")


def check_image(image: object) -> np.ndarray:
    """Return ``image`` as a numpy array (no copy for an ndarray) or raise a clear error."""
    if type(image) is np.ndarray:
        arr = image
    elif isinstance(image, np.ndarray):  # np.matrix, masked arrays: their plain data (a view)
        arr = image.view(np.ndarray)
    else:
        if not hasattr(image, "__array__") and not isinstance(image, (list, tuple)):
            raise TypeError(
                "image must be a numpy, dask or zarr array, or the path of an image file or "
                f"a zarr store; got {type(image).__name__}"
            )
        arr = np.asarray(image)
    check_dtype_and_shape(arr.dtype, arr.shape)
    return arr


class GuessedAxis(int):
    """A channel axis that :func:`normalize_channel_axis` guessed (an ``int`` in every other
    respect). Passed on, it still says that the guess was made, so that a last axis of 2
    entries stays grey+alpha wherever the plan is made."""


def normalize_channel_axis(arr: MaybeLazy, channel_axis: int | None) -> int | None:
    """Check ``channel_axis`` (scikit-image convention) and return it as a non-negative index.

    With ``channel_axis=None`` an image whose last axis has 2, 3 or 4 entries (and whose other
    axes are larger) is taken as grey+alpha, RGB or RGBA with a warning, since deblurring
    images 2 to 4 pixels wide is never what was meant.
    """
    if channel_axis is None:
        if arr.ndim >= 3 and arr.shape[-1] in (2, 3, 4) and min(arr.shape[-3:-1]) > 4:
            _warn_guess(arr.shape)
            return GuessedAxis(arr.ndim - 1)
        return None
    if isinstance(channel_axis, GuessedAxis):  # already checked, and warned about
        return GuessedAxis(channel_axis % arr.ndim)
    if not -arr.ndim <= channel_axis < arr.ndim:
        raise ValueError(
            f"channel_axis={channel_axis} is out of range for an image with {arr.ndim} "
            f"dimensions (shape {arr.shape}); use an axis from {-arr.ndim} to {arr.ndim - 1}, "
            "or None for a grayscale image"
        )
    if arr.ndim < 3:
        raise ValueError(
            f"image of shape {arr.shape} with channel_axis={channel_axis} has fewer than two "
            "spatial dimensions; pass channel_axis=None for a 2-D grayscale image"
        )
    return int(channel_axis) % arr.ndim


def _warn_guess(shape: tuple[int, ...]) -> None:
    """The warning of :func:`normalize_channel_axis`'s guess (two frames up: the caller)."""
    n = shape[-1]
    if n == 2:
        what = (
            "grey+alpha: the grey is deblurred and the alpha kept as it is. To deblur both as "
            "separate grey images, put them first (np.moveaxis(image, -1, 0)); to silence "
            "this, deblur image[..., 0] and keep image[..., 1] yourself"
        )
    else:
        what = (
            f"{'RGB' if n == 3 else 'RGBA'} channels. Pass channel_axis=-1 to say so and "
            "silence this warning"
        )
    warnings.warn(
        f"image of shape {shape} has {n} entries on its last axis; treating it as {what}",
        UserWarning,
        stacklevel=4,
    )
