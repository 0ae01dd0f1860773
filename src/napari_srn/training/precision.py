"""The precision a training run computes in: TrainConfig's ``amp`` and ``amp_dtype`` read
through inference's one precision policy (:mod:`napari_srn.inference.precision`).

Training asks that policy for a precision by name, and only the name is training's own:

* ``amp`` false: ``"float32"``;
* on CUDA: ``amp_dtype`` as asked (``"bfloat16"``, or ``"float16"`` with loss scaling);
* anywhere else: ``"auto"``, which is bfloat16 on a CPU with native bfloat16 (AVX512-BF16 or
  AMX) and float32 on other CPUs and on MPS. float16 is CUDA only: asked for on a CPU with
  native bfloat16, it is refused with a warning and bfloat16 is used.

So the autocast type follows inference's rules (which CPUs compute bfloat16 natively, which
device takes which half type). The memory layout is the one thing training decides for itself:
channels-last on CPU whatever the dtype (the model is converted to it when it is built: oneDNN's
convolutions are faster in it) and never on CUDA, where inference's ``"auto"`` and half types
use channels-last. Training's numbers depend on the layout, so a run resumes and repeats
exactly only if it stays as it is. Validation during training runs in this same precision.
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from ..inference.precision import Precision, cpu_has_bf16, resolve_precision

__all__ = ["training_precision"]

log = logging.getLogger(__name__)


def training_precision(amp: bool, amp_dtype: str, device: torch.device) -> Precision:
    """The :class:`~napari_srn.inference.precision.Precision` a run trains and validates in
    on ``device`` (see the module docstring): its ``dtype`` is the autocast type (float32:
    none), and ``channels_last`` is true on CPU."""
    if not amp:
        name = "float32"
    elif device.type == "cuda":
        name = amp_dtype
    else:
        name = "auto"
        if amp_dtype == "float16" and device.type == "cpu" and cpu_has_bf16():
            log.warning("amp_dtype float16 is not supported on CPU: using bfloat16")
    precision = resolve_precision(name, device)
    return dataclasses.replace(precision, channels_last=device.type == "cpu")
