"""What training measures: the multi-scale loss it minimises and the validation scores.

The paper's loss by default (Tao et al., CVPR 2018): the sum over scales of the mean squared
error against the sharp image bilinearly resized to that scale (kappa_i = 1); L1 and L1 plus a
Fourier term (MIMO-UNet) are the alternatives. Validation reports PSNR and SSIM of the output
and of the blurred input (scikit-image, data range 1).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ..inference.precision import Precision
from ..model.srn import SRN, downscale
from .data import ValSet

__all__ = ["evaluate", "multiscale_loss"]


def multiscale_loss(
    outputs: list[torch.Tensor], sharp: torch.Tensor, kind: str = "mse", pyramid: str = "bilinear"
) -> torch.Tensor:
    """Sum over scales of the error against the sharp batch shrunk to each scale as the
    network shrinks its input (``pyramid``: :attr:`SRNConfig.pyramid`).

    ``kind``: ``"mse"``, the paper's Eq. 3 with kappa_i = 1 (normalised by the number of
    values); ``"l1"``, the mean absolute error; ``"l1+fft"``, L1 plus 0.1 x the L1 distance of
    the 2-D Fourier transforms (the frequency loss of MIMO-UNet, Cho et al. 2021), which weighs
    the fine detail that blur removes more than a pixel loss does.
    """
    total = sharp.new_zeros((), dtype=torch.float32)
    for out in outputs:
        target = downscale(sharp, (int(out.shape[-2]), int(out.shape[-1])), pyramid).float()
        out = out.float()
        if kind == "mse":
            total = total + F.mse_loss(out, target)
        elif kind in ("l1", "l1+fft"):
            total = total + F.l1_loss(out, target)
            if kind == "l1+fft":
                diff = torch.fft.rfft2(out) - torch.fft.rfft2(target)
                total = total + 0.1 * torch.view_as_real(diff).abs().mean()
        else:
            raise ValueError(f"loss must be 'mse', 'l1' or 'l1+fft', got {kind!r}")
    return total


@torch.no_grad()
def evaluate(model: SRN, dataset: ValSet, precision: Precision) -> dict[str, float]:
    """Mean PSNR and SSIM (scikit-image, data range 1) of the model's output and of the
    blurred input against the sharp images, computed in ``precision`` (the training's own);
    PSNR capped at 100 dB for identical images."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    was_training = model.training
    model.eval()
    sums = np.zeros(4)
    for index in range(len(dataset)):
        blurred, sharp = dataset[index]
        with precision.autocast():
            pred = model(precision.tensor(blurred[None]))[0]
        pred_np = pred.float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
        sharp_np = sharp.numpy().transpose(1, 2, 0)
        blurred_np = blurred.numpy().transpose(1, 2, 0)
        for j, image in enumerate((pred_np, blurred_np)):
            with np.errstate(divide="ignore"):
                psnr = peak_signal_noise_ratio(sharp_np, image, data_range=1.0)
            ssim = structural_similarity(sharp_np, image, data_range=1.0, channel_axis=-1)
            sums[2 * j] += min(float(psnr), 100.0)
            sums[2 * j + 1] += float(ssim)
    model.train(was_training)
    n = max(1, len(dataset))
    psnr, ssim, psnr_input, ssim_input = (float(v) for v in sums / n)
    return {
        "psnr": psnr,
        "ssim": ssim,
        "psnr_input": psnr_input,
        "ssim_input": ssim_input,
        "images": float(len(dataset)),
    }
