"""The seven settings every deblur shares, declared once: :class:`DeblurOptions`.

:func:`napari_srn.deblur`, :func:`~napari_srn.iter_deblur` and
:func:`~napari_srn.deblur_to_zarr` take them as keyword arguments (or one ``options=``), the
plan (:mod:`.plan`) reads them, and the command line and the napari widget build one. What can
be checked without the model (types, ranges, names) is checked here, when the object is made;
what needs the model (a tile that is a multiple of its divisor, a device that exists) is
checked by the plan. No torch here: the widget imports this module.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULTS",
    "PRECISIONS",
    "DeblurOptions",
    "ModelLike",
    "check_in_range",
    "check_precision",
    "merge_options",
]

#: The values ``precision=`` accepts.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")

#: What ``model=`` accepts: a bundled model's name, a ``.safetensors`` path, or a network.
ModelLike: TypeAlias = "str | os.PathLike | torch.nn.Module"


def _int_or_none(name: str, value: object) -> None:
    """An int (numpy's too) or None, else a TypeError naming the setting."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")


def check_precision(precision: object) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ValueError listing them."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}"
        )
    return precision


@dataclass(frozen=True, kw_only=True)
class DeblurOptions:
    """How to deblur: the settings :func:`napari_srn.deblur` and its siblings share.

    Parameters
    ----------
    model : str, path or torch.nn.Module, optional
        ``"default"``, a name from :func:`napari_srn.list_models`, a ``.safetensors`` file
        written by napari-srn, or a loaded model (see :func:`napari_srn.load_model`).
    channel_axis : int or None, optional
        Axis holding colour channels (scikit-image convention); None means grayscale. With 4
        channels the last is alpha and is copied through untouched. A color model takes RGB
        as is, and a gray image is replicated to RGB, deblurred, and averaged back to one
        channel. A gray model deblurs each channel as a separate gray image (as the authors'
        code does for RGB). With None and a last axis of 2, 3 or 4 entries, the image is
        taken as gray+alpha (the alpha copied through), RGB or RGBA with a warning. For an
        image file, None means the channels the file declares.
    tile_size : int or None, optional
        Side in pixels of the region each model call writes (a multiple of the model's
        divisor, 16 for the default model); None chooses it from free memory (at most 1024 on
        the CPU). Each scale of the network is tiled separately, so tiles do not change the
        result beyond the small edge effect that ``overlap`` controls.
    overlap : int or None, optional
        Context in pixels read on each side of a tile and then discarded (rounded up to a
        multiple of 8); None uses the model's ``halo`` (24 for the default model).
    device : str, torch.device or None, optional
        None uses CUDA when available, else the CPU. Asking for a device that is not available
        raises ValueError.
    in_range : (float, float), optional
        Input values that map to the model's 0 and 1; None chooses from the data (see
        :func:`napari_srn.deblur`). Give it for lazy input to skip the pass over the data that
        finding the range takes, or to map separately processed images the same way.
    precision : {"auto", "float32", "bfloat16", "float16"}, optional
        Arithmetic of the network's convolutions (autocast). ``"auto"`` uses bfloat16 on a CPU
        that computes it natively (AMX or AVX512-BF16: several times faster, within 50 dB
        PSNR of float32) and on CUDA (float16 on GPUs without bfloat16), float32 elsewhere;
        ``"float32"`` everywhere gives the reference result. float16 needs CUDA. It is
        resolved once, on the device the work is planned for, and every tile (every dask
        worker) runs that arithmetic: an OME-Zarr output records what ran.

    Raises
    ------
    TypeError, ValueError
        For a setting of the wrong type or out of range, naming it.

    Examples
    --------
    >>> from napari_srn import DeblurOptions
    >>> fast = DeblurOptions(tile_size=512, precision="auto")
    >>> fast.replace(precision="float32").precision
    'float32'
    """

    model: ModelLike = "default"
    channel_axis: int | None = None
    tile_size: int | None = None
    overlap: int | None = None
    device: str | torch.device | None = None
    in_range: tuple[float, float] | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        model = self.model
        if not isinstance(model, (str, os.PathLike)) and not hasattr(model, "parameters"):
            raise TypeError(
                "model must be a name (see napari_srn.list_models()), a path to a .safetensors "
                f"file, or a torch.nn.Module, got {type(model).__name__}"
            )
        _int_or_none("channel_axis", self.channel_axis)
        _int_or_none("tile_size", self.tile_size)  # its multiple: the plan, from the model
        _int_or_none("overlap", self.overlap)
        if self.overlap is not None and self.overlap < 0:
            raise ValueError(f"overlap must be >= 0 pixels, got {self.overlap}")
        if self.device is not None and not isinstance(self.device, str):
            if type(self.device).__name__ != "device":
                raise TypeError(
                    f"device must be a str, a torch.device or None, got "
                    f"{type(self.device).__name__}"
                )
        if self.in_range is not None:
            object.__setattr__(self, "in_range", check_in_range(self.in_range))
        check_precision(self.precision)

    def replace(self, **changes: Any) -> DeblurOptions:
        """A copy with some settings changed (and checked again).

        Parameters
        ----------
        **changes
            Settings by name, e.g. ``precision="float32"``.

        Returns
        -------
        DeblurOptions
            The new settings.
        """
        return dataclasses.replace(self, **changes)


def check_in_range(in_range: object) -> tuple[float, float]:
    """``in_range`` as two finite floats, low < high, or a TypeError/ValueError naming it."""
    try:
        low, high = (float(v) for v in in_range)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise TypeError(f"in_range must be a pair of numbers, got {in_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ValueError(f"in_range must be finite with low < high, got {in_range!r}")
    return low, high


#: Every setting at its default (what a keyword left out means).
DEFAULTS = DeblurOptions()


def merge_options(options: DeblurOptions | None, **keywords: Any) -> DeblurOptions:
    """The settings of a call that takes them as keywords or as one ``options=`` (not both:
    a keyword that differs from its default beside ``options`` is a TypeError)."""
    if options is None:
        return DeblurOptions(**keywords)
    if not isinstance(options, DeblurOptions):
        raise TypeError(f"options must be a DeblurOptions, got {type(options).__name__}")
    given = sorted(k for k, v in keywords.items() if not _is_default(k, v))
    if given:
        raise TypeError(
            f"give the settings either as options= or as keywords, not both ({', '.join(given)} "
            "given beside options); use options.replace("
            + ", ".join(f"{k}=..." for k in given)
            + ")"
        )
    return options


def _is_default(name: str, value: object) -> bool:
    default = getattr(DEFAULTS, name)
    return value is default or (isinstance(value, str) and value == default)
