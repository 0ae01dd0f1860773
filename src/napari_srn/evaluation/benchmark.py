"""Deblurring quality on held-out photographs: blurred input vs non-blind Wiener vs a model.

The benchmark is generated, reproducibly, from photographs napari-srn never trains on:
scikit-image's bundled colour photographs (:data:`PHOTOS`), or a folder of PNG files such as
the ``mate-backgrounds`` held-out set that ``scripts/data/prepare_photos.py`` writes to
:data:`HELDOUT_MATE`. Each photo's central crop is blurred by seeded random camera-shake
kernels of 13 to 25 pixels, given mild Gaussian noise (sigma 0.5-1 % of the range) and rounded
to uint8. Scores are mean PSNR/SSIM over the pairs (scikit-image metrics, data range 255).

``scripts/evaluate/eval_deblur.py`` is the command line on top of this module and
``scripts/release/ship_default.py`` uses it to decide whether a model may become the default.

Real blur
---------
The second half of the module scores blur that nobody on this project made: a folder (normally
``../shared/realblur``, never part of the repository) laid out as

* ``gopro/blur``, ``gopro/sharp``: GoPro test frames, scored on the whole frame; the published
  outputs of other methods in ``gopro/published/<Method>/<frame>.png`` are scored beside ours;
* ``crops/blur``, ``crops/sharp``: real captures and frame averages, JPEG crops;
* ``levin/blur``, ``levin/sharp``: Levin et al.'s grey images, one sharp file per blurred one;
* ``real_no_truth/``: real photographs without ground truth, for a contact sheet.

``crops`` and ``levin`` are scored after the best integer shift within +-:data:`MAX_SHIFT` px
(some of their pairs are a few pixels apart), chosen by PSNR for every image and every method
alike, on the frame trimmed by :data:`MAX_SHIFT` px on each side. :func:`real_sets` reads the
folder, :func:`real_baselines` and :func:`real_scores` give one :class:`RealScore` per image
and method, :func:`real_table` the per-set means, and :func:`contact_sheet` the figure.

Examples
--------
>>> from napari_srn import load_model
>>> from napari_srn.evaluation import baselines, format_table, make_benchmark, model_rows
>>> pairs = make_benchmark()  # doctest: +SKIP
>>> rows, balance, wiener = baselines(pairs)  # doctest: +SKIP
>>> more, outputs = model_rows(load_model("default", device="cpu"), pairs)  # doctest: +SKIP
>>> print(format_table({**rows, **more}))  # doctest: +SKIP
>>> from napari_srn.evaluation import real_baselines, real_scores, real_sets, real_table
>>> sets = real_sets("../shared/realblur")  # doctest: +SKIP
>>> scores = real_baselines(sets) + real_scores(load_model("default", device="cpu"), sets)
... # doctest: +SKIP
>>> print(format_table(real_table(scores)))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from skimage import data
from skimage.color import rgb2gray
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import wiener

from ..inference.api import deblur
from ..inference.options import ModelLike
from ..synthesis.kernels import blur_image, motion_kernel

__all__ = [
    "BALANCES",
    "HELDOUT_MATE",
    "MATE_SEED",
    "MAX_SHIFT",
    "PHOTOS",
    "REAL_PAIRS",
    "REAL_SETS",
    "SEED",
    "Pair",
    "RealPair",
    "RealScore",
    "baselines",
    "benchmark_photos",
    "best_shift",
    "contact_sheet",
    "format_table",
    "gray16_scores",
    "grid_image",
    "make_benchmark",
    "model_name",
    "model_rows",
    "on_sharp_input",
    "real_baselines",
    "real_gains",
    "real_no_truth",
    "real_score",
    "real_scores",
    "real_sets",
    "real_table",
    "restore",
    "score",
    "textured_window",
    "wiener_deconvolve",
]

#: scikit-image's colour photographs that make the benchmark (``skimage.data`` names).
PHOTOS = [
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "stereo_motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
]
#: Wiener balances tried; the baseline reports the best one on average.
BALANCES = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
#: Seed of the kernels and noise for scikit-image's photos.
SEED = 20181802
#: Seed of the kernels and noise for a folder of photos (the mate-backgrounds held-out set).
MATE_SEED = 20220531
#: Where ``scripts/data/prepare_photos.py`` writes the second held-out set (relative to the
#: repository).
HELDOUT_MATE = Path("data") / "photos" / "heldout" / "mate"


@dataclass(frozen=True)
class Pair:
    """One benchmark image: the sharp crop, its blurred uint8 version and the true kernel.

    Parameters
    ----------
    name : str
        ``"<photo>#<k>"``: the photo and the index of its blur.
    sharp : ndarray
        The photo's uint8 ``(H, W, 3)`` central crop.
    blurred : ndarray
        The same crop blurred by ``kernel``, noise added, rounded to uint8.
    kernel : ndarray
        The true blur kernel, float ``(size, size)``, summing to 1.
    """

    name: str
    sharp: np.ndarray
    blurred: np.ndarray
    kernel: np.ndarray


def benchmark_photos(source: str | os.PathLike = "skimage") -> list[tuple[str, np.ndarray]]:
    """The photographs a benchmark is made from.

    Parameters
    ----------
    source : "skimage" or path
        ``"skimage"`` for scikit-image's photos (:data:`PHOTOS`), or a folder whose ``*.png``
        files (RGB or RGBA, read in name order) are the photos.

    Returns
    -------
    list of (str, ndarray)
        Each photo's name (the ``skimage.data`` name or the file's stem) and its pixels.

    Raises
    ------
    FileNotFoundError
        If the folder holds no ``.png`` file.
    """
    if str(source) == "skimage":
        out = []
        for name in PHOTOS:
            photo = getattr(data, name)()
            out.append((name, photo[0] if isinstance(photo, tuple) else photo))
        return out
    import imageio.v3 as iio

    files = sorted(Path(source).glob("*.png"))
    if not files:
        raise FileNotFoundError(
            f"no photos in {source}: run python scripts/data/prepare_photos.py first"
        )
    return [(f.stem, iio.imread(f)) for f in files]


def make_benchmark(
    source: str | os.PathLike = "skimage",
    *,
    crop: int = 384,
    per_photo: int = 2,
    seed: int | None = None,
) -> list[Pair]:
    """Blurred/sharp pairs made reproducibly from held-out photos.

    Parameters
    ----------
    source : "skimage" or path, optional
        The photos, as for :func:`benchmark_photos`.
    crop : int, optional
        Side of each photo's central crop (smaller photos are used whole).
    per_photo : int, optional
        Pairs per photo, each with its own kernel and noise.
    seed : int or None, optional
        Seed of the kernels and noise; None uses :data:`SEED` for scikit-image's photos and
        :data:`MATE_SEED` for a folder.

    Returns
    -------
    list of Pair
        ``len(photos) * per_photo`` pairs named ``"<photo>#<k>"``: uint8 ``(H, W, 3)`` sharp
        and blurred images and the float ``(size, size)`` kernel, size 13 to 25.
    """
    if seed is None:
        seed = SEED if str(source) == "skimage" else MATE_SEED
    rng = np.random.default_rng(seed)
    pairs = []
    for name, photo in benchmark_photos(source):
        h, w = photo.shape[:2]
        ch, cw = min(crop, h), min(crop, w)
        sharp = photo[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw, :3]
        for k in range(per_photo):
            size = int(rng.choice(np.arange(13, 26, 2)))
            kernel = motion_kernel(size, length=rng.uniform(0.6, 1.0) * size, rng=rng)
            blurred = blur_image(sharp.astype(np.float32) / 255, kernel, channel_axis=-1)
            blurred += rng.normal(0, rng.uniform(0.005, 0.01), blurred.shape)
            blurred = np.clip(np.rint(blurred * 255), 0, 255).astype(np.uint8)
            pairs.append(Pair(f"{name}#{k}", sharp, blurred, kernel))
    return pairs


def wiener_deconvolve(blurred: np.ndarray, kernel: np.ndarray, balance: float) -> np.ndarray:
    """Non-blind Wiener deconvolution of a uint8 RGB image given its true kernel.

    Parameters
    ----------
    blurred : ndarray
        A uint8 ``(H, W, 3)`` image.
    kernel : ndarray
        The blur kernel, ``(size, size)``.
    balance : float
        Wiener's regularisation (see ``skimage.restoration.wiener``).

    Returns
    -------
    ndarray
        The uint8 ``(H, W, 3)`` result; the image is reflect-padded by the kernel's size first.
    """
    pad = kernel.shape[0]
    x = np.pad(blurred.astype(np.float64) / 255, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.stack([wiener(x[..., c], kernel, balance, clip=True) for c in range(3)], axis=-1)
    return np.clip(np.rint(out[pad:-pad, pad:-pad] * 255), 0, 255).astype(np.uint8)


def score(restored: list[np.ndarray], pairs: list[Pair]) -> tuple[float, float]:
    """Mean PSNR and SSIM of restored images against their pairs' sharp images.

    Parameters
    ----------
    restored : list of ndarray
        The uint8 ``(H, W, 3)`` images, one per pair, in the pairs' order.
    pairs : list of Pair
        The benchmark (:func:`make_benchmark`).

    Returns
    -------
    (float, float)
        Mean PSNR in dB and mean SSIM, data range 255 (PSNR is inf for identical images).
    """
    psnr = [
        peak_signal_noise_ratio(p.sharp, r, data_range=255)
        for p, r in zip(pairs, restored, strict=True)
    ]
    ssim = [
        structural_similarity(p.sharp, r, channel_axis=-1, data_range=255)
        for p, r in zip(pairs, restored, strict=True)
    ]
    return float(np.mean(psnr)), float(np.mean(ssim))


def baselines(pairs: list[Pair]) -> tuple[dict[str, tuple[float, float]], float, list[np.ndarray]]:
    """Scores of the blurred input and of Wiener deconvolution at its best balance.

    Parameters
    ----------
    pairs : list of Pair
        The benchmark (:func:`make_benchmark`).

    Returns
    -------
    rows : dict
        ``{"blurred input": (psnr, ssim), "Wiener, true kernel (balance B)": (psnr, ssim)}``.
    balance : float
        The balance among :data:`BALANCES` with the best mean PSNR.
    outputs : list of ndarray
        Wiener's uint8 output for each pair at that balance.
    """
    rows = {"blurred input": score([q.blurred for q in pairs], pairs)}
    wieners = {b: [wiener_deconvolve(q.blurred, q.kernel, b) for q in pairs] for b in BALANCES}
    best = max(BALANCES, key=lambda b: score(wieners[b], pairs)[0])
    rows[f"Wiener, true kernel (balance {best})"] = score(wieners[best], pairs)
    return rows, best, wieners[best]


def restore(model: ModelLike, pairs: list[Pair], key: str = "blurred") -> list[np.ndarray]:
    """The model's output for each pair's blurred (or sharp) image.

    Parameters
    ----------
    model : str, path or torch.nn.Module
        As for :func:`napari_srn.deblur`; pass a loaded model to load it once.
    pairs : list of Pair
        The benchmark (:func:`make_benchmark`).
    key : {"blurred", "sharp"}, optional
        Which image of each pair the model is given.

    Returns
    -------
    list of ndarray
        The uint8 ``(H, W, 3)`` outputs, one per pair.
    """
    return [deblur(getattr(q, key), model=model, channel_axis=-1) for q in pairs]


def on_sharp_input(model: ModelLike, pairs: list[Pair]) -> tuple[float, float]:
    """How much a model changes images that need no deblurring.

    Parameters
    ----------
    model : str, path or torch.nn.Module
        As for :func:`napari_srn.deblur`.
    pairs : list of Pair
        The benchmark; every second pair is used (one per photo with ``per_photo=2``).

    Returns
    -------
    (float, float)
        Mean PSNR and SSIM of the output on the sharp photos against themselves (an identity
        scores inf / 1).
    """
    return score(restore(model, pairs[::2], "sharp"), pairs[::2])


def gray16_scores(
    model: ModelLike, pairs: list[Pair]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Scores on a 12-bit grey stack, deblurred in one call as a microscopy user would.

    The pairs' sharp photos (cut to their common central crop) are converted to grey, blurred
    again by their pair's kernel with noise sigma 0.5 % (seed ``SEED + 16``) and stacked into
    a ``uint16`` ``(N, Y, X)`` array deblurred with ``in_range=(0, 4095)``.

    Parameters
    ----------
    model : str, path or torch.nn.Module
        As for :func:`napari_srn.deblur`.
    pairs : list of Pair
        The benchmark (:func:`make_benchmark`).

    Returns
    -------
    input : (float, float)
        Mean PSNR and SSIM (data range 4095) of the blurred stack.
    model : (float, float)
        The same for the model's output.
    """
    rng = np.random.default_rng(SEED + 16)
    h = min(q.sharp.shape[0] for q in pairs)
    w = min(q.sharp.shape[1] for q in pairs)
    sharp, blurred = [], []
    for q in pairs:
        top, left = (q.sharp.shape[0] - h) // 2, (q.sharp.shape[1] - w) // 2
        g = rgb2gray(q.sharp[top : top + h, left : left + w]).astype(np.float32)
        b = blur_image(g, q.kernel) + rng.normal(0, 0.005, g.shape)
        sharp.append(np.rint(g * 4095).astype(np.uint16))
        blurred.append(np.clip(np.rint(b * 4095), 0, 4095).astype(np.uint16))
    sharp_s, blurred_s = np.stack(sharp), np.stack(blurred)
    out = deblur(blurred_s, model=model, in_range=(0, 4095))

    def stack_score(stack: np.ndarray) -> tuple[float, float]:
        ps = [
            peak_signal_noise_ratio(a, b, data_range=4095)
            for a, b in zip(sharp_s, stack, strict=True)
        ]
        ss = [
            structural_similarity(a, b, data_range=4095)
            for a, b in zip(sharp_s, stack, strict=True)
        ]
        return float(np.mean(ps)), float(np.mean(ss))

    return stack_score(blurred_s), stack_score(out)


def model_rows(
    model: torch.nn.Module, pairs: list[Pair], *, sharp: bool = False, gray16: bool = False
) -> tuple[dict[str, tuple[float, float]], list[np.ndarray]]:
    """A model's rows of the benchmark table and its outputs.

    Parameters
    ----------
    model : torch.nn.Module
        A loaded model (:func:`napari_srn.load_model`); rows are named after its card, or its
        class for a model without one.
    pairs : list of Pair
        The benchmark (:func:`make_benchmark`).
    sharp : bool, optional
        Also score the model on the unblurred photos (:func:`on_sharp_input`).
    gray16 : bool, optional
        Also score it on the 12-bit grey stack (:func:`gray16_scores`), with that stack's
        blurred input as a row of its own.

    Returns
    -------
    rows : dict
        ``{"NAME (blind)": (psnr, ssim), ...}`` in the order the command line prints them.
    outputs : list of ndarray
        The model's uint8 output for each pair's blurred image.
    """
    name = model_name(model)
    outputs = restore(model, pairs)
    rows = {f"{name} (blind)": score(outputs, pairs)}
    if sharp:
        rows[f"{name} on the sharp photos"] = on_sharp_input(model, pairs)
    if gray16:
        before, after = gray16_scores(model, pairs)
        rows["12-bit grey stack: blurred input"] = before
        rows[f"12-bit grey stack: {name}"] = after
    return rows, outputs


def model_name(model: torch.nn.Module) -> str:
    """The name a model's rows and figures are given.

    Parameters
    ----------
    model : torch.nn.Module
        A loaded model (:func:`napari_srn.load_model`) or any network.

    Returns
    -------
    str
        The name on its model card, or its class's name for a model without one.
    """
    card = getattr(model, "card", None)
    return card.name if card is not None else type(model).__name__


def format_table(rows: dict[str, tuple[float, float]]) -> str:
    """The rows as a plain-text table: method, PSNR in dB (2 decimals), SSIM (4 decimals).

    Parameters
    ----------
    rows : dict
        ``{method: (psnr, ssim)}``, as :func:`baselines`, :func:`model_rows` and
        :func:`real_table` return.

    Returns
    -------
    str
        A header line and one line per row, without a final newline; the first column is 48
        characters wide, or as wide as the longest method.
    """
    width = max([48, *map(len, rows)])
    lines = [f"{'method':<{width}} {'PSNR dB':>8} {'SSIM':>7}"]
    lines += [f"{k:<{width}} {ps:8.2f} {ss:7.4f}" for k, (ps, ss) in rows.items()]
    return "\n".join(lines)


def grid_image(
    pairs: list[Pair],
    wiener: list[np.ndarray],
    outputs: list[np.ndarray],
    every: int = 4,
    crop: int = 256,
) -> np.ndarray:
    """A before/after figure: rows of blurred | Wiener | model | sharp.

    Parameters
    ----------
    pairs : list of Pair
        The benchmark (:func:`make_benchmark`).
    wiener, outputs : list of ndarray
        Wiener's and the model's uint8 output for each pair.
    every : int, optional
        One row for every ``every``-th pair, starting with the first.
    crop : int, optional
        Side of the central region of each image shown.

    Returns
    -------
    ndarray
        The uint8 ``(H, W, 3)`` figure; rows are separated by 4 white pixels and padded white to
        the widest.
    """
    tiles = []
    for i in range(0, len(pairs), every):
        h, w = pairs[i].sharp.shape[:2]
        top, left = (h - min(h, crop)) // 2, (w - min(w, crop)) // 2
        cut = (slice(top, top + crop), slice(left, left + crop))
        row = [pairs[i].blurred, wiener[i], outputs[i], pairs[i].sharp]
        tiles.append(np.concatenate([a[cut] for a in row], axis=1))
    width = max(t.shape[1] for t in tiles)
    tiles = [
        np.pad(t, ((0, 4), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles
    ]
    return np.concatenate(tiles, axis=0)


# Real blur: a folder of other people's blurred images and their truth (see the module docstring)

#: The scored sets of a real-blur folder (its subfolders), in the table's order.
REAL_SETS = ("gopro", "crops", "levin")
#: The sets of real captures (and frame averages) with ground truth: the mean over their images is
#: the headline figure.
REAL_PAIRS = ("gopro", "crops")
#: Largest integer shift (pixels, along each axis) tried when aligning ``crops`` and ``levin``.
MAX_SHIFT = 5
_SET_SHIFT = {"gopro": 0, "crops": MAX_SHIFT, "levin": MAX_SHIFT}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_INPUT = "blurred input"
_PUBLISHED = " (published)"
_LINE = 20  # height of one line of a contact sheet's labels
_GAP = 4  # white pixels between a contact sheet's tiles and rows


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


@dataclass(frozen=True)
class RealScore:
    """One method's score on one real-blur image.

    Parameters
    ----------
    folder : str
        The image's set, one of :data:`REAL_SETS`.
    name : str
        The image's name (:attr:`RealPair.name`).
    method : str
        ``"blurred input"``, a model's name, or ``"<Method> (published)"``.
    psnr : float
        PSNR in dB against the ground truth (data range 255).
    ssim : float
        SSIM against the ground truth (data range 255), at the same shift.
    shift : (int, int), optional
        The ``(dy, dx)`` the method's output was scored at (:func:`best_shift`).
    """

    folder: str
    name: str
    method: str
    psnr: float
    ssim: float
    shift: tuple[int, int] = (0, 0)


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
        shift, extra = _SET_SHIFT[folder], published.get(f.stem, {})
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


def best_shift(
    image: np.ndarray, reference: np.ndarray, max_shift: int = MAX_SHIFT
) -> tuple[int, int]:
    """The integer shift that best aligns an image with its reference.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` or ``(H, W, C)``, the shape of ``reference``.
    reference : ndarray
        The ground truth.
    max_shift : int, optional
        Largest shift tried along each axis.

    Returns
    -------
    (int, int)
        The ``(dy, dx)`` for which ``image[m + dy : H - m + dy, m + dx : W - m + dx]`` has the
        lowest mean squared error against ``reference[m : H - m, m : W - m]`` (``m`` being
        ``max_shift``): the image's content lies ``dy`` pixels below and ``dx`` to the right
        of the reference's. Ties go to the smallest shift.

    Raises
    ------
    ValueError
        If the shapes differ or the image is not larger than ``2 * max_shift``.
    """
    m = max_shift
    h, w = reference.shape[:2]
    if image.shape != reference.shape or min(h, w) <= 2 * m:
        raise ValueError(
            f"best_shift needs two images of one shape larger than 2 * max_shift = {2 * m}, "
            f"got {image.shape} and {reference.shape}"
        )
    ref = reference[m : h - m, m : w - m].astype(np.float64)
    shifts = sorted(
        ((dy, dx) for dy in range(-m, m + 1) for dx in range(-m, m + 1)),
        key=lambda s: (abs(s[0]) + abs(s[1]), s),
    )
    errors = [
        np.mean((image[m + dy : h - m + dy, m + dx : w - m + dx] - ref) ** 2) for dy, dx in shifts
    ]
    return shifts[int(np.argmin(errors))]


def real_score(image: np.ndarray, pair: RealPair) -> tuple[float, float, tuple[int, int]]:
    """PSNR and SSIM of an image against a real pair's truth, after its best shift.

    Parameters
    ----------
    image : ndarray
        A uint8 image of the shape of ``pair.sharp``: the blurred input or a method's output.
    pair : RealPair
        The truth and the largest shift to try, ``pair.max_shift``.

    Returns
    -------
    psnr : float
        PSNR in dB, data range 255. With ``max_shift`` 0, on the whole frame; otherwise on the
        frame trimmed by ``max_shift`` pixels on each side, the image being shifted by
        :func:`best_shift` first.
    ssim : float
        SSIM on the same pixels.
    shift : (int, int)
        The ``(dy, dx)`` used; ``(0, 0)`` with ``max_shift`` 0.
    """
    m = pair.max_shift
    dy, dx = best_shift(image, pair.sharp, m) if m else (0, 0)
    h, w = pair.sharp.shape[:2]
    truth = pair.sharp[m : h - m, m : w - m]
    moved = image[m + dy : h - m + dy, m + dx : w - m + dx]
    axis = -1 if truth.ndim == 3 else None
    psnr = peak_signal_noise_ratio(truth, moved, data_range=255)
    ssim = structural_similarity(truth, moved, channel_axis=axis, data_range=255)
    return float(psnr), float(ssim), (dy, dx)


def _score_row(method: str, image: np.ndarray, pair: RealPair) -> RealScore:
    psnr, ssim, shift = real_score(image, pair)
    return RealScore(pair.folder, pair.name, method, psnr, ssim, shift)


def real_baselines(sets: dict[str, list[RealPair]]) -> list[RealScore]:
    """Scores of the blurred inputs, and of the published outputs where a pair has some.

    Parameters
    ----------
    sets : dict
        ``{set: pairs}`` (:func:`real_sets`).

    Returns
    -------
    list of RealScore
        For each pair in order, the blurred input's score (method ``"blurred input"``), then
        each published output's (method ``"<Method> (published)"``).
    """
    rows = []
    for pairs in sets.values():
        for q in pairs:
            rows.append(_score_row(_INPUT, q.blurred, q))
            rows += [_score_row(m + _PUBLISHED, out, q) for m, out in q.published.items()]
    return rows


def real_scores(model: torch.nn.Module, sets: dict[str, list[RealPair]]) -> list[RealScore]:
    """A model's scores on real blur: each blurred image deblurred whole, default settings.

    Parameters
    ----------
    model : torch.nn.Module
        A loaded model (:func:`napari_srn.load_model`; load it with ``device="cpu"`` for
        figures that do not depend on the machine); the rows are named after its card, or
        its class for a model without one.
    sets : dict
        ``{set: pairs}`` (:func:`real_sets`).

    Returns
    -------
    list of RealScore
        One per pair, in order: ``deblur(blurred, model=model, channel_axis=-1)`` for RGB,
        ``channel_axis=None`` for grey, scored by :func:`real_score`.
    """
    name = model_name(model)
    rows = []
    for pairs in sets.values():
        for q in pairs:
            axis = -1 if q.blurred.ndim == 3 else None
            rows.append(_score_row(name, deblur(q.blurred, model=model, channel_axis=axis), q))
    return rows


def _by_method(
    scores: list[RealScore], folders: Sequence[str], name: str | None = None
) -> dict[str, list[RealScore]]:
    """Each method's scores on the images of ``folders`` (or the one image ``name``), for the
    methods that scored all of them; published outputs last."""
    kept = [s for s in scores if s.folder in folders and name in (None, s.name)]
    images = {(s.folder, s.name) for s in kept}
    out: dict[str, list[RealScore]] = {}
    for s in kept:
        out.setdefault(s.method, []).append(s)
    methods = sorted(out, key=lambda m: m.endswith(_PUBLISHED))
    return {m: out[m] for m in methods if {(s.folder, s.name) for s in out[m]} == images}


def _mean(rows: list[RealScore]) -> tuple[float, float]:
    return float(np.mean([r.psnr for r in rows])), float(np.mean([r.ssim for r in rows]))


def real_table(scores: list[RealScore]) -> dict[str, tuple[float, float]]:
    """The rows of the real-blur table: GoPro frames, then each set's mean, then the headline.

    Parameters
    ----------
    scores : list of RealScore
        :func:`real_baselines` and :func:`real_scores` of one or more models, concatenated.

    Returns
    -------
    dict
        ``{row: (psnr, ssim)}`` for :func:`format_table`: every method on each GoPro frame
        (``"gopro <frame>: <method>"``, published outputs included), then the mean over each
        set (``"crops (±5 px), mean of 9: <method>"``), then the mean over the images of
        :data:`REAL_PAIRS` (``"real pairs (gopro + crops), mean of 11: <method>"``). A
        mean lists only the methods that scored every image it covers.
    """
    rows = {}
    for frame in dict.fromkeys(s.name for s in scores if s.folder == "gopro"):
        for method, hit in _by_method(scores, ["gopro"], frame).items():
            rows[f"gopro {frame}: {method}"] = _mean(hit)
    present = list(dict.fromkeys(s.folder for s in scores))
    for folder in (f for f in REAL_SETS if f in present):
        shift = f" (±{MAX_SHIFT} px)" if _SET_SHIFT[folder] else ""
        rows.update(_mean_rows(scores, [folder], folder + shift))
    pairs = [f for f in REAL_PAIRS if f in present]
    if pairs:
        rows.update(_mean_rows(scores, pairs, f"real pairs ({' + '.join(pairs)})"))
    return rows


def _mean_rows(
    scores: list[RealScore], folders: list[str], label: str
) -> dict[str, tuple[float, float]]:
    return {
        f"{label}, mean of {len(hit)}: {method}": _mean(hit)
        for method, hit in _by_method(scores, folders).items()
    }


def real_gains(scores: list[RealScore], folders: Sequence[str] = REAL_PAIRS) -> dict[str, float]:
    """Each method's mean PSNR gain over the blurred input on the images of some sets.

    Parameters
    ----------
    scores : list of RealScore
        :func:`real_baselines` and :func:`real_scores`, concatenated.
    folders : sequence of str, optional
        The sets averaged over; by default :data:`REAL_PAIRS`, the headline figure.

    Returns
    -------
    dict
        ``{method: dB}`` for every method but the input that scored all those images (the
        project's goal: +1.0 dB over the real pairs). Empty without the input's scores.
    """
    methods = _by_method(scores, folders)
    if _INPUT not in methods:
        return {}
    base = _mean(methods.pop(_INPUT))[0]
    return {m: _mean(rows)[0] - base for m, rows in methods.items()}


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


def textured_window(image: np.ndarray, size: int = 320, step: int = 16) -> tuple[slice, slice]:
    """The square window of an image with the most texture, to show how it is deblurred.

    The window is chosen from the image alone (the input, never an output), so that every
    method is shown on the same pixels: the one with the largest sum of absolute differences
    between neighbouring pixels (of the channels' mean), among windows on a ``step`` grid
    (and flush with the bottom and right edges).

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` or ``(H, W, C)``.
    size : int, optional
        The window's side; a smaller image gives a window as large as it along that axis.
    step : int, optional
        Spacing of the windows tried.

    Returns
    -------
    (slice, slice)
        Rows and columns of the window.
    """
    g = image.astype(np.float64)
    g = g.mean(axis=-1) if g.ndim == 3 else g
    sy, sx = min(size, g.shape[0]), min(size, g.shape[1])
    grad = np.zeros_like(g)
    grad[:, 1:] += np.abs(np.diff(g, axis=1))
    grad[1:, :] += np.abs(np.diff(g, axis=0))
    total = np.pad(grad.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    tops = np.unique(np.r_[np.arange(0, g.shape[0] - sy + 1, step), g.shape[0] - sy])
    lefts = np.unique(np.r_[np.arange(0, g.shape[1] - sx + 1, step), g.shape[1] - sx])
    t, b, left, r = tops[:, None], tops[:, None] + sy, lefts[None, :], lefts[None, :] + sx
    sums = total[b, r] - total[t, r] - total[b, left] + total[t, left]
    i, j = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return slice(int(tops[i]), int(tops[i]) + sy), slice(int(lefts[j]), int(lefts[j]) + sx)


def _label_strip(width: int, texts: list[tuple[int, int, str]]) -> np.ndarray:
    """A white ``(2 * _LINE, width, 3)`` strip with each text written at its ``(x, line)``."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    strip = Image.new("RGB", (width, 2 * _LINE), "white")
    draw = ImageDraw.Draw(strip)
    for x, line, text in texts:
        draw.text((x + 2, line * _LINE + 3), text, fill="black", font=font)
    return np.asarray(strip)


def _sheet_row(name: str, tiles: list[tuple[str, np.ndarray]], crop: int) -> np.ndarray:
    """One contact-sheet row: a header strip over the tiles, each padded white to ``crop``."""
    pitch = crop + _GAP
    width = len(tiles) * pitch - _GAP
    texts = [(0, 0, name)] + [(j * pitch, 1, label) for j, (label, _) in enumerate(tiles)]
    row = np.full((crop, width, 3), 255, np.uint8)
    for j, (_, a) in enumerate(tiles):
        rgb = a[..., None].repeat(3, axis=-1) if a.ndim == 2 else a[..., :3]
        row[: rgb.shape[0], j * pitch : j * pitch + rgb.shape[1]] = rgb
    return np.concatenate([_label_strip(width, texts), row], axis=0)


def contact_sheet(
    images: list[tuple[str, np.ndarray]], outputs: dict[str, list[np.ndarray]], crop: int = 320
) -> np.ndarray:
    """A figure to judge deblurring without ground truth: input | output(s), at full resolution.

    Each image gives a row: a header naming it and the window shown, then the same window
    (:func:`textured_window`, chosen from the input alone) of the input and of each method's
    output, side by side and labelled, never resized.

    Parameters
    ----------
    images : list of (str, ndarray)
        Names and uint8 ``(H, W, 3)`` or ``(H, W)`` inputs (:func:`real_no_truth`).
    outputs : dict
        ``{label: [output, ...]}``: each method's uint8 outputs, one per image, in order.
    crop : int, optional
        Side of the window shown.

    Returns
    -------
    ndarray
        The uint8 ``(H, W, 3)`` figure: rows of ``2 * 20 + crop`` pixels (two lines of labels
        and the tiles, ``crop`` wide with 4 white pixels between them), 4 white pixels apart.
    """
    rows = []
    for i, (name, image) in enumerate(images):
        ys, xs = textured_window(image, crop)
        header = (
            f"{name}: rows {ys.start}-{ys.stop}, columns {xs.start}-{xs.stop} "
            f"of {image.shape[0]}x{image.shape[1]}"
        )
        tiles = [("input", image[ys, xs])] + [(k, v[i][ys, xs]) for k, v in outputs.items()]
        rows.append(_sheet_row(header, tiles, crop))
        rows.append(np.full((_GAP, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)
