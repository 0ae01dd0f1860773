"""Plain helpers the tests import (``from .helpers import tiny_srn``); fixtures live in
conftest.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from napari_srn import SRN, SRNConfig

#: The repository (tests/ is one level below it).
ROOT = Path(__file__).resolve().parents[1]

TINY = {"width": 4, "res_blocks": 1}


def tiny_srn(channels: int = 3, seed: int = 0, **kw) -> SRN:
    """A seeded random-weight SRN of width 4 with one block per stage (``kw`` overrides)."""
    torch.manual_seed(seed)
    return SRN(SRNConfig(channels=channels, **{**TINY, **kw})).eval()


def wake_naf(net: SRN, value: float = 1.0) -> SRN:
    """NAFBlocks and GateBlocks start as the identity (zero beta and gamma): give them a scale
    that counts."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith((".beta", ".gamma")):
                p.fill_(value)
    return net


def identity_srn(channels: int = 3) -> SRN:
    """A tiny SRN that returns its input exactly: global residual, zeroed output conv."""
    net = tiny_srn(channels, global_residual=True)
    torch.nn.init.zeros_(net.out.weight)
    torch.nn.init.zeros_(net.out.bias)
    return net


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """PSNR in dB of ``a`` against ``b`` (inf when they are equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(data_range**2 / mse)


class CountingSRN(SRN):
    """Records the frame (its first pixel value) of every window a level pass sees."""

    def __init__(self, config):
        super().__init__(config)
        self.seen: list[float] = []

    def level(self, x, prev, state=None):
        self.seen.append(float(x[0, 0, 0, 0]))
        return super().level(x, prev, state)
