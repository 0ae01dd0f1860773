"""Reading training images: files and zarr frames as ``(H, W, C)`` raw pixels, a small LRU of
decoded images per worker, and the map to float32 in [0, 1] that :func:`~napari_srn.deblur`
uses (:class:`~napari_srn.inference.intensity.IntensityRange`).

An image is named by a reference: a file path, or ``"zarr:<store>::<array>::<index>"`` for a
zarr frame (opened once per process).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from ...inference.intensity import IntensityRange, intensity_range

__all__ = ["LUMA", "ImageCache", "read_raw", "read_window", "to_tensor", "to_unit", "zarr_frame"]

#: RGB weights of the gray value (as ``skimage.color.rgb2gray``).
LUMA = np.array([0.2125, 0.7154, 0.0721], np.float32)


_ZARR_ARRAYS: dict[tuple[int, str, str], Any] = {}  # (pid, store, array): opened once a process


def zarr_frame(ref: str) -> tuple[Any, int]:
    """The zarr array and frame index of a ``zarr:<store>::<array>::<index>`` reference."""
    store, name, index = ref[5:].split("::")
    key = (os.getpid(), store, name)
    if key not in _ZARR_ARRAYS:
        import zarr

        _ZARR_ARRAYS[key] = zarr.open_group(store, mode="r")[name]
    return _ZARR_ARRAYS[key], int(index)


def _hwc(arr: np.ndarray, axis: int | None, ref: str) -> np.ndarray:
    """``(H, W, C)`` with C = 1 or 3 (alpha dropped), or a clear error naming ``ref``."""
    if axis is not None and axis != arr.ndim - 1:
        arr = np.moveaxis(arr, axis, -1)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4) or (axis is None and arr.shape[-1] != 1):
        raise ValueError(
            f"{ref!r} has shape {arr.shape}; training images must be 2-D gray "
            "or RGB(A) (stacks and multichannel images: save the planes as "
            "separate files)"
        )
    if arr.dtype.kind not in "uif" or arr.dtype == bool:
        raise ValueError(f"{ref!r} has dtype {arr.dtype}; expected integer or float pixels")
    return arr[:, :, :3]


def read_raw(ref: str) -> np.ndarray:
    """An image as stored, shaped ``(H, W, C)`` with C = 1 or 3 (alpha dropped)."""
    if ref.startswith("zarr:"):
        array, index = zarr_frame(ref)
        arr = np.asarray(array[index])
        return _hwc(arr, arr.ndim - 1 if arr.ndim == 3 else None, ref)
    from ...io.files import read_image

    arr, axis = read_image(ref)
    return _hwc(arr, axis, ref)


def read_window(ref: str, top: int, left: int, height: int, width: int) -> np.ndarray:
    """Only the crop of a zarr frame (a chunked array reads only the chunks it touches)."""
    array, index = zarr_frame(ref)
    arr = np.asarray(array[index, top : top + height, left : left + width])
    return _hwc(arr, arr.ndim - 1 if arr.ndim == 3 else None, ref)


class ImageCache:
    """A small LRU of decoded images with their intensity range (one per worker)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[str, tuple[np.ndarray, float, float]] = OrderedDict()

    def get(self, ref: str, range_of: str | None = None) -> tuple[np.ndarray, float, float]:
        if ref in self.data:
            self.data.move_to_end(ref)
            return self.data[ref]
        arr = read_raw(ref)
        if range_of is not None and range_of != ref:
            _, lo, hi = self.get(range_of)
        else:
            r = intensity_range(arr)
            lo, hi = r.low, r.high
        value = (arr, lo, hi)
        if self.size:
            self.data[ref] = value
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


def to_unit(arr: np.ndarray, lo: float, hi: float, channels: int) -> np.ndarray:
    """Raw pixels to float32 in [0, 1] (the map deblur uses) with ``channels`` channels."""
    x = IntensityRange(lo, hi, arr.dtype).to_model(arr)
    if channels == 1 and x.shape[-1] == 3:
        x = (x @ LUMA)[:, :, None]
    elif channels == 3 and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x


def to_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
