"""Scores on real blur: each image against its truth after the best integer shift, for the
blurred input, the published outputs and a model, and the table and gains made from them.

``crops`` and ``levin`` are scored after the best shift within +-:data:`MAX_SHIFT` px, chosen
by PSNR for every image and every method alike (see the package's docstring); the mean over
the sets of :data:`REAL_PAIRS` is the headline figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ..inference.api import deblur
from .real_folder import MAX_SHIFT, REAL_SETS, SET_SHIFT, RealPair
from .tables import model_name

__all__ = [
    "REAL_PAIRS",
    "RealScore",
    "best_shift",
    "real_baselines",
    "real_gains",
    "real_score",
    "real_scores",
    "real_table",
]

#: The sets of real captures (and frame averages) with ground truth: the mean over their images is
#: the headline figure.
REAL_PAIRS = ("gopro", "crops")
_INPUT = "blurred input"
_PUBLISHED = " (published)"


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
        shift = f" (±{MAX_SHIFT} px)" if SET_SHIFT[folder] else ""
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
