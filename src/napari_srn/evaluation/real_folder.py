"""A real-blur folder read: its scored sets of blurred/sharp pairs (with other methods'
published outputs), and its photographs without ground truth.

The folder (normally ``../shared/realblur``, never part of the repository) is laid out as the
package's docstring says; :func:`real_sets` reads the scored sets, :func:`real_no_truth` the
photographs for a contact sheet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "MAX_SHIFT",
    "REAL_SETS",
    "SET_SHIFT",
    "RealPair",
    "real_no_truth",
    "real_sets",
]

#: The scored sets of a real-blur folder (its subfolders), in the table's order.
REAL_SETS = ("gopro", "crops", "levin")
#: Largest integer shift (pixels, along each axis) tried when aligning ``crops`` and ``levin``.
MAX_SHIFT = 5
#: Largest shift tried for each set's pairs (:attr:`RealPair.max_shift`): 0 scores the frame whole.
SET_SHIFT = {"gopro": 0, "crops": MAX_SHIFT, "levin": MAX_SHIFT}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class RealPair:
    """One real-blur image and its ground truth.

    Parameters
    ----------
    folder : str
        Its set, one of :data:`REAL_SETS`.
    name : str
        The file's name without its suffix.
    blurred : ndarray
        The uint8 image as its file holds it: ``(H, W, 3)``, or ``(H, W)`` for grey.
    sharp : ndarray
        Its ground truth, of the same shape.
    max_shift : int, optional
        Largest integer shift tried when scoring it; 0 scores the whole frame as it is (see
        :func:`real_score`).
    published : dict, optional
        ``{method: uint8 image}``: other methods' published outputs for ``blurred``.
    """

    folder: str
    name: str
    blurred: np.ndarray
    sharp: np.ndarray
    max_shift: int = 0
    published: dict[str, np.ndarray] = field(default_factory=dict)


def _read_image(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return np.asarray(iio.imread(path))


def _images_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)


def _real_root(root: str | os.PathLike) -> Path:
    """``root`` as a Path, or FileNotFoundError saying where the folder comes from."""
    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(
            f"no real-blur folder at {path}: its images are not part of the repository (their "
            "licences are mixed); pass the path of a copy, such as ../shared/realblur"
        )
    return path


def _published(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{frame: {method: image}}`` from ``folder/<Method>/<frame>.png``; {} without the folder."""
    out: dict[str, dict[str, np.ndarray]] = {}
    if folder.is_dir():
        for method in sorted(d for d in folder.iterdir() if d.is_dir()):
            for f in _images_in(method):
                out.setdefault(f.stem, {})[method.name] = _read_image(f)
    return out


def _read_set(root: Path, folder: str) -> list[RealPair]:
    """The pairs of ``root/folder``: each file of ``blur/`` with the file of that name in
    ``sharp/``."""
    blur, sharp = root / folder / "blur", root / folder / "sharp"
    files = _images_in(blur)
    missing = [f.name for f in files if not (sharp / f.name).is_file()]
    if missing:
        raise FileNotFoundError(f"{sharp} lacks {', '.join(missing)} (the truth of {blur}'s)")
    published = _published(root / folder / "published")
    pairs = []
    for f in files:
        blurred, truth = _read_image(f), _read_image(sharp / f.name)
        if blurred.shape != truth.shape:
            raise ValueError(
                f"{f} is {blurred.shape} but its truth is {truth.shape}: they must match"
            )
        shift, extra = SET_SHIFT[folder], published.get(f.stem, {})
        pairs.append(RealPair(folder, f.stem, blurred, truth, shift, extra))
    return pairs


def real_sets(root: str | os.PathLike) -> dict[str, list[RealPair]]:
    """The scored sets of a real-blur folder.

    Each set of :data:`REAL_SETS` is a subfolder with ``blur/`` and ``sharp/`` folders; a
    blurred image (PNG or JPEG) is paired with the file of the same name in ``sharp/``.
    ``gopro/published/<Method>/<frame>.png`` holds other methods' outputs for a GoPro frame.

    Parameters
    ----------
    root : path
        The folder, normally ``../shared/realblur`` (never part of the repository).

    Returns
    -------
    dict
        ``{set: [RealPair, ...]}`` in the order of :data:`REAL_SETS`, pairs in name order. A
        set whose ``blur/`` or ``sharp/`` folder is absent or empty is left out (compare the
        keys with :data:`REAL_SETS` to say which).

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder, or a blurred image has no sharp file of its name.
    ValueError
        If a blurred image and its truth differ in shape.
    """
    path = _real_root(root)
    sets = {}
    for folder in REAL_SETS:
        if (path / folder / "blur").is_dir() and (path / folder / "sharp").is_dir():
            pairs = _read_set(path, folder)
            if pairs:
                sets[folder] = pairs
    return sets


def real_no_truth(root: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """The real photographs without ground truth of a real-blur folder, to look at.

    Parameters
    ----------
    root : path
        The real-blur folder (:func:`real_sets`); its ``real_no_truth/`` subfolder is read.

    Returns
    -------
    list of (str, ndarray)
        Each PNG or JPEG file's name without its suffix and its pixels, in name order.

    Raises
    ------
    FileNotFoundError
        If ``root`` or its ``real_no_truth/`` subfolder is not a folder.
    """
    folder = _real_root(root) / "real_no_truth"
    if not folder.is_dir():
        raise FileNotFoundError(f"no {folder}: there are no real photographs to show")
    return [(f.stem, _read_image(f)) for f in _images_in(folder)]
