"""Read and write image files: TIFF through tifffile, PNG through imagecodecs (libpng: 8 and 16
bit, grey, grey+alpha, RGB, RGBA), JPEG and others through imageio.

Writes go to a temporary file beside the destination and are renamed into place once complete,
so an interrupted run never leaves a half-written file under the final name, and an existing
file is replaced only when asked to. What a file says about its axes is kept: a TIFF's axes
(``TYX``, ``ZCYX``, ...) and its planar (``SYX``) or interleaved (``YXS``) colour layout, a
PNG's alpha channel.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["ImageFile", "check_output", "open_image", "read_image", "write_image"]

TIFF = {".tif", ".tiff"}
EIGHT_BIT_ONLY = {".jpg", ".jpeg", ".bmp"}
#: Formats that hold one 2D image; the sample counts each can hold (None: grey).
SAMPLES = {".png": (None, 2, 3, 4), ".jpg": (None, 3), ".jpeg": (None, 3), ".bmp": (None, 3)}
SUPPORTED = TIFF | EIGHT_BIT_ONLY | {".png"}
#: Formats that are read but never written, and why.
REFUSED = {
    ".gif": "GIF holds a palette of 256 colours, so the result would be quantised; write .png "
    "(lossless) instead"
}


@dataclass(frozen=True)
class ImageFile:
    """An image read from a file, with what the file says about it.

    Attributes
    ----------
    data : ndarray
    channel_axis : int or None
        The axis of colour samples (grey+alpha, RGB, RGBA), or None.
    alpha : bool
        The last sample on ``channel_axis`` is transparency (to be kept, not deblurred).
    axes : str or None
        The file's axis names (tifffile's letters: ``T``, ``Z``, ``C``, ``Y``, ``X``, ``S``
        for colour samples), when it records them.
    """

    data: np.ndarray
    channel_axis: int | None
    alpha: bool = False
    axes: str | None = None


def open_image(path: str | os.PathLike) -> ImageFile:
    """Read an image file with its axes; see :class:`ImageFile`.

    In a TIFF, tifffile's axes say which axis holds colour samples (``S``); microscopy channels
    (``C``) are kept as an axis of their own and deblurred as separate grey images. In a PNG
    the samples are the last axis (2: grey+alpha, 3: RGB, 4: RGBA); in other formats a last axis
    of 3 or 4 entries is colour.
    """
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(
            f"input {str(p)!r} is a folder, not an image file; give an image file (.tif, .png, "
            ".jpg, ...) or a zarr store (a folder holding zarr.json, .zarray or .zgroup)"
        )
    if not p.is_file():
        raise FileNotFoundError(f"input file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix in TIFF:
        import tifffile

        try:
            with tifffile.TiffFile(p) as tif:
                series = tif.series[0]
                axes = series.axes
                arr = series.asarray()
                extra = tuple(getattr(series.keyframe, "extrasamples", ()) or ())
        except Exception as err:  # tifffile raises many types for a damaged file
            raise ValueError(f"cannot read {str(p)!r} as a TIFF image: {err}") from err
        cax = axes.index("S") if "S" in axes else None
        alpha = cax is not None and bool(extra) and int(extra[-1]) in (1, 2)
        return ImageFile(arr, cax, alpha, axes)
    if suffix == ".png":
        import imagecodecs

        try:
            arr = imagecodecs.png_decode(p.read_bytes())
        except Exception as err:
            raise ValueError(f"cannot read {str(p)!r} as a PNG image: {err}") from err
        cax = arr.ndim - 1 if arr.ndim == 3 else None
        return ImageFile(arr, cax, cax is not None and arr.shape[-1] in (2, 4))
    import imageio.v3 as iio

    try:
        arr = iio.imread(p, plugin="pillow")  # JPEG, BMP, GIF: Pillow, never a guessed plugin
    except Exception as err:  # imageio raises many types for unreadable files
        raise ValueError(
            f"cannot read {str(p)!r} as an image (damaged, or not a {p.suffix} file?): {err}"
        ) from err
    color = arr.ndim == 3 and arr.shape[-1] in (3, 4)
    return ImageFile(arr, arr.ndim - 1 if color else None, color and arr.shape[-1] == 4)


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int | None]:
    """Read an image file; return ``(array, channel_axis)`` (see :func:`open_image`, which
    also says whether the file has an alpha channel and how it names its axes)."""
    image = open_image(path)
    return image.data, image.channel_axis


def check_output(
    path: str | os.PathLike,
    dtype: npt.DTypeLike,
    *,
    overwrite: bool = False,
    shape: tuple[int, ...] | None = None,
    channel_axis: int | None = None,
    source: str | os.PathLike | None = None,
) -> Path:
    """Everything that can be checked about an output file before any work: its format is
    known and can hold ``dtype`` (and, given, ``shape`` with its ``channel_axis``), its folder
    exists, it is not the ``source`` file (whatever the spelling: a relative path, a symbolic
    or a hard link), and it is new (or ``overwrite``)."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"output {str(p)!r} is a folder; give a file name inside it")
    suffix = p.suffix.lower()
    if suffix in REFUSED:
        raise ValueError(f"cannot write {suffix} files: {REFUSED[suffix]}")
    if suffix not in SUPPORTED:
        what = f"output {str(p)!r} has no file extension"
        if suffix:
            what = f"cannot write {suffix} files"
        raise ValueError(
            f"{what}; use .tif (any dtype), .png (8 or 16 bit), .jpg (8 bit), or .zarr for an "
            "OME-Zarr image"
        )
    if source is not None and p.exists() and os.path.samefile(source, p):
        raise ValueError(
            f"output {str(p)!r} is the input file {str(source)!r}; write the result to another "
            "file (the input is never replaced, even with --overwrite)"
        )
    if p.exists() and not overwrite:
        raise FileExistsError(
            f"output {str(p)!r} already exists; pass overwrite=True "
            "(--overwrite on the command line) to replace it"
        )
    if not p.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(p.parent)!r} does not exist")
    _check_format(suffix, np.dtype(dtype), shape, channel_axis)
    return p


def _check_format(
    suffix: str, dtype: np.dtype, shape: tuple[int, ...] | None, channel_axis: int | None
) -> None:
    """The format of ``suffix`` holds this dtype, and this shape with its samples."""
    if suffix in EIGHT_BIT_ONLY and dtype != np.uint8:
        raise ValueError(
            f"{suffix} files hold 8-bit images only, got {dtype}; "
            "write .tif (any dtype) or .png (8 or 16 bit) instead"
        )
    if suffix == ".png" and dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f".png files hold 8- or 16-bit images only, got {dtype}; write .tif instead"
        )
    if shape is None or suffix in TIFF:
        return
    if channel_axis is not None and not -len(shape) <= channel_axis < len(shape):
        raise ValueError(f"channel_axis={channel_axis} is out of range for shape {tuple(shape)}")
    samples = None if channel_axis is None else shape[channel_axis]
    if len(shape) - (samples is not None) != 2 or samples not in (None, 2, 3, 4):
        raise ValueError(
            f"{suffix} files hold one 2D grey or colour image, not shape {tuple(shape)}"
            f"{'' if channel_axis is None else f' with channel_axis={channel_axis}'}; "
            "write .tif (stacks, any channels) or .zarr instead"
        )
    if samples not in SAMPLES[suffix]:
        kind = "grey+alpha" if samples == 2 else "RGBA or CMYK"
        raise ValueError(
            f"{suffix} files hold grey or RGB images, not {samples} channels ({kind}); write "
            ".png (which keeps an alpha channel) or .tif instead"
        )


def _file_mode(existing: Path) -> int:
    """The mode a new file would get (0666 less the umask), or the replaced file's own."""
    try:
        return existing.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_image(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    channel_axis: int | None = None,
    overwrite: bool = False,
    axes: str | None = None,
    alpha: bool = False,
) -> Path:
    """Write ``image`` to ``path`` (format from the suffix), atomically.

    ``channel_axis`` holds colour samples (with ``alpha``, the last is transparency). A TIFF
    keeps the layout it is given (samples first: planar, last: interleaved) and records
    ``axes`` (tifffile's letters, e.g. ``"TYX"``) when given; other formats store samples last.
    """
    p = check_output(
        path, image.dtype, overwrite=overwrite, shape=image.shape, channel_axis=channel_axis
    )
    suffix = p.suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".partial{p.suffix}", dir=p.parent)
    os.close(fd)
    try:
        cax = None if channel_axis is None else channel_axis % image.ndim
        if suffix in TIFF:
            _write_tiff(tmp, image, cax, axes, alpha)
        elif suffix == ".png":
            import imagecodecs

            data = image if cax in (None, image.ndim - 1) else np.moveaxis(image, cax, -1)
            Path(tmp).write_bytes(imagecodecs.png_encode(np.ascontiguousarray(data)))
        else:
            import imageio.v3 as iio

            data = image if cax in (None, image.ndim - 1) else np.moveaxis(image, cax, -1)
            iio.imwrite(tmp, data, extension=p.suffix)
        os.chmod(tmp, _file_mode(p))  # mkstemp makes 0600 files
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def _write_tiff(
    tmp: str, image: np.ndarray, cax: int | None, axes: str | None, alpha: bool
) -> None:
    import tifffile

    samples = None if cax is None else image.shape[cax]
    rgb = samples is not None and samples - alpha == 3
    color = rgb or (alpha and samples == 2)
    kwargs: dict = {"photometric": "rgb" if rgb else "minisblack"}
    if color:
        assert cax is not None
        if cax not in (image.ndim - 3, image.ndim - 1):  # TIFF stores samples before YX or last
            image = np.moveaxis(image, cax, -1)
            if axes is not None and len(axes) == image.ndim:
                axes = axes[:cax] + axes[cax + 1 :] + axes[cax]
            cax = image.ndim - 1
        kwargs["planarconfig"] = "separate" if cax == image.ndim - 3 else "contig"
        if alpha:
            kwargs["extrasamples"] = ["unassalpha"]
    elif axes is not None:
        axes = axes.upper().replace("S", "C")  # channels that are not colour samples
    if axes is not None and len(axes) == image.ndim:
        kwargs["metadata"] = {"axes": axes.upper()}
    tifffile.imwrite(tmp, image, **kwargs)
