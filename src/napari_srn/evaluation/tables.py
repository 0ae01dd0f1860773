"""The rows of a score table: the name a model's rows are given, and the rows as plain text.

Shared by the synthetic benchmark (:mod:`.benchmark`) and the real-blur scores
(:mod:`.real_scoring`): both give ``{row: (psnr, ssim)}`` for :func:`format_table`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["format_table", "model_name"]


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
