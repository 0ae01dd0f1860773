"""Turn a training checkpoint (at any step) into a napari-srn weights file."""

from __future__ import annotations

import os
from pathlib import Path

from ..model.srn import SRN
from ..model.weights import ModelCard, save_model
from .checkpoint import checkpoint_architecture, load_checkpoint

__all__ = ["export_checkpoint"]


def export_checkpoint(
    checkpoint: str | os.PathLike, dest: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write the weights of a run's ``checkpoint.pt`` to ``dest`` (``.safetensors``, float16).

    Used to evaluate a run while it trains; the model card says which step it is and that it
    is an interim checkpoint (``provisional=True``). A run with ``ema_decay`` exports its moving
    average of the weights. The finished run writes its own ``model.safetensors``.
    """
    state = load_checkpoint(Path(checkpoint))
    cfg = state["config"]
    model = SRN(checkpoint_architecture(cfg))
    averaged = "ema" in state
    model.load_state_dict(state["ema"] if averaged else state["model"])
    step = int(state["step"])
    card = ModelCard(
        name=f"{cfg.get('name') or 'srn'}-step{step}",
        description=f"Interim checkpoint at step {step} of {cfg['steps']} of a training run "
        f"({cfg.get('description') or 'no description'})"
        + (
            f"; moving average of the weights (decay {state.get('ema_decay')})."
            if averaged
            else "."
        ),
        training_data=str(cfg.get("data")),
        training_steps=step,
        wall_time_hours=float(state.get("elapsed_s", 0.0)) / 3600,
        metrics={k: v for k, v in (state.get("val") or {}).items()},
        provisional=True,
    )
    save_model(model, dest, card, half=True, overwrite=overwrite)
    return Path(dest)
