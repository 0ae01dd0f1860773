"""The synthetic held-out benchmark: photographs blurred by seeded camera shake, the Wiener
baseline, and a model's scores on it.

The pairs are made reproducibly from photographs napari-srn never trains on: scikit-image's
bundled colour photographs (:data:`PHOTOS`), or a folder of PNG files such as the
``mate-backgrounds`` held-out set that ``scripts/data/prepare_photos.py`` writes to
:data:`HELDOUT_MATE` (see the package's docstring). :func:`baselines` scores the blurred input
and non-blind Wiener deconvolution with the true kernel; :func:`model_rows` scores a model, on
the unblurred photos and on a 12-bit grey stack too if asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
from .tables import model_name

__all__ = [
    "BALANCES",
    "HELDOUT_MATE",
    "MATE_SEED",
    "PHOTOS",
    "SEED",
    "Pair",
    "baselines",
    "benchmark_photos",
    "gray16_scores",
    "make_benchmark",
    "model_rows",
    "on_sharp_input",
    "restore",
    "score",
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
