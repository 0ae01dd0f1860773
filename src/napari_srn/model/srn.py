"""SRN-DeblurNet: the Scale-Recurrent Network for deep image deblurring.

Tao, Gao, Shen, Wang, Jia, "Scale-recurrent Network for Deep Image Deblurring", CVPR 2018
(arXiv:1802.01770). Written from scratch in PyTorch after the paper and the layer list of the
authors' released TensorFlow code (facts in the project's REFERENCE notes):

* one encoder-decoder applied at ``scales`` levels (ratio 0.5, coarse to fine) with its weights
  shared across levels;
* at each level the blurred input, bilinearly resized, is concatenated with the previous level's
  prediction, bilinearly upsampled with no gradient through it (at the coarsest level, with the
  input itself);
* encoder: conv 5x5 -> w, ResBlocks; conv 5x5 stride 2 -> 2w, ResBlocks; conv 5x5 stride 2 -> 4w,
  ResBlocks; optional ConvLSTM at the bottleneck whose state is resized from level to level;
* decoder: ResBlocks; transposed conv 4x4 stride 2 -> 2w added to the encoder's 2w features;
  ResBlocks; transposed conv -> w added to the encoder's w features; ResBlocks; conv 5x5 -> C with
  no activation (the sharp image itself, or with ``global_residual`` a correction to the input).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import ConvLSTMCell, GateBlock, NAFBlock, ResBlock, conv, deconv
from .config import SRNConfig

__all__ = ["SRN", "downscale", "resize", "resize_state"]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of the last two axes (no anti-aliasing, as in the authors' code)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def downscale(x: torch.Tensor, size: tuple[int, int], pyramid: str) -> torch.Tensor:
    """Shrink the last two axes to ``size`` (a whole fraction of them) the way
    :attr:`SRNConfig.pyramid` says: ``"bilinear"`` (:func:`resize`, the authors' code) or
    ``"area"``, the mean of the pixels each output pixel covers."""
    if pyramid == "area" and tuple(x.shape[-2:]) != tuple(size):
        return F.interpolate(x, size=size, mode="area")
    return resize(x, size)


def resize_state(
    state: tuple[torch.Tensor, torch.Tensor] | None, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Resize a ConvLSTM state to the bottleneck of a level of ``size`` (a quarter of it)."""
    if state is None:
        return None
    bottleneck = (size[0] // 4, size[1] // 4)
    return resize(state[0], bottleneck), resize(state[1], bottleneck)


class SRN(nn.Module):
    """Scale-recurrent deblurring network.

    Parameters
    ----------
    config : SRNConfig, optional
        Architecture; the default is the authors' 3-scale color model.

    Attributes
    ----------
    divisor : int
        Height and width of the input must be multiples of this (16 for three scales).
    receptive_field : int
        Radius in pixels of the region of the input that can influence one output pixel,
        counted through all scales from the layer list.
    halo : int
        Context in pixels kept on each side of a tile when an image is processed in tiles
        (see :attr:`halo` for how it is derived).

    Examples
    --------
    >>> import torch
    >>> from napari_srn import SRN, SRNConfig
    >>> net = SRN(SRNConfig(width=4, res_blocks=1)).eval()
    >>> net(torch.rand(1, 3, 32, 48)).shape
    torch.Size([1, 3, 32, 48])
    """

    #: Set by :func:`napari_srn.load_model`: the model card, the file's SHA-256 and path.
    card: Any = None
    sha256: str | None = None
    source: str | None = None

    def __init__(self, config: SRNConfig | None = None) -> None:
        super().__init__()
        cfg = SRNConfig() if config is None else config
        if not isinstance(cfg, SRNConfig):
            raise TypeError(f"config must be an SRNConfig, got {type(cfg).__name__}")
        self.config = cfg
        c, w, k, n = cfg.channels, cfg.width, cfg.kernel_size, cfg.res_blocks

        def blocks(ch: int) -> nn.Sequential:
            if cfg.block == "nafblock":
                return nn.Sequential(*[NAFBlock(ch) for _ in range(n)])
            if cfg.block == "gateblock":
                return nn.Sequential(*[GateBlock(ch, k) for _ in range(n)])
            return nn.Sequential(*[ResBlock(ch, k) for _ in range(n)])

        self.enc1 = nn.Sequential(conv(2 * c, w, k), nn.ReLU(inplace=True), blocks(w))
        self.enc2 = nn.Sequential(conv(w, 2 * w, k, stride=2), nn.ReLU(inplace=True), blocks(2 * w))
        self.enc3 = nn.Sequential(
            conv(2 * w, 4 * w, k, stride=2), nn.ReLU(inplace=True), blocks(4 * w)
        )
        self.lstm = ConvLSTMCell(4 * w, 3) if cfg.recurrent == "convlstm" else None
        self.dec3 = blocks(4 * w)

        def up_activation() -> nn.Module:
            if cfg.up_slope:
                return nn.LeakyReLU(cfg.up_slope, inplace=True)
            return nn.ReLU(inplace=True)

        self.up2 = nn.Sequential(deconv(4 * w, 2 * w), up_activation())
        self.dec2 = blocks(2 * w)
        self.up1 = nn.Sequential(deconv(2 * w, w), up_activation())
        self.dec1 = blocks(w)
        self.out = conv(w, c, k)
        if cfg.global_residual:
            # the correction starts at zero: an untrained residual network is the identity, so
            # training starts from the blurred input's quality instead of far below it
            nn.init.zeros_(self.out.weight)
            assert self.out.bias is not None  # built with bias=True
            nn.init.zeros_(self.out.bias)

    # -- what the tiler needs ---------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        """Image channels the network takes and returns (``config.channels``)."""
        return self.config.channels

    @property
    def divisor(self) -> int:
        """Factor the input's height and width must be divisible by (``config.divisor``)."""
        return self.config.divisor

    @property
    def receptive_field(self) -> int:
        """Radius in pixels of the receptive field of one scale's pass, at that scale.

        Walks the layer list: each convolution adds ``(k - 1) / 2`` times the current stride
        (a NAFBlock has one depthwise 3x3 convolution; a ResBlock and a GateBlock two
        ``kernel_size`` convolutions, the GateBlock's 1x1 ones adding nothing), each 4x4
        stride-2 transposed convolution one input pixel. Across scales the field is far larger
        (coarse predictions feed the finer passes), but the tiled inference runs each scale's
        pass over the whole downscaled image, so one pass's field is what a tile border can
        disturb.
        """
        cfg = self.config
        half = (cfg.kernel_size - 1) // 2
        per_block = 1 if cfg.block == "nafblock" else 2 * half  # two k x k convs otherwise
        per_stage = per_block * cfg.res_blocks  # the blocks of one stage
        radius, jump = 0, 1
        for stage in range(3):  # encoder: conv (stride 2 after the first) + ResBlocks
            radius += half * jump
            jump *= 2 if stage > 0 else 1
            radius += per_stage * jump
        radius += jump if cfg.recurrent == "convlstm" else 0  # 3x3 ConvLSTM
        radius += per_stage * jump  # dec3
        for _ in range(2):  # transposed conv + ResBlocks
            radius += jump
            jump //= 2
            radius += per_stage * jump
        return radius + half  # output conv

    @property
    def halo(self) -> int:
        """Context in pixels kept on each side of a tile: a quarter of :attr:`receptive_field`,
        rounded up to a multiple of 8 (24 for the default 3x3 model, 48 for the 5x5 ones).

        Outputs farther than :attr:`receptive_field` from a tile border are untouched by it;
        in practice the influence decays fast. Measured with random weights on a 512x512 photo
        and 128-pixel tiles, tiled vs untiled PSNR is 50 dB at a halo of 32, 64 dB at 48 and
        81 dB at 64 (``tests/tiling/test_tiling.py`` checks >= 50 dB). Pass ``overlap=`` to
        :func:`napari_srn.deblur` to trade speed for agreement.
        """
        return max(8, -(-self.receptive_field // 32) * 8)

    # -- forward ------------------------------------------------------------------------------
    def level(
        self,
        x: torch.Tensor,
        prev: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """One scale's pass: blurred input and previous prediction (same size) to a prediction.

        Used by :meth:`forward` and by the level-by-level tiled inference.

        Parameters
        ----------
        x : torch.Tensor
            The blurred input at this scale, ``(N, C, H, W)`` with H and W multiples of 4.
        prev : torch.Tensor
            The previous (coarser) scale's prediction upsampled to this size, or ``x`` itself
            at the coarsest scale.
        state : tuple of torch.Tensor, optional
            The ConvLSTM state ``(c, h)`` at a quarter of the size; None at the coarsest scale
            or for a model without recurrence.

        Returns
        -------
        prediction : torch.Tensor
            The deblurred estimate at this scale, the shape of ``x``.
        state : tuple of torch.Tensor or None
            The ConvLSTM state for the next finer scale (None without recurrence).
        """
        e1 = self.enc1(torch.cat([x, prev], dim=1))
        e2 = self.enc2(e1)
        z = self.enc3(e2)
        if self.lstm is not None:
            if state is None:
                state = self.lstm.zero_state(z)
            z, state = self.lstm(z, state)
        d = self.dec3(z)
        d = self.dec2(self.up2(d) + e2)
        d = self.dec1(self.up1(d) + e1)
        out = self.out(d)
        if self.config.global_residual:
            out = out + x
        return out, state

    def forward(
        self, x: torch.Tensor, return_all: bool = False
    ) -> torch.Tensor | list[torch.Tensor]:
        """Deblur a batch ``(N, C, H, W)`` with H and W multiples of :attr:`divisor`.

        Parameters
        ----------
        x : torch.Tensor
            The blurred batch, float in [0, 1], with :attr:`in_channels` channels.
        return_all : bool, optional
            Return every scale's prediction instead of the finest only (for the multi-scale
            training loss).

        Returns
        -------
        torch.Tensor or list of torch.Tensor
            The finest-scale prediction (the shape of ``x``), or with ``return_all=True`` the
            list of all scales' predictions from coarsest to finest.
        """
        if x.ndim != 4 or x.shape[1] != self.config.channels:
            raise ValueError(
                f"SRN expects a (N, {self.config.channels}, H, W) tensor, got {tuple(x.shape)}"
            )
        height, width = x.shape[-2:]
        d = self.divisor
        if height % d or width % d:
            raise ValueError(
                f"SRN input height and width must be multiples of {d}, got {height}x{width}; "
                "pad the image (napari_srn.deblur does this for you)"
            )
        outputs: list[torch.Tensor] = []
        pred: torch.Tensor | None = None
        state = None
        for s in reversed(range(self.config.scales)):
            size = (height >> s, width >> s)
            xs = downscale(x, size, self.config.pyramid)
            prev = xs if pred is None else resize(pred.detach(), size)
            state = resize_state(state, size)
            pred, state = self.level(xs, prev, state)
            outputs.append(pred)
        return outputs if return_all else outputs[-1]
