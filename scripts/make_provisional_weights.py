"""Write the provisional bundled default: the paper's color architecture with a global residual
and a zeroed output convolution, so it returns its input unchanged (an identity).

It exists so that the whole pipeline (weights format, registry, tiling, CLI, napari) ships and is
tested with the real architecture and cost before trained weights land. Run from the repo root:

    python scripts/make_provisional_weights.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from napari_srn import SRN, SRNConfig
from napari_srn.model.weights import ModelCard, save_model

NAME = "srn-color-provisional"
WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "napari_srn" / "model" / "weights"


def main() -> None:
    torch.manual_seed(0)
    model = SRN(SRNConfig(channels=3, global_residual=True))
    torch.nn.init.zeros_(model.out.weight)
    torch.nn.init.zeros_(model.out.bias)
    card = ModelCard(
        name=NAME,
        description=(
            "PROVISIONAL, UNTRAINED. The authors' 3-scale color architecture (6,881,251 "
            "parameters, width 32) with a global residual and a zeroed output convolution: it "
            "returns its input unchanged. It has the real network's size and speed so the "
            "pipeline can be used and measured; trained weights replace it in a later release."
        ),
        training_data="none",
        training_steps=0,
        metrics={"note": "identity: output equals input, so it does not deblur"},
        provisional=True,
    )
    sha = save_model(model, WEIGHTS / f"{NAME}.safetensors", card, half=True, overwrite=True)
    registry = {
        "default": NAME,
        "models": {NAME: {"file": f"{NAME}.safetensors", "sha256": sha}},
    }
    (WEIGHTS / "registry.json").write_text(json.dumps(registry, indent=2) + "\n")
    print(f"wrote {NAME}.safetensors sha256={sha}")


if __name__ == "__main__":
    main()
