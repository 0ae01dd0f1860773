"""A training run's resume checkpoint: what it holds, how it is written (atomically) and
read back (``weights_only``, every key checked), and the rule for which config changes a
resumed run accepts.

The checkpoint holds the model, optimizer, scheduler, loss scaler, the moving average of the
weights, the step, the wall time so far and every random generator's state, so that a resumed
run computes what the uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..model.config import FIELDS_ADDED_LATER, SRNConfig
from .config import MODEL_FIELDS, RUN_ONLY_FIELDS, TrainConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_KEYS",
    "check_resume_config",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "napari-srn-train-checkpoint"


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every random generator's state (torch, CUDA on ``device``, numpy's and Python's global
    ones) as tensors and plain types, so that ``torch.load(weights_only=True)`` reads it."""
    # the legacy global generators are saved too, in case user code (a callback) uses them
    legacy = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())  # noqa: NPY002
    name, key, pos, has_gauss, cached = legacy
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if device.type == "cuda" else [],
        "numpy": {
            "name": name,
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [version, list(internal), gauss_next],
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Put back the generators' states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    key = n["key"].numpy().astype(np.uint32)
    legacy = (n["name"], key, n["pos"], n["has_gauss"], n["cached_gaussian"])
    np.random.set_state(legacy)  # noqa: NPY002
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_checkpoint(path: Path, **state: Any) -> None:
    """Write ``state`` with the checkpoint format's tag, beside ``path`` and then over it (a
    crash while writing leaves the previous checkpoint whole)."""
    tmp = path.with_name(path.name + ".partial")
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint without unpickling code (``weights_only``); ValueError naming the
    file when it is not one of ours, lacks a key, or has an invalid step or time."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a broken file
        raise ValueError(f"cannot read the checkpoint {str(path)!r}: {err}") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is not a napari-srn training checkpoint")
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ValueError(f"the checkpoint {str(path)!r} is incomplete: it lacks {missing}")
    step, elapsed = state["step"], state["elapsed_s"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"the checkpoint {str(path)!r} has an invalid step {step!r}")
    if not isinstance(elapsed, (int, float)) or not 0 <= elapsed < math.inf:
        raise ValueError(f"the checkpoint {str(path)!r} has an invalid elapsed_s {elapsed!r}")
    if not isinstance(state["config"], dict):
        raise ValueError(f"the checkpoint {str(path)!r} has no config")
    return state


#: Architecture fields that checkpoints written before them do not have, at the value those
#: checkpoints' networks had: the fields SRNConfig leaves out of headers at those values.
ARCHITECTURE_ADDED_LATER = FIELDS_ADDED_LATER


def checkpoint_architecture(config: dict[str, Any]) -> SRNConfig:
    """The network of a checkpoint's resolved config (older checkpoints included)."""
    saved = {**ARCHITECTURE_ADDED_LATER, **config}
    return SRNConfig.from_dict({k: saved[k] for k in MODEL_FIELDS})


#: What every checkpoint holds (checked before anything of the run is touched).
CHECKPOINT_KEYS = ("step", "elapsed_s", "model", "optimizer", "scheduler", "rng", "config")


def check_resume_config(saved: dict[str, Any], config: TrainConfig, out: Path, step: int) -> None:
    """Refuse a resume whose config would compute something else; ``steps`` alone may change
    (longer, or shorter but past the checkpoint's ``step``): the schedule then follows it.
    ``init_weights`` may name another path (or none): a resumed run takes its weights from the
    checkpoint, so where the starting weights lie does not change what is computed; nor does
    ``out``, so a run directory may be moved or copied and resumed where it now lies."""
    try:
        saved = {**ARCHITECTURE_ADDED_LATER, **saved}
        old = TrainConfig.from_dict({**saved, "resume": False, "overwrite": False})
    except ValueError as err:
        raise ValueError(f"the checkpoint in {str(out)!r} has an unreadable config: {err}") from err
    diffs = [
        f"{f.name}: the run has {getattr(old, f.name)!r}, now {getattr(config, f.name)!r}"
        for f in dataclasses.fields(TrainConfig)
        if f.name not in RUN_ONLY_FIELDS | {"steps", "init_weights", "out"}
        and getattr(old, f.name) != getattr(config, f.name)
    ]
    if config.steps != old.steps:
        if config.steps <= step:
            diffs.append(
                f"steps: the checkpoint is at step {step}, so steps must be larger than "
                f"{step} (the run has {old.steps}, now {config.steps})"
            )
        else:
            log.warning(
                "changing the run's length from %d to %d steps at step %d: the learning rate "
                "follows the new schedule from here, so the run equals no uninterrupted run",
                old.steps,
                config.steps,
                step,
            )
    if diffs:
        raise ValueError(
            f"cannot resume {str(out)!r} exactly with a different config:\n  - "
            + "\n  - ".join(diffs)
            + "\nResume with the run's own config (napari-srn train --resume --out RUN), or "
            "start a new run (--init-weights RUN/model.safetensors fine-tunes from it)"
        )
