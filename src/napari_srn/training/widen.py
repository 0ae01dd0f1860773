"""Grow a trained network wider without changing what it computes.

A wider network has more capacity, but training one from scratch throws away the hours its
narrower predecessor cost. :func:`widen` copies a trained ResBlock network into a wider one so
that the wider network returns exactly the same output (up to the order of float additions),
and its new channels can then learn on top of it (the "Net2WiderNet" idea of Chen, Goodfellow
and Shlens, ICLR 2016, in its simplest, zero-padding form):

* each old channel reads only old channels: the weights from new input channels to old output
  channels are zero, so the old channels compute what they computed before;
* each new channel reads every channel, with the fresh random weights of a new layer, so the new
  channels differ from one another and from the old ones; no old channel reads them yet, but
  the gradient of those zero weights is not zero, so training connects them;
* the output convolution reads only the old channels at first.

The skip connections of SRN add encoder and decoder features channel by channel, so a channel
keeps its index at every width. A ConvLSTM's gates and its ``concat(x, h)`` input are blocks of
``width`` channels each, and each block is widened in place. LayerNorm-based blocks (NAFBlock,
GateBlock) normalise over the channels, where new channels would change the old ones, so only
the ResBlock network can be widened this way.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..model.srn import SRN

__all__ = ["widen"]


def _positions(old: int, new: int, groups: int) -> torch.Tensor:
    """Where the ``old`` channels of a dimension made of ``groups`` equal blocks go at ``new``."""
    per_old, per_new = old // groups, new // groups
    return torch.cat([torch.arange(per_old) + g * per_new for g in range(groups)])


def _groups(name: str) -> tuple[int, int]:
    """The block structure (output, input) of a layer's channels: the ConvLSTM's are blocked."""
    return (4, 2) if name == "lstm.conv" else (1, 1)


@torch.no_grad()
def widen(model: SRN, width: int, *, seed: int = 0) -> SRN:
    """Return a copy of ``model`` at ``width`` that computes the same output.

    Parameters
    ----------
    model : SRN
        A ResBlock network (``config.block == "resblock"``), with or without a ConvLSTM.
        It is not modified.
    width : int
        Channels of the first encoder stage of the new network (the others get 2x and 4x);
        at least ``model.config.width``.
    seed : int
        Seed of the random weights of the new channels.

    Returns
    -------
    SRN
        The wider network, float32 on the CPU, in eval mode; ``config`` differs from the
        model's in ``width`` only.

    Examples
    --------
    >>> import torch
    >>> from napari_srn import SRN, SRNConfig
    >>> narrow = SRN(SRNConfig(width=4, res_blocks=1, scales=2)).eval()
    >>> wide = widen(narrow, 6)
    >>> x = torch.rand(1, 3, 16, 16)
    >>> bool(torch.allclose(narrow(x), wide(x), atol=1e-5))
    True
    """
    if not isinstance(model, SRN):
        raise TypeError(f"model must be an SRN, got {type(model).__name__}")
    cfg = model.config
    if cfg.block != "resblock":
        raise ValueError(
            f"widen works on ResBlock networks; this one uses block={cfg.block!r}, whose "
            "LayerNorm mixes the channels, so new channels would change the output"
        )
    if isinstance(width, bool) or not isinstance(width, int) or width < cfg.width:
        raise ValueError(
            f"width must be an integer of at least the model's width ({cfg.width}), "
            f"got {width!r}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wide = SRN(dataclasses.replace(cfg, width=width))
    old_modules = dict(model.named_modules())
    for name, layer in wide.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            _copy_into(name, old_modules[name], layer)
        elif list(layer.parameters(recurse=False)):  # pragma: no cover - guarded by the block check
            raise ValueError(f"widen does not know how to widen {name} ({type(layer).__name__})")
    return wide.eval()


def _copy_into(name: str, old: nn.Module, new: nn.Module) -> None:
    """Put ``old``'s weights at the old channels of ``new``; cut the old channels off the new."""
    out_groups, in_groups = _groups(name)
    w_old = old.weight.detach().float().cpu()
    w_new = new.weight.data
    transposed = isinstance(new, nn.ConvTranspose2d)  # weight is (in, out, kh, kw)
    o_dim, i_dim = (1, 0) if transposed else (0, 1)
    outs = _positions(w_old.shape[o_dim], w_new.shape[o_dim], out_groups)
    ins = _positions(w_old.shape[i_dim], w_new.shape[i_dim], in_groups)
    if transposed:
        w_new[:, outs] = 0.0
        w_new[ins[:, None], outs] = w_old
    else:
        w_new[outs] = 0.0
        w_new[outs[:, None], ins] = w_old
    if new.bias is not None:
        new.bias.data.zero_()
        new.bias.data[outs] = old.bias.detach().float().cpu()
