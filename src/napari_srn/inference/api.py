"""``deblur()`` and ``iter_deblur()``: the public front of :mod:`napari_srn.inference`."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, cast, overload

import numpy as np
import numpy.typing as npt

from .._progress import reporter
from .eager import Progress, run_frames
from .options import DeblurOptions, ModelLike, merge_options
from .plan import auto_tile_size, make_plan
from .validate import ImageLike, check_dtype_and_shape, check_image

if TYPE_CHECKING:
    import dask.array as da
    import torch

__all__ = ["Progress", "auto_tile_size", "deblur", "deblur_image", "iter_deblur"]


def iter_deblur(
    image: npt.ArrayLike | os.PathLike,
    *,
    model: ModelLike = "default",
    channel_axis: int | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    in_range: tuple[float, float] | None = None,
    precision: str = "auto",
    options: DeblurOptions | None = None,
) -> Generator[Progress, None, np.ndarray]:
    """Generator form of :func:`deblur` for in-memory images: yields :class:`Progress` after
    every tile and returns the deblurred image (``result = yield from iter_deblur(...)``, or the
    ``StopIteration`` value). Stop iterating to cancel between tiles; nothing is written to
    ``image``.

    Input is validated before the generator is returned, so bad arguments raise at once.

    Parameters
    ----------
    image : array_like or path
        As for :func:`deblur`, held in memory (use :func:`deblur` for dask or zarr input); a
        path names an image file, read whole.
    model, channel_axis, tile_size, overlap, device, in_range, precision : optional
        The settings, as for :func:`deblur` (documented on :class:`DeblurOptions`).
    options : DeblurOptions, optional
        All the settings in one object, instead of the keywords.

    Returns
    -------
    generator of Progress
        Yields ``Progress(done, total)`` after each tile; its return value is the deblurred
        image (same shape and dtype as ``image``).
    """
    opts = merge_options(
        options,
        model=model,
        channel_axis=channel_axis,
        tile_size=tile_size,
        overlap=overlap,
        device=device,
        in_range=in_range,
        precision=precision,
    )
    alpha = None
    if isinstance(image, (str, os.PathLike)):
        data, opts, alpha = _read_file(image, opts)
        if data is None:
            raise TypeError(
                f"iter_deblur deblurs images held in memory, and {str(image)!r} is a folder (a "
                "zarr store, read lazily): use deblur or deblur_to_zarr for it"
            )
        image = data
    return _iter(image, opts, alpha)


def _iter(
    image: npt.ArrayLike, options: DeblurOptions, alpha: bool | None = None
) -> Generator[Progress, None, np.ndarray]:
    """:func:`iter_deblur`, told by an image file whether its last channel is alpha."""
    arr = check_image(image)
    plan = make_plan(arr, options, alpha=alpha)
    return run_frames(plan, np.empty_like(arr))


def deblur_image(
    image: npt.ArrayLike,
    options: DeblurOptions,
    *,
    alpha: bool | None = None,
    progress: bool | Callable[[int, int], object] = False,
) -> np.ndarray:
    """:func:`deblur` of an image held in memory whose reader knows more than its shape says:
    ``alpha=True`` when its last channel (on ``options.channel_axis``) is transparency, copied
    through as it is (a gray+alpha or RGBA file), False when it is not, None to decide from
    the shape as :func:`deblur` does."""
    return _drain(_iter(image, options, alpha), progress)


def _read_file(
    path: str | os.PathLike, options: DeblurOptions
) -> tuple[np.ndarray | None, DeblurOptions, bool | None]:
    """An image file's data, the options with its channel axis (the caller's, else the
    file's), and its alpha; ``None`` data for a folder (a zarr store). A missing path is an
    error that says what a path may name."""
    from ..io.files import open_image

    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"image {str(path)!r} does not exist; a path may name an image file (.tif, .png, "
            ".jpg, ...) or a zarr store"
        )
    if p.is_dir():
        return None, options, None
    info = open_image(p)
    if options.channel_axis is not None or info.channel_axis is None:
        return info.data, options, None
    alpha = True if info.alpha else None
    return info.data, options.replace(channel_axis=info.channel_axis), alpha


def _deblur_lazy(arr: da.Array, options: DeblurOptions) -> da.Array:
    """Lazy path: the same plan, then one dask graph (see napari_srn.inference.lazy)."""
    from .lazy import deblur_lazy

    check_dtype_and_shape(arr.dtype, arr.shape)
    return deblur_lazy(make_plan(arr, options, lazy=True))


def _drain(
    gen: Generator[Progress, None, np.ndarray], progress: bool | Callable[[int, int], object]
) -> np.ndarray:
    """Run :func:`iter_deblur`'s generator to its end, reporting each step as ``progress``
    asks (see :func:`deblur`), and return its result."""
    with reporter(progress, desc="deblur", unit="tile", min_total=1, leave=False) as report:
        while True:
            try:
                step = next(gen)
            except StopIteration as stop:
                return stop.value
            report(step)


@overload
def deblur(
    image: np.ndarray,
    *,
    model: ModelLike = ...,
    channel_axis: int | None = ...,
    tile_size: int | None = ...,
    overlap: int | None = ...,
    device: str | torch.device | None = ...,
    progress: bool | Callable[[int, int], object] = ...,
    in_range: tuple[float, float] | None = ...,
    precision: str = ...,
    options: DeblurOptions | None = ...,
) -> np.ndarray: ...
@overload
def deblur(
    image: ImageLike,
    *,
    model: ModelLike = ...,
    channel_axis: int | None = ...,
    tile_size: int | None = ...,
    overlap: int | None = ...,
    device: str | torch.device | None = ...,
    progress: bool | Callable[[int, int], object] = ...,
    in_range: tuple[float, float] | None = ...,
    precision: str = ...,
    options: DeblurOptions | None = ...,
) -> np.ndarray | da.Array: ...
def deblur(
    image: ImageLike,
    *,
    model: ModelLike = "default",
    channel_axis: int | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int, int], object] = False,
    in_range: tuple[float, float] | None = None,
    precision: str = "auto",
    options: DeblurOptions | None = None,
) -> np.ndarray | da.Array:
    """Remove camera shake and motion blur with a scale-recurrent network (SRN-DeblurNet).

    Parameters
    ----------
    image : ndarray, dask array, zarr array, or path to an image file or a zarr store
        ``(..., H, W)`` gray or ``(..., H, W, C)`` (see ``channel_axis``) image; leading axes
        (time, z, ...) are deblurred frame by frame. dtype uint8, uint16, other integers,
        float32 or float64 (float16 too). Not modified. A dask or zarr array (zarr 2 or 3
        stores; for an OME-Zarr image, its full-resolution level) is processed **lazily**:
        the result is a dask array, and computing part of it runs the network only on the
        tiles that part needs. An image file (.tif, .png, .jpg, ...) is read whole, as
        :func:`napari_srn.io.open_image` reads it, and its result is an ndarray.
    model : str, path or torch.nn.Module, optional
        ``"default"``, a name from :func:`napari_srn.list_models`, a ``.safetensors`` file
        written by napari-srn, or a loaded model (see :func:`napari_srn.load_model`).
    channel_axis : int or None, optional
        Axis holding color channels (scikit-image convention); None means grayscale. With 4
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
        Context in pixels read on each side of a tile and then discarded; None uses the
        model's ``halo`` (24 for the default model).
    device : str, torch.device or None, optional
        None uses CUDA when available, else the CPU. Asking for a device that is not available
        raises ValueError.
    progress : bool or callable, optional
        True shows a tqdm bar on stderr when there is more than one tile or frame; a callable
        is called as ``progress(done, total)`` after every tile. Ignored for lazy input (use
        :func:`napari_srn.deblur_to_zarr`, or dask's diagnostics when computing).
    in_range : (float, float), optional
        Input values that map to the model's 0 and 1; None chooses as described below. Give it
        for lazy input to skip the pass over the data that finding the range takes, or to map
        separately processed images the same way.
    precision : {"auto", "float32", "bfloat16", "float16"}, optional
        Arithmetic of the network's convolutions (autocast). ``"auto"`` uses bfloat16 on a CPU
        that computes it natively (AMX or AVX512-BF16: several times faster, within 50 dB
        PSNR of float32) and on CUDA (float16 on GPUs without bfloat16), float32 elsewhere;
        ``"float32"`` everywhere gives the reference result. float16 needs CUDA.
    options : DeblurOptions, optional
        All the settings above (``model`` to ``precision``, but not ``progress``) in one
        object, instead of the keywords (giving both is a TypeError).

    Returns
    -------
    ndarray or dask array
        Same shape and dtype as ``image`` (a dask array with chunks on the tile grid for
        lazy input). uint8 maps 0..255 to the model's [0, 1]; floats
        already in [0, 1] are used as they are; other data (uint16 microscopy, floats outside
        [0, 1]) map their own min..max over the whole array to [0, 1] and back, so the output
        stays within the input's range.

    Raises
    ------
    TypeError
        For a bool, complex or non-numeric image, or a wrongly typed argument.
    ValueError
        For an empty or 1-D image, NaN or infinite values, a channel count the model cannot
        take, a bad ``tile_size``/``overlap``/``precision``, or an unavailable device.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_srn import deblur
    >>> from napari_srn.sample import blurred_sample
    >>> blurred = blurred_sample()
    >>> sharp = deblur(blurred, channel_axis=-1, device="cpu")  # doctest: +SKIP
    >>> sharp.shape == blurred.shape and sharp.dtype == blurred.dtype  # doctest: +SKIP
    True
    """
    from ..io.zarr import is_lazy_source, open_lazy

    opts = merge_options(
        options,
        model=model,
        channel_axis=channel_axis,
        tile_size=tile_size,
        overlap=overlap,
        device=device,
        in_range=in_range,
        precision=precision,
    )
    alpha = None
    if isinstance(image, (str, os.PathLike)):
        data, opts, alpha = _read_file(image, opts)
        image = image if data is None else data
    if is_lazy_source(image):
        return _deblur_lazy(open_lazy(image), opts)
    # in memory: folders are lazy sources
    return deblur_image(cast("npt.ArrayLike", image), opts, alpha=alpha, progress=progress)
