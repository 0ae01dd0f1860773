"""Building blocks of SRN-DeblurNet: ResBlock and ConvLSTM cell (Tao et al., CVPR 2018), a
NAFNet-style block (Chen et al., ECCV 2022) offered as a cheaper alternative to the ResBlock, and
a GateBlock: NAFNet's LayerNorm and SimpleGate around dense convolutions."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConvLSTMCell", "GateBlock", "NAFBlock", "ResBlock", "conv"]


def conv(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A 'SAME'-padded convolution with bias, Xavier-uniform weights and zero bias."""
    layer = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2)
    nn.init.xavier_uniform_(layer.weight)
    assert layer.bias is not None  # built with bias=True
    nn.init.zeros_(layer.bias)
    return layer


def deconv(in_ch: int, out_ch: int) -> nn.ConvTranspose2d:
    """A 4x4 stride-2 transposed convolution that doubles height and width exactly."""
    layer = nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1)
    nn.init.xavier_uniform_(layer.weight)
    assert layer.bias is not None  # built with bias=True
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


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channels of each pixel of an ``(N, C, H, W)`` tensor.

    Per pixel, so a tile is normalised exactly as the same pixels of the whole image.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch's fused layer_norm over the last axis instead of six elementwise passes: a
        # GateBlock's forward and backward went from 4.67 s to 1.67 s in a profile on the
        # 2-core EPYC; the permutes are free for channels-last tensors
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


def _simple_gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return a * b


class NAFBlock(nn.Module):
    """A NAFNet-style block (Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration",
    ECCV 2022) without its channel attention.

    ``x + beta * conv1x1(gate(dwconv3x3(conv1x1(norm(x)))))``, then the same with a pointwise
    feed-forward part: ``y + gamma * conv1x1(gate(conv1x1(norm(y))))``, where ``gate`` multiplies
    the two halves of the channels (SimpleGate). NAFNet's simplified channel attention pools
    over the whole image, which would make a tile's output depend on the tile; it is left out so
    that tiled inference stays exact. ``beta`` and ``gamma`` start at zero (the block starts as
    the identity), as in NAFNet.
    """

    def __init__(self, channels: int, expand: int = 2) -> None:
        super().__init__()
        hidden = expand * channels
        self.norm1 = LayerNorm2d(channels)
        self.pw1 = nn.Conv2d(channels, hidden, 1)
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.pw2 = nn.Conv2d(hidden // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.ff1 = nn.Conv2d(channels, hidden, 1)
        self.ff2 = nn.Conv2d(hidden // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw2(_simple_gate(self.dw(self.pw1(self.norm1(x)))))
        x = x + self.beta * y
        y = self.ff2(_simple_gate(self.ff1(self.norm2(x))))
        return x + self.gamma * y


class GateBlock(nn.Module):
    """NAFNet's two largest gains at fixed compute, LayerNorm and SimpleGate (Chen et al., ECCV
    2022), around dense convolutions: no depthwise convolution, no channel attention.

    ``y = x + beta * conv_kxk(gate(conv_kxk(norm(x))))`` with the first convolution ``C -> 2C``
    and the second ``C -> C``, then a pointwise feed-forward part
    ``y + gamma * conv1x1(gate(conv1x1(norm(y))))``, where ``gate`` multiplies the two halves of
    the channels (SimpleGate). Depthwise convolutions are slow on CPUs for their arithmetic, and
    channel attention pools over the whole image (a tile's output would depend on the tile), so
    neither is used. ``beta`` and ``gamma`` start at zero: the block starts as the identity. One
    ``kernel_size`` convolution after another: its radius is ``2 * (kernel_size // 2)``.
    """

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = conv(channels, 2 * channels, kernel_size)
        self.conv2 = conv(channels, channels, kernel_size)
        self.norm2 = LayerNorm2d(channels)
        self.ff1 = conv(channels, 2 * channels, 1)
        self.ff2 = conv(channels, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(_simple_gate(self.conv1(self.norm1(x))))
        x = x + self.beta * y
        y = self.ff2(_simple_gate(self.ff1(self.norm2(x))))
        return x + self.gamma * y


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
        assert self.conv.bias is not None  # built with bias=True
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
