"""Building blocks of SRN-DeblurNet: ResBlock and ConvLSTM cell (Tao et al., CVPR 2018)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConvLSTMCell", "ResBlock", "conv"]


def conv(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A 'SAME'-padded convolution with bias, Xavier-uniform weights and zero bias."""
    layer = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def deconv(in_ch: int, out_ch: int) -> nn.ConvTranspose2d:
    """A 4x4 stride-2 transposed convolution that doubles height and width exactly."""
    layer = nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class ResBlock(nn.Module):
    """conv + ReLU, conv (no activation), plus the identity."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels, kernel_size)
        self.conv2 = conv(channels, channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell as in the authors' ``BasicConvLSTMCell``.

    One convolution over ``concat(x, h)`` gives the gates in the order i, j, f, o;
    ``c' = c * sigmoid(f + 1) + sigmoid(i) * tanh(j)`` and ``h' = tanh(c') * sigmoid(o)``.
    """

    forget_bias = 1.0

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv2d(2 * channels, 4 * channels, kernel_size, padding=kernel_size // 2)
        nn.init.trunc_normal_(self.conv.weight, std=1e-3, a=-2e-3, b=2e-3)
        nn.init.zeros_(self.conv.bias)

    def zero_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = x.new_zeros(x.shape[0], self.channels, x.shape[2], x.shape[3])
        return zeros, zeros

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        c, h = state
        i, j, f, o = torch.split(self.conv(torch.cat([x, h], dim=1)), self.channels, dim=1)
        c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, (c, h)
