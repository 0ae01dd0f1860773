"""Operations on a trained network: make it wider, restart a dead stage, see which stages work.

Training a network from scratch throws away the hours its predecessor cost, so these change a
trained SRN in ways that keep (or barely change) what it computes, and the run goes on from it:

* :func:`widen` copies a ResBlock network into a wider one that returns exactly the same output
  (up to the order of float additions), whose new channels then learn on top of it (the
  "Net2WiderNet" idea of Chen, Goodfellow and Shlens, ICLR 2016, in its simplest, zero-padding
  form). Each old channel reads only old channels: the weights from new input channels to old
  output channels are zero. Each new channel reads every channel with the fresh random weights
  of a new layer; no old channel reads it yet, but the gradient of those zero weights is not
  zero, so training connects it. The skip connections add encoder and decoder features channel
  by channel, so a channel keeps its index at every width; a ConvLSTM's gates and its
  ``concat(x, h)`` input are blocks of ``width`` channels, each widened in place. LayerNorm
  blocks (NAFBlock, GateBlock) mix the channels, so only ResBlock networks can be widened.
* :func:`decoder_activity` (or :func:`watch_decoder` around any run of the model) measures,
  for each of the decoder's two upsamplings, the share of its outputs (after its ReLU) that are
  positive. The quarter-resolution stage (``enc3``, the ConvLSTM, ``dec3``) reaches the output
  only through ``up2``, and the half-resolution stage only through ``up1``: when every output
  of an upsampling is zero, its ReLU passes no gradient, the stage below it has stopped
  contributing and it never starts again by itself (:func:`dead_stages`).
  Training warns when that happens.
* :func:`reinit_bottleneck` restarts a dead quarter-resolution stage with fresh random weights
  behind an upsampling that starts at zero and cannot die again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch
from torch import nn

from ..model.srn import SRN

__all__ = ["dead_stages", "decoder_activity", "reinit_bottleneck", "watch_decoder", "widen"]


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
            f"width must be an integer of at least the model's width ({cfg.width}), got {width!r}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wide = SRN(dataclasses.replace(cfg, width=width))
    old_modules = dict(model.named_modules())
    for name, layer in wide.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            _copy_into(name, cast(_Conv, old_modules[name]), layer)
        elif list(layer.parameters(recurse=False)):  # pragma: no cover - guarded by the block check
            raise ValueError(f"widen does not know how to widen {name} ({type(layer).__name__})")
    return wide.eval()


_Conv = nn.Conv2d | nn.ConvTranspose2d


def _copy_into(name: str, old: _Conv, new: _Conv) -> None:
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
    if new.bias is not None and old.bias is not None:
        new.bias.data.zero_()
        new.bias.data[outs] = old.bias.detach().float().cpu()


#: The decoder's upsamplings (deconvolution + ReLU or LeakyReLU), each the only way from a
#: stage to the output.
UPSAMPLINGS = {"up2": "quarter-resolution", "up1": "half-resolution"}


@contextmanager
def watch_decoder(model: SRN) -> Iterator[dict[str, float]]:
    """Count the positive outputs of each decoder upsampling while the block runs the model.

    Yields a dict that is filled when the block ends: ``{"up2": share, "up1": share}``, the
    share of positive outputs over every call of the model in the block, at every scale, each
    from 0 to 1 (0 when the block did not run the model). At 0 behind a ReLU
    (``config.up_slope == 0``) the stage below is dead: it no longer reaches the output or
    learns (:func:`dead_stages`). Behind a LeakyReLU it still leaks and learns.
    """
    positive = dict.fromkeys(UPSAMPLINGS, 0)
    total = dict.fromkeys(UPSAMPLINGS, 0)

    def count(name: str) -> Callable[[nn.Module, Any, torch.Tensor], None]:
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            positive[name] += int(torch.count_nonzero(output > 0))
            total[name] += output.numel()

        return hook

    shares: dict[str, float] = {}
    handles = [getattr(model, n).register_forward_hook(count(n)) for n in UPSAMPLINGS]
    try:
        yield shares
    finally:
        for handle in handles:
            handle.remove()
        shares.update({n: positive[n] / max(1, total[n]) for n in UPSAMPLINGS})


@torch.no_grad()
def decoder_activity(model: SRN, images: list[torch.Tensor]) -> dict[str, float]:
    """Share of positive outputs of each decoder upsampling over ``images``, at every scale.

    Parameters
    ----------
    model : SRN
        Any SRN; it is run in its current precision and device as ``model(image)``.
    images : list of torch.Tensor
        ``(N, C, H, W)`` batches the model accepts (e.g. validation inputs).

    Returns
    -------
    dict
        ``{"up2": share, "up1": share}``, each from 0 to 1, as :func:`watch_decoder` gives.
    """
    with watch_decoder(model) as shares:
        for image in images:
            model(image)
    return shares


def dead_stages(model: SRN, shares: dict[str, float]) -> list[str]:
    """The upsamplings behind a ReLU with no positive output in ``shares`` (from
    :func:`watch_decoder`): the stage below each has stopped reaching the output and learning.
    A LeakyReLU (``up_slope`` > 0) cannot die, so its network has none."""
    if model.config.up_slope:
        return []
    return [name for name in UPSAMPLINGS if shares[name] == 0.0]


@torch.no_grad()
def reinit_bottleneck(
    model: SRN, *, scale: float = 0.0, up_slope: float | None = 0.01, seed: int = 0
) -> SRN:
    """Return a copy of ``model`` whose quarter-resolution stage starts again from random weights.

    The stage is ``enc3`` (its strided convolution and blocks), the ConvLSTM if there is one,
    ``dec3`` and the upsampling ``up2`` that adds it back to the half-resolution features. Use it
    when that stage is dead (:func:`decoder_activity` gives ``up2`` a share of 0, so it adds
    nothing to the output).

    By default ``up2``'s deconvolution starts at zero (weights and bias) and both upsamplings
    become LeakyReLUs of slope 0.01: the new stage then adds nothing at first (the output moves
    only by ``up1``'s leak: 55 dB PSNR on the bundled default's kind of network), and the
    gradient still reaches ``up2`` (the stage's random features are not zero), so the stage
    grows into the network only as far as it lowers the loss, as the "zero convolutions" of
    ControlNet (Zhang et al., ICCV 2023) add a branch to a trained network. Started with
    random ``up2`` weights instead (``scale`` > 0), a new stage's output is noise to the
    trained layers after it, and training switches it off again: on ``default_v4`` with
    ``scale=0.1`` and slope 0.01, within 1,750 steps (training.md, "A dead stage").

    Parameters
    ----------
    model : SRN
        The trained network; it is not modified.
    scale : float
        Factor on the new ``up2`` deconvolution's random weights (its bias starts at zero), in
        [0, 1]; 0 needs a LeakyReLU (``up_slope`` > 0): a ReLU passes no gradient at 0.
    up_slope : float, optional
        The copy's ``config.up_slope``; None keeps the model's.
    seed : int
        Seed of the new random weights.

    Returns
    -------
    SRN
        The network, float32 on the CPU, in eval mode, with ``model``'s config but for
        ``up_slope``.
    """
    if not isinstance(model, SRN):
        raise TypeError(f"model must be an SRN, got {type(model).__name__}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 1:
        raise ValueError(f"scale must be a number in [0, 1], got {scale!r}")
    config = model.config
    if up_slope is not None:
        config = dataclasses.replace(config, up_slope=up_slope)  # checked by SRNConfig
    if scale == 0 and config.up_slope == 0:
        raise ValueError(
            "scale=0 needs a LeakyReLU after up2 (up_slope > 0, e.g. 0.01): a ReLU passes no "
            "gradient at 0, so the restarted stage would stay dead"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = SRN(config)
    restarted = SRN(config)
    restarted.load_state_dict({k: v.float().cpu() for k, v in model.state_dict().items()})
    for name in ("enc3", "lstm", "dec3", "up2"):
        if getattr(fresh, name) is not None:
            getattr(restarted, name).load_state_dict(getattr(fresh, name).state_dict())
    up2 = cast(nn.ConvTranspose2d, restarted.up2[0])
    up2.weight.mul_(scale)
    return restarted.eval()
