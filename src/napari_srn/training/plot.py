"""The run's progress plot (training loss and validation PSNR), drawn with Pillow.

Pillow comes with imageio, so the plot needs no plotting library.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

__all__ = ["plot_progress"]

#: How each ``TrainConfig.loss`` is named in the plot.
LOSS_NAMES = {"mse": "MSE", "l1": "L1", "l1+fft": "L1 + 0.1 x Fourier L1"}

Series = tuple[str, Sequence[float], Sequence[float], tuple[int, int, int]]

_W, _H, _M = 520, 360, (62, 18, 48, 44)  # panel size; margins left, right, top, bottom


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 and v == int(v):  # step counts: 15,000, not 2e+04
        return f"{v:,.0f}"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        return f"{v:.0e}"
    return f"{v:g}" if abs(v) >= 1 else f"{v:.3g}"


def _panel(
    draw: ImageDraw.ImageDraw,
    x0: int,
    title: str,
    xlabel: str,
    series: list[Series],
    log_y: bool,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    xlim: tuple[float, float] | None = None,
) -> None:
    left, right, top, bottom = _M
    px0, px1, py0, py1 = x0 + left, x0 + _W - right, top, _H - bottom
    draw.rectangle([px0, py0, px1, py1], outline=(0, 0, 0))
    draw.text((x0 + _W // 2, 12), title, fill=(0, 0, 0), font=font, anchor="mm")
    draw.text(((px0 + px1) // 2, _H - 12), xlabel, fill=(0, 0, 0), font=font, anchor="mm")
    pts = [
        (x, y)
        for _, xs, ys, _ in series
        for x, y in zip(xs, ys, strict=True)
        if math.isfinite(y) and (y > 0 or not log_y)
    ]
    if not pts:
        draw.text(
            ((px0 + px1) // 2, (py0 + py1) // 2),
            "no data yet",
            fill=(90, 90, 90),
            font=font,
            anchor="mm",
        )
        return

    def fy(y: float) -> float:
        return math.log10(y) if log_y else y

    xlo, xhi = xlim or (min(p[0] for p in pts), max(p[0] for p in pts))
    ylo, yhi = min(fy(p[1]) for p in pts), max(fy(p[1]) for p in pts)
    if xhi == xlo:
        xlo, xhi = xlo - 1, xhi + 1
    if yhi == ylo:
        ylo, yhi = ylo - 0.5, yhi + 0.5
    pad = 0.05 * (yhi - ylo)
    ylo, yhi = ylo - pad, yhi + pad

    def sx(x: float) -> float:
        return px0 + (x - xlo) / (xhi - xlo) * (px1 - px0)

    def sy(y: float) -> float:
        return py1 - (fy(y) - ylo) / (yhi - ylo) * (py1 - py0)

    for t in _ticks(xlo, xhi):
        draw.line([sx(t), py1, sx(t), py1 + 4], fill=(0, 0, 0))
        draw.text((sx(t), py1 + 6), _fmt(t), fill=(0, 0, 0), font=font, anchor="mt")
    yticks = (
        [10**e for e in range(math.floor(ylo), math.ceil(yhi) + 1) if ylo <= e <= yhi]
        if log_y
        else _ticks(ylo, yhi)
    )
    if log_y and len(yticks) < 2:
        yticks = [t for t in _ticks(10**ylo, 10**yhi, 4) if t > 0]
    for t in yticks:
        y = sy(t)
        draw.line([px0 - 4, y, px0, y], fill=(0, 0, 0))
        draw.line([px0 + 1, y, px1 - 1, y], fill=(230, 230, 230))
        draw.text((px0 - 6, y), _fmt(t), fill=(0, 0, 0), font=font, anchor="rm")
    for row, (label, xs, ys, color) in enumerate(series):
        line = [
            (sx(x), sy(y))
            for x, y in zip(xs, ys, strict=True)
            if math.isfinite(y) and (y > 0 or not log_y)
        ]
        if len(line) > 1:
            draw.line(line, fill=color, width=2)
        for x, y in line if len(line) < 30 else []:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=color)
        lx, ly = px0 + 10 + 130 * row, py0 - 12  # legend in a row above the panel
        draw.line([lx, ly, lx + 20, ly], fill=color, width=2)
        draw.text((lx + 25, ly), label, fill=(0, 0, 0), font=font, anchor="lm")


def plot_progress(
    path: str | os.PathLike,
    steps: Sequence[float],
    losses: Sequence[float],
    val_steps: Sequence[float],
    val_psnr: Sequence[float],
    input_psnr: Sequence[float],
    title: str = "",
    xlim: tuple[float, float] | None = None,
    loss: str = "mse",
) -> Path:
    """Write a two-panel PNG: training loss (log scale) and validation PSNR against steps
    (both over ``xlim``, e.g. the whole run, when given); ``loss`` names the loss (a
    :class:`~napari_srn.training.config.TrainConfig` ``loss``) in the left panel's title."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    header = 22 if title else 0
    image = Image.new("RGB", (2 * _W, _H + header), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((_W, 11), title, fill=(0, 0, 0), font=font, anchor="mm")
    sub = Image.new("RGB", (2 * _W, _H), "white")
    sdraw = ImageDraw.Draw(sub)
    _panel(
        sdraw,
        0,
        f"training loss (sum of the scales' {LOSS_NAMES.get(loss, loss)})",
        "step",
        [("loss", steps, losses, (31, 119, 180))],
        True,
        font,
        xlim,
    )
    _panel(
        sdraw,
        _W,
        "validation PSNR (dB)",
        "step",
        [
            ("deblurred", val_steps, val_psnr, (214, 39, 40)),
            ("blurred input", val_steps, input_psnr, (127, 127, 127)),
        ],
        False,
        font,
        xlim,
    )
    image.paste(sub, (0, header))
    p = Path(path)
    tmp = p.with_name(p.name + ".partial.png")
    image.save(tmp)
    os.replace(tmp, p)
    return p
