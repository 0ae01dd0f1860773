"""Read and write image files: TIFF through tifffile, PNG/JPEG and others through imageio.

Writes go to a temporary file beside the destination and are renamed into place once complete,
so an interrupted run never leaves a half-written file under the final name, and an existing
file is replaced only when asked to.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["check_output", "read_image", "write_image"]

TIFF = {".tif", ".tiff"}
EIGHT_BIT_ONLY = {".jpg", ".jpeg", ".bmp", ".gif"}
SUPPORTED = TIFF | EIGHT_BIT_ONLY | {".png"}


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int | None]:
    """Read an image file; return ``(array, channel_axis)``.

    ``channel_axis`` is the axis of colour samples (RGB/RGBA) or None. In a TIFF, tifffile's
    axes say which axis holds colour samples (``S``); microscopy channels (``C``) are kept as
    a leading axis and deblurred as separate gray images. In other formats a last axis of 3
    or 4 entries is colour.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"input file {str(p)!r} does not exist")
    if p.suffix.lower() in TIFF:
        import tifffile

        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            axes = series.axes
            arr = series.asarray()
        return arr, (axes.index("S") if "S" in axes else None)
    import imageio.v3 as iio

    try:
        arr = iio.imread(p)
    except Exception as err:  # imageio raises many types for unreadable files
        raise ValueError(f"cannot read {str(p)!r} as an image: {err}") from err
    return arr, (arr.ndim - 1 if arr.ndim == 3 and arr.shape[-1] in (3, 4) else None)


def check_output(path: str | os.PathLike, dtype, *, overwrite: bool = False) -> Path:
    """Everything that can be checked about an output file before any work: its format is
    known and can hold ``dtype``, its folder exists, and it is new (or ``overwrite``)."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"output {str(p)!r} is a folder; give a file name inside it")
    suffix = p.suffix.lower()
    if not suffix:
        raise ValueError(
            f"output {str(p)!r} has no file extension; use .tif (any dtype), .png (8 or 16 "
            "bit), .jpg (8 bit), or .zarr for an OME-Zarr image"
        )
    if suffix not in SUPPORTED:
        raise ValueError(
            f"cannot write {suffix} files; use .tif (any dtype), .png (8 or 16 bit), .jpg "
            "(8 bit), or .zarr for an OME-Zarr image"
        )
    if p.exists() and not overwrite:
        raise FileExistsError(
            f"output {str(p)!r} already exists; pass overwrite=True "
            "(--overwrite on the command line) to replace it"
        )
    if not p.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(p.parent)!r} does not exist")
    dtype = np.dtype(dtype)
    if suffix in EIGHT_BIT_ONLY and dtype != np.uint8:
        raise ValueError(
            f"{suffix} files hold 8-bit images only, got {dtype}; "
            "write .tif (any dtype) or .png (8 or 16 bit) instead"
        )
    if suffix == ".png" and dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f".png files hold 8- or 16-bit images only, got {dtype}; write .tif instead"
        )
    return p


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
) -> Path:
    """Write ``image`` to ``path`` (format from the suffix), atomically."""
    p = check_output(path, image.dtype, overwrite=overwrite)
    suffix = p.suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".partial{p.suffix}", dir=p.parent)
    os.close(fd)
    try:
        if suffix in TIFF:
            import tifffile

            rgb = channel_axis is not None and image.shape[channel_axis] in (3, 4)
            if rgb and channel_axis % image.ndim != image.ndim - 1:
                image = np.moveaxis(image, channel_axis, -1)
            tifffile.imwrite(tmp, image, photometric="rgb" if rgb else "minisblack")
        else:
            import imageio.v3 as iio

            iio.imwrite(tmp, image, extension=p.suffix)
        os.chmod(tmp, _file_mode(p))  # mkstemp makes 0600 files
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
