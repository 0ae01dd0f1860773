"""Input checks and intensity conversion. Every message a user sees about bad input lives here."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import dask.array as da

__all__ = [
    "GuessedAxis",
    "ImageLike",
    "IntensityRange",
    "MaybeLazy",
    "check_dtype_and_shape",
    "check_image",
    "check_overlap",
    "check_tile_size",
    "intensity_range",
    "normalize_channel_axis",
]

#: What :func:`napari_srn.deblur` and :func:`napari_srn.deblur_to_zarr` take: anything
#: :func:`numpy.asarray` takes (held in memory), a dask or zarr array (both array-likes, which
#: are processed lazily), or the path (``str`` or ``os.PathLike``) of a zarr store.
ImageLike: TypeAlias = npt.ArrayLike | os.PathLike
#: A numpy array, or a dask array on the lazy path (dask is imported only there).
MaybeLazy: TypeAlias = "np.ndarray | da.Array"
#: Floats within [0, 1] whose maximum lies below this (one level of an 8-bit image) would reach
#: the model as black: their own minimum..maximum is mapped instead, with a warning.
DARKEST = 1.0 / 255.0


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
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
        raise TypeError(f"channel_axis must be an int or None, got {type(channel_axis).__name__}")
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


def check_tile_size(tile_size: int | None, divisor: int) -> int | None:
    """Check ``tile_size``; None means automatic. Tiles are multiples of ``max(divisor, 8)``."""
    if tile_size is None:
        return None
    step = max(divisor, 8)
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)):
        raise TypeError(f"tile_size must be an int or None, got {type(tile_size).__name__}")
    if tile_size < step or tile_size % step:
        lo = max(step, tile_size // step * step)
        raise ValueError(
            f"tile_size must be a positive multiple of {step}, got {tile_size}. "
            f"Try {lo} or {lo + step}, or None to choose from free memory"
        )
    return int(tile_size)


def check_overlap(overlap: int | None, default: int) -> int:
    """Check ``overlap`` (halo per tile side); None means the model's halo."""
    if overlap is None:
        return default
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)):
        raise TypeError(f"overlap must be an int or None, got {type(overlap).__name__}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0 pixels, got {overlap}")
    return int(-(-overlap // 8) * 8)  # the level-by-level tilers need multiples of 8


@dataclass(frozen=True)
class IntensityRange:
    """Affine map between an image's values and the model's [0, 1].

    ``given``: the range is the caller's ``in_range`` (not read from the data), as error
    messages say.
    """

    low: float
    high: float
    dtype: np.dtype
    given: bool = False

    @property
    def _work(self) -> type:
        """Arithmetic dtype: float32 for data it holds exactly (8- and 16-bit integers,
        float16), float64 otherwise: 32- and 64-bit integers (float32 rounds 2**31 - 1 up to
        2**31, which wraps), float32 data near its limits (a width of 6e38, a scale of 1e40)."""
        return np.float32 if self.dtype.itemsize <= 2 else np.float64

    def to_model(self, a: np.ndarray) -> np.ndarray:
        """Values to float32 in [0, 1] (a new array; the input is never modified). Raises
        ValueError if the result is not finite: NaN or infinity in ``a`` (checked here, block
        by block, also for dask data whose range was given), or values ``in_range`` maps
        beyond float32."""
        work = self._work
        scale = work(1.0 / (self.high - self.low))
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            x = ((a.astype(work) - work(self.low)) * scale).astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ValueError(
                    "image contains NaN or infinite values; replace them first, "
                    "e.g. np.nan_to_num(image, nan=0.0, posinf=..., neginf=...)"
                )
            if not self.given:  # not reached by intensity_range's own ranges
                raise ValueError(
                    f"the image's values ({self.low:g} to {self.high:g}) cannot be mapped to "
                    "the model's 0..1; scale the image first, e.g. divide it by its maximum"
                )
            raise ValueError(
                f"in_range=({self.low:g}, {self.high:g}) maps the image's values (up to "
                f"{float(np.abs(a).max()):g}) beyond what the model can take; give an in_range "
                "that covers the image's values, or none to use the image's own minimum and "
                "maximum"
            )
        return x

    def from_model(self, a: np.ndarray) -> np.ndarray:
        """Model output (clipped to [0, 1]) back to the image's range and dtype. Raises
        ValueError if the model produced NaN or infinity (from finite input: broken weights),
        rather than writing a black or NaN image."""
        if not np.isfinite(a).all():
            raise ValueError(
                "the model produced NaN or infinite values from a finite input: its weights "
                "are broken (a diverged training run?) or it does not fit this precision; use "
                "another model, or precision='float32'"
            )
        work = self._work
        out = np.clip(a, 0.0, 1.0).astype(work, copy=False) * work(self.high - self.low)
        out += work(self.low)
        if self.dtype.kind in "ui":
            return to_integer(out, self.dtype)
        return out.astype(self.dtype, copy=False)


def to_integer(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Floats rounded to the integer ``dtype``, clipped to its range without wrapping: the
    float nearest to a 32- or 64-bit maximum (2**31 - 1 is 2**31 as a float) lies beyond it,
    and casting it wraps to the minimum (or to 0)."""
    info = np.iinfo(dtype)
    x = np.rint(values)
    top, bottom = x >= float(info.max), x <= float(info.min)
    out = np.where(top | bottom, 0, x).astype(dtype)
    out[top] = info.max
    out[bottom] = info.min
    return out


def intensity_range(arr: MaybeLazy, in_range: tuple[float, float] | None = None) -> IntensityRange:
    """Choose how ``arr``'s values map to the model's [0, 1] input range.

    * ``in_range=(low, high)``: those values map to 0 and 1 (no pass over the data);
    * uint8: 0..255 (photographs);
    * floating point with all values in [0, 1]: 0..1, unless they all lie below 1/255
      (:data:`DARKEST`: one level of an 8-bit image, black to the model): then their own
      minimum..maximum, with a warning;
    * any other integer or float data (uint16 microscopy, which rarely fills 0..65535,
      floats outside [0, 1]): the data's own minimum..maximum over the whole array, so a
      stack is mapped consistently from frame to frame.

    The output is mapped back with the inverse map, clipped to the same range, and cast to
    the input dtype (rounded and clipped for integers, never wrapped). The arithmetic is
    float64 for data that float32 does not hold exactly (32- and 64-bit types). Also rejects
    NaN and infinity (one min/max pass, no temporary arrays; for a dask array, one pass over
    the data), and a range too wide or too narrow for float64 to map.
    """
    dtype = np.dtype(arr.dtype)
    if in_range is not None:
        return _given_range(arr, in_range, dtype)
    if dtype == np.uint8:
        return IntensityRange(0.0, 255.0, dtype)
    lo, hi = arr.min(), arr.max()
    if hasattr(lo, "compute"):  # dask: both reductions in one pass
        import dask

        lo, hi = dask.compute(lo, hi)
    if dtype.kind == "f":
        _check_finite(lo, hi)
    lo, hi = float(lo), float(hi)
    if dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        if not lo < hi < DARKEST:
            return IntensityRange(0.0, 1.0, dtype)
        warnings.warn(
            f"the image's values lie between {lo:g} and {hi:g}, below 1/255 (one level of an "
            "8-bit image) on the 0..1 scale, which the model would see as black; using their "
            "own minimum and maximum as black and white instead. Pass in_range=(0, 1) to keep "
            f"0..1, or in_range=({lo:g}, {hi:g}) to silence this warning",
            UserWarning,
            stacklevel=3,
        )
    if hi <= lo:  # constant image: any range with a non-zero width maps it back exactly
        hi = max(lo + 1.0, float(np.nextafter(lo, np.inf)))  # 1e300 + 1 is 1e300
    _check_width(lo, hi)
    return IntensityRange(lo, hi, dtype)


def _given_range(arr: MaybeLazy, in_range: tuple[float, float], dtype: np.dtype) -> IntensityRange:
    """The caller's ``in_range``, checked."""
    try:
        low, high = (float(v) for v in in_range)
    except (TypeError, ValueError):
        raise TypeError(f"in_range must be a pair of numbers, got {in_range!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise ValueError(f"in_range must be finite with low < high, got {in_range!r}")
    limit = float(np.finfo(np.float64 if dtype.itemsize > 4 else np.float32).max)
    if not 1.0 / limit < high - low < limit:  # its scale factor must be representable
        raise ValueError(
            f"in_range={in_range!r} is too narrow or too wide for {dtype} data (its width "
            f"must lie between {1.0 / limit:g} and {limit:g}); widen it, or give none to "
            "use the image's own minimum and maximum"
        )
    if isinstance(arr, np.ndarray) and dtype.kind == "f":
        _check_finite(arr.min(), arr.max())
    return IntensityRange(low, high, dtype, given=True)


def _check_width(lo: float, hi: float) -> None:
    """The image's own range must be mappable in float64 (its width and its inverse finite)."""
    with np.errstate(over="ignore", divide="ignore"):
        width = np.float64(hi) - np.float64(lo)
        if np.isfinite(width) and np.isfinite(1.0 / width):
            return
    if not np.isfinite(width):
        raise ValueError(
            f"the image's values span {lo:g} to {hi:g}, a width beyond what float64 can hold; "
            "divide the image by 2 (or more) first"
        )
    raise ValueError(
        f"the image's values span only {width:g} ({lo:g} to {hi:g}), too narrow to map to the "
        "model's 0..1; multiply the image by a large factor first"
    )


def _check_finite(lo: float, hi: float) -> None:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(
            "image contains NaN or infinite values; replace them first, "
            "e.g. np.nan_to_num(image, nan=0.0, posinf=..., neginf=...)"
        )
