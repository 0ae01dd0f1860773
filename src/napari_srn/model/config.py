"""Configuration of the SRN-DeblurNet architecture (no torch needed to build or check one)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["VARIANTS", "SRNConfig", "config_for_variant"]

Recurrent = Literal["none", "convlstm"]
Block = Literal["resblock", "nafblock", "gateblock"]
Pyramid = Literal["bilinear", "area"]


@dataclass(frozen=True)
class SRNConfig:
    """Architecture of a scale-recurrent deblurring network.

    The defaults are the authors' released ``color`` model (Tao et al., CVPR 2018; 6,881,251
    parameters). Narrower, shallower or fewer-scale variants are one keyword away, e.g.
    ``SRNConfig(width=8, res_blocks=1)`` for fast tests on a CPU.

    Parameters
    ----------
    channels : int
        Image channels the network takes and returns: 3 (color) or 1 (gray).
    width : int
        Channels of the first encoder block; the next two blocks use 2x and 4x as many
        (32/64/128 in the paper).
    scales : int
        Number of coarse-to-fine levels at ratio 0.5 (3 in the paper; 1 is the paper's
        single-scale ablation).
    res_blocks : int
        ResBlocks after each encoder convolution and before each decoder upsampling (3).
    kernel_size : int
        Size of the encoder, decoder and ResBlock convolutions (odd; 5 in the paper).
    recurrent : {"none", "convlstm"}
        Module at the bottleneck: a ConvLSTM whose state is carried from scale to scale
        (the paper's ``lstm`` model), or nothing (the authors' ``color`` and ``gray`` models).
    global_residual : bool
        If True the network predicts a correction added to its blurred input at each scale
        instead of the sharp image itself (not in the paper; off by default). The output
        convolution then starts at zero, so an untrained network returns its input.
    block : {"resblock", "nafblock", "gateblock"}
        The blocks of each encoder and decoder stage: the paper's ResBlock (two
        ``kernel_size`` convolutions), a NAFNet-style block (LayerNorm, pointwise and
        depthwise 3x3 convolutions, SimpleGate; not in the paper), which costs about a sixth of
        a 5x5 ResBlock's arithmetic at the same width (``kernel_size`` still sets the stage
        convolutions around it), or a GateBlock (LayerNorm and SimpleGate around two dense
        ``kernel_size`` convolutions, then a gated pointwise feed-forward part; not in the
        paper), 30 C^2 multiply-adds per pixel against a 3x3 ResBlock's 18 C^2.
    up_slope : float
        Negative slope of the activation after each of the decoder's two upsamplings, in
        [0, 1): 0 is the paper's ReLU; above 0 a LeakyReLU (not in the paper). Each upsampling
        is the only way from a lower-resolution stage to the output, and when a ReLU there
        outputs only zeros it passes no gradient: the whole stage below stops contributing
        and never starts again (the earlier default ``srn-color-w16k3`` lost its quarter-resolution
        stage that way). A small slope such as 0.01 keeps the gradient flowing and, at the
        start of training, changes the output by very little.
    pyramid : {"bilinear", "area"}
        How the blurred input is shrunk to each coarser scale (and, in training, the sharp
        target with it): ``"bilinear"``, the authors' code, resizes the full image bilinearly
        without anti-aliasing, so that at 1/4 and 1/8 of the size each pixel is the mean of 2 x 2
        of the 4 x 4 or 8 x 8 pixels it stands for and fine detail folds into false patterns;
        ``"area"`` takes the mean of all of them (not in the paper). Both give the same
        half-size image, so they differ only from three scales on.
    """

    channels: int = 3
    width: int = 32
    scales: int = 3
    res_blocks: int = 3
    kernel_size: int = 5
    recurrent: Recurrent = "none"
    global_residual: bool = False
    block: Block = "resblock"
    up_slope: float = 0.0
    pyramid: Pyramid = "bilinear"

    def __post_init__(self) -> None:
        errors = []

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if self.channels not in (1, 3) or not is_int(self.channels):
            errors.append(f"channels must be 1 (gray) or 3 (color), got {self.channels!r}")
        if not is_int(self.width) or self.width < 1:
            errors.append(f"width must be a positive integer, got {self.width!r}")
        if not is_int(self.scales) or not 1 <= self.scales <= 6:
            errors.append(f"scales must be an integer from 1 to 6, got {self.scales!r}")
        if not is_int(self.res_blocks) or self.res_blocks < 0:
            errors.append(f"res_blocks must be an integer >= 0, got {self.res_blocks!r}")
        if not is_int(self.kernel_size) or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            errors.append(f"kernel_size must be a positive odd integer, got {self.kernel_size!r}")
        if self.recurrent not in ("none", "convlstm"):
            errors.append(f"recurrent must be 'none' or 'convlstm', got {self.recurrent!r}")
        if self.block not in ("resblock", "nafblock", "gateblock"):
            errors.append(
                f"block must be 'resblock', 'nafblock' or 'gateblock', got {self.block!r}"
            )
        if not isinstance(self.global_residual, bool):
            errors.append(f"global_residual must be True or False, got {self.global_residual!r}")
        slope = self.up_slope
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 <= slope < 1:
            errors.append(f"up_slope must be a number in [0, 1), got {slope!r}")
        if self.pyramid not in ("bilinear", "area"):
            errors.append(f"pyramid must be 'bilinear' or 'area', got {self.pyramid!r}")
        if errors:
            raise ValueError("Invalid SRNConfig:\n  - " + "\n  - ".join(errors))

    @property
    def divisor(self) -> int:
        """Factor that the height and width of the network's input must be divisible by.

        Two stride-2 convolutions at every scale (4) times the ratio between the finest and the
        coarsest scale (``2 ** (scales - 1)``).
        """
        return 4 * 2 ** (self.scales - 1)

    @property
    def parameter_count(self) -> int:
        """Parameters of the network this config describes, counted from the fields alone (no
        torch, nothing built): what :func:`napari_srn.load_model` checks a file's config by
        before it builds anything. Equal to ``sum(p.numel() for p in SRN(config).parameters())``
        (tested for every block, recurrent module and channel count)."""
        c, w, k = self.channels, self.width, self.kernel_size
        stages = (w, 2 * w, 4 * w, 4 * w, 2 * w, w)  # enc1-3, dec3-1: res_blocks blocks each
        blocks = self.res_blocks * sum(_block_parameters(self.block, n, k) for n in stages)
        convs = _conv(2 * c, w, k) + _conv(w, 2 * w, k) + _conv(2 * w, 4 * w, k) + _conv(w, c, k)
        deconvs = _conv(4 * w, 2 * w, 4) + _conv(2 * w, w, 4)  # 4x4 transposed convolutions
        lstm = _conv(8 * w, 16 * w, 3) if self.recurrent == "convlstm" else 0
        return blocks + convs + deconvs + lstm

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what :meth:`from_dict` reads back).

        ``up_slope`` and ``pyramid``, added after the first weights files, are left out at
        their defaults (0, ``"bilinear"``), so those models keep the same header and the same
        identity in the zarr stores they wrote.

        Returns
        -------
        dict
            Field name to value.
        """
        values = dataclasses.asdict(self)
        for name, default in FIELDS_ADDED_LATER.items():
            if values[name] == default:
                del values[name]
        return values

    def to_json(self) -> str:
        """The fields as JSON with sorted keys (as stored in a weights file's header).

        Returns
        -------
        str
            The JSON text of :meth:`to_dict`.
        """
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SRNConfig:
        """Build a config from a mapping, rejecting unknown keys (all of them in one message).

        Parameters
        ----------
        data : dict
            Field name to value, e.g. from :meth:`to_dict`; missing fields take their defaults.

        Returns
        -------
        SRNConfig
            The config, checked as when constructed directly.

        Raises
        ------
        TypeError
            If ``data`` is not a dict.
        ValueError
            For unknown fields or invalid values.
        """
        if not isinstance(data, dict):
            raise TypeError(f"SRNConfig.from_dict expects a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown SRNConfig field(s) {unknown}; valid fields are {sorted(known)}"
            )
        return cls(**data)


#: Fields added after the first weights files, at the value those files' networks had: left
#: out of :meth:`SRNConfig.to_dict` at that value, and filled in for checkpoints written before
#: them (:mod:`napari_srn.training.checkpoint`).
FIELDS_ADDED_LATER: dict[str, Any] = {"up_slope": 0.0, "pyramid": "bilinear"}


def _conv(cin: int, cout: int, k: int) -> int:
    """Parameters of a k x k convolution with bias (transposed or not)."""
    return cin * cout * k * k + cout


def _block_parameters(block: str, n: int, k: int) -> int:
    """Parameters of one block of ``n`` channels (see ``blocks.py``)."""
    norms_and_scales = 2 * 2 * n + 2 * n  # two LayerNorms (weight, bias), beta and gamma
    if block == "nafblock":  # 1x1 n->2n, depthwise 3x3 of 2n, 1x1 n->n; 1x1 n->2n, 1x1 n->n
        depthwise = 2 * n * 9 + 2 * n
        return norms_and_scales + 2 * _conv(n, 2 * n, 1) + depthwise + 2 * _conv(n, n, 1)
    if block == "gateblock":  # k x k n->2n, k x k n->n; 1x1 n->2n, 1x1 n->n
        dense = _conv(n, 2 * n, k) + _conv(n, n, k)
        return norms_and_scales + dense + _conv(n, 2 * n, 1) + _conv(n, n, 1)
    return 2 * _conv(n, n, k)  # ResBlock: two k x k convolutions


#: The authors' named variants (``--model`` in their code) plus the color ConvLSTM model.
VARIANTS: dict[str, SRNConfig] = {
    "color": SRNConfig(channels=3, recurrent="none"),
    "gray": SRNConfig(channels=1, recurrent="none"),
    "lstm": SRNConfig(channels=1, recurrent="convlstm"),
    "color_lstm": SRNConfig(channels=3, recurrent="convlstm"),
}


def config_for_variant(name: str) -> SRNConfig:
    """Return the config of a named variant (``color``, ``gray``, ``lstm``, ``color_lstm``)."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"Unknown SRN variant {name!r}; choose one of {sorted(VARIANTS)}"
        ) from None
