"""How an image's values map to the model's [0, 1] and back, for the whole pipeline (the eager
runner, the lazy graph, training's data): :class:`IntensityRange` and the rule that chooses it,
:func:`intensity_range`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .options import check_in_range
from .validate import MaybeLazy

__all__ = ["DARKEST", "IntensityRange", "intensity_range", "to_integer"]

#: Floats within [0, 1] whose maximum lies below this (one level of an 8-bit image) would reach
#: the model as black: their own minimum..maximum is mapped instead, with a warning.
DARKEST = 1.0 / 255.0


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
    low, high = check_in_range(in_range)
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
