"""Safe model files: safetensors with the config and a model card in the header.

A napari-srn weights file is a ``.safetensors`` file (no pickle: safe to open from strangers)
whose string metadata holds::

    format          "napari-srn"
    format_version  "1"
    config          JSON of SRNConfig
    card            JSON of the model card (see ModelCard)

Weights bundled with the package are listed in ``weights/registry.json`` with their SHA-256,
which is checked on every load.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import registry
from .config import SRNConfig
from .srn import SRN

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_PARAMETERS",
    "MAX_RES_BLOCKS",
    "ModelCard",
    "list_models",
    "load_model",
    "model_card",
    "resolve_device",
    "save_model",
    "sha256_of",
]

FORMAT = registry.FORMAT
FORMAT_VERSION = "1"
#: The largest network :func:`load_model` builds: 2**30 parameters (4 GiB as float32; the
#: bundled model has 6.9 million), and at most 64 blocks per stage (training's limit too).
#: Checked from the file's config before anything is built.
MAX_PARAMETERS = 1 << 30
MAX_RES_BLOCKS = 64


@dataclass(frozen=True)
class ModelCard:
    """What a weights file is: enough to decide whether to trust its output.

    Parameters
    ----------
    name : str
        The model's name (as :func:`list_models` lists it).
    description : str
        What the model is and how well it works, in a sentence or two.
    training_data : str
        What it was trained on.
    training_steps : int
        Optimiser steps taken.
    wall_time_hours : float
        Training time.
    hardware : str
        Where it was trained.
    metrics : dict
        Validation and benchmark figures (e.g. PSNR), by name.
    input_range : str
        The values the network takes.
    provisional : bool
        True for weights not trained to be used (napari-srn warns about their output).
    license : str
        The weights' license.
    """

    name: str
    description: str
    training_data: str = "untrained"
    training_steps: int = 0
    wall_time_hours: float = 0.0
    hardware: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    input_range: str = "float32 in [0, 1] (napari_srn.deblur maps image values to it)"
    provisional: bool = False
    license: str = "BSD-3-Clause"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Read a card from a mapping (a weights file's header), ignoring unknown keys.

        Parameters
        ----------
        data : dict
            Field name to value; missing fields take their defaults.

        Returns
        -------
        ModelCard
            The card.

        Raises
        ------
        TypeError
            If ``data`` is not a dict.
        """
        if not isinstance(data, dict):
            raise TypeError(f"a model card must be a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _registry() -> dict[str, Any]:
    return registry.registry()


def list_models() -> list[str]:
    """Names of the weights bundled with napari-srn (``"default"`` is an alias of one).

    Returns
    -------
    list of str
        The names :func:`load_model` accepts besides a path.
    """
    return registry.list_models(_registry())


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA when present, else CPU; an unavailable device is an error."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device={device!r} is not a device torch knows; use 'cpu', 'cuda', 'cuda:1', "
            "or None to choose automatically"
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available in this torch "
                f"build ({torch.__version__}) or on this machine; use device='cpu' or "
                "device=None"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} is not supported; use 'cpu', 'cuda' or 'mps'")
    return dev


def _resolve(name_or_path: str | os.PathLike) -> tuple[Path, str | None, str]:
    """Return (file, expected sha256 or None, display name)."""
    return registry.resolve(name_or_path, _registry())


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"weights file {str(path)!r} is not a readable safetensors file (corrupt, truncated, "
            f"or another format): {err}. napari-srn reads only .safetensors files, which "
            "cannot run code when opened"
        ) from err
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"weights file {str(path)!r} is a safetensors file but not a napari-srn model "
            f"(metadata 'format' is {meta.get('format')!r}, expected {FORMAT!r}); "
            "save models with napari_srn.save_model"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"weights file {str(path)!r} has format_version {meta.get('format_version')!r}; "
            f"this napari-srn reads version {FORMAT_VERSION}. Upgrade napari-srn"
        )
    return tensors, meta


def _check_size(path: Path, config: SRNConfig, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a config beyond :data:`MAX_RES_BLOCKS` or :data:`MAX_PARAMETERS`, from its fields
    alone: building even an empty (meta) network of ten million blocks takes minutes and
    gigabytes, so a few hundred bytes of header must not get that far."""
    held = sum(t.numel() for t in tensors.values())
    if config.res_blocks > MAX_RES_BLOCKS:
        raise ValueError(
            f"weights file {str(path)!r} declares res_blocks={config.res_blocks}; napari-srn "
            f"loads at most {MAX_RES_BLOCKS} blocks per stage (the file holds {held:,} "
            "parameters): it is damaged or not a napari-srn model"
        )
    declared = config.parameter_count
    if declared > MAX_PARAMETERS:
        raise ValueError(
            f"weights file {str(path)!r} declares a network of {declared:,} parameters "
            f"(width={config.width}, res_blocks={config.res_blocks}, kernel_size="
            f"{config.kernel_size}); napari-srn loads at most {MAX_PARAMETERS:,} (4 GiB as "
            f"float32) and the file holds {held:,}: it is damaged or not a napari-srn model"
        )


def _build(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> SRN:
    try:
        config = SRNConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, json.JSONDecodeError, TypeError, ValueError) as err:
        raise ValueError(f"weights file {str(path)!r} has no valid config: {err}") from err
    _check_size(path, config, tensors)
    # shapes first, from a network on the meta device (no memory): a small file whose config
    # declares a huge network is refused before anything of that size is allocated
    with torch.device("meta"):
        expected = SRN(config).state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"missing tensors {missing[:5]}{'...' if len(missing) > 5 else ''}")
        if unexpected:
            problems.append(
                f"unexpected tensors {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
            )
        if wrong:
            problems.append(f"shape mismatches {wrong[:3]}{'...' if len(wrong) > 3 else ''}")
        raise ValueError(
            f"weights file {str(path)!r} does not match its config {config}: " + "; ".join(problems)
        )
    not_float = sorted(k for k, v in tensors.items() if not v.dtype.is_floating_point)
    if not_float:
        raise ValueError(
            f"weights file {str(path)!r} holds non-float tensors {not_float[:5]} "
            f"({tensors[not_float[0]].dtype}); napari-srn weights are float16 or float32"
        )
    not_finite = sorted(k for k, v in tensors.items() if not bool(torch.isfinite(v).all()))
    if not_finite:
        raise ValueError(
            f"weights file {str(path)!r} holds NaN or infinite values in {not_finite[:5]}: "
            "the model is broken (a diverged training run?); use another weights file"
        )
    model = SRN(config)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int, expect_sha: str | None) -> tuple[SRN, str]:
    p = Path(path)
    digest = sha256_of(p)
    if expect_sha is not None and digest != expect_sha:
        raise ValueError(
            f"bundled weights file {path!r} has SHA-256 {digest}, expected {expect_sha}: the "
            "installation is damaged. Reinstall napari-srn"
        )
    tensors, meta = _read(p)
    model = _build(p, tensors, meta)
    try:
        card = ModelCard.from_dict(json.loads(meta.get("card") or "{}"))
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"weights file {path!r} has an unreadable model card: {err}") from err
    model.card, model.sha256, model.source = card, digest, path
    return model.eval(), digest


def load_model(
    name_or_path: str | os.PathLike = "default", device: str | torch.device | None = None
) -> SRN:
    """Load a bundled model by name, or a napari-srn ``.safetensors`` file by path.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"default"``, a name from :func:`list_models`, or a path to a weights file written by
        :func:`save_model` (or by ``napari-srn train``).
    device : str or torch.device, optional
        Where to put the model; None picks CUDA when available, else CPU. Asking for a device
        that is not there raises ValueError (no silent fallback).

    Returns
    -------
    SRN
        In eval mode, with ``.card`` (:class:`ModelCard`), ``.sha256`` and ``.source`` set.

    Examples
    --------
    >>> from napari_srn import load_model
    >>> model = load_model("default", device="cpu")
    >>> model.config.channels
    3
    """
    dev = resolve_device(device)
    path, expect_sha, _ = _resolve(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    st = path.stat()
    cached, _ = _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size, expect_sha)
    # each caller gets its own copy, so moving or fine-tuning it leaves the cache intact
    model = SRN(cached.config)
    model.load_state_dict(cached.state_dict())
    for attr in ("card", "sha256", "source"):
        setattr(model, attr, getattr(cached, attr))
    return model.eval().to(dev)


def model_card(name_or_path: str | os.PathLike = "default") -> ModelCard:
    """The model card of a bundled model or weights file, read from the file's header only
    (no tensors, no network: :func:`load_model` checks the weights).

    Parameters
    ----------
    name_or_path : str or path-like, optional
        As for :func:`load_model`.

    Returns
    -------
    ModelCard
        What the weights are: training data, steps, metrics, and whether they are provisional.

    Raises
    ------
    ValueError
        For a file that is not a napari-srn weights file, or whose card cannot be read.
    """
    from .registry import read_card

    card = read_card(name_or_path)
    try:
        return ModelCard.from_dict(card)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"weights file {str(name_or_path)!r} has an unreadable model card: {err}"
        ) from err


def save_model(
    model: SRN,
    path: str | os.PathLike,
    card: ModelCard,
    *,
    half: bool = False,
    overwrite: bool = False,
) -> str:
    """Write ``model`` to a napari-srn ``.safetensors`` file; return its SHA-256.

    The file is written to a temporary name and renamed, so a crash never leaves a
    half-written model.

    Parameters
    ----------
    model : SRN
        The network; its config goes into the file's header.
    path : str or path-like
        The file to write, ending in ``.safetensors``.
    card : ModelCard
        The model card stored in the header.
    half : bool, optional
        Store float16 weights (half the size; loaded back as float32).
    overwrite : bool, optional
        Replace an existing file.

    Returns
    -------
    str
        The SHA-256 of the written file (hex).

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.safetensors``, or if :func:`load_model` would refuse the
        network (more than :data:`MAX_RES_BLOCKS` blocks per stage or :data:`MAX_PARAMETERS`
        parameters).
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path must end in .safetensors, got {str(path)!r}")
    cfg = model.config
    if cfg.res_blocks > MAX_RES_BLOCKS or cfg.parameter_count > MAX_PARAMETERS:
        raise ValueError(
            f"the model has res_blocks={cfg.res_blocks} and {cfg.parameter_count:,} parameters; "
            f"load_model reads at most {MAX_RES_BLOCKS} blocks per stage and "
            f"{MAX_PARAMETERS:,} parameters, so the file could not be loaded back"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_json(),
        "card": json.dumps(asdict(card), sort_keys=True),
    }
    tmp = path.with_name(path.name + ".partial")
    save_file(tensors, str(tmp), metadata=meta)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # safetensors writes 0600; a model is meant to be shared
    os.replace(tmp, path)
    return sha256_of(path)
