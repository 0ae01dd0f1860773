"""Figures of the evaluation: the benchmark's before/after grid, and the contact sheet that
shows real photographs without ground truth next to each method's output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .benchmark import Pair

__all__ = ["contact_sheet", "grid_image", "textured_window"]

_LINE = 20  # height of one line of a contact sheet's labels
_GAP = 4  # white pixels between a contact sheet's tiles and rows


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
