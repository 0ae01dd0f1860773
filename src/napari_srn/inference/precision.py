"""The device and precision policy: one place that decides autocast, memory format and tensor
transfer, for the eager runner, the lazy graph and training (through training/precision.py).

``precision="auto"`` (the default everywhere) means:

* **CUDA**: bfloat16 autocast where the GPU supports it, else float16; channels-last.
* **CPU with native bfloat16** (AVX512-BF16 or AMX, ``avx512_bf16``/``amx_bf16`` in ``lscpu``):
  bfloat16 autocast, channels-last. Measured 3.3x faster than plain float32 on a 2-core AMD EPYC
  with AVX512-BF16 and about 22x on a 2-core Xeon with AMX, agreeing with float32 at 58 dB PSNR
  on 8-bit photographs (docs/performance.md).
* **Any other CPU**: float32 in channels-last layout (oneDNN's convolutions are faster in it:
  1.5x measured on the EPYC above, 1.1x on the Xeon; within 1e-5 of the reference).
* **MPS**: float32.

``precision="float32"`` is the reference: the model's own float32 forward pass, bit for bit,
in the default memory layout.

Autocast runs the convolutions in the half type and keeps what needs range (the ConvLSTM's
sigmoid, additions) in float32; results come back as float32 either way.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np
import torch

from .options import PRECISIONS, check_precision

__all__ = ["PRECISIONS", "Precision", "cpu_has_bf16", "resolve_precision"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where autocast pays;
    elsewhere bfloat16 is emulated and slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


@dataclass(frozen=True)
class Precision:
    """How tensors are computed on one device: ``dtype`` is the autocast type (float32: none)."""

    device: torch.device
    dtype: torch.dtype
    channels_last: bool

    @classmethod
    def reference(cls, device: str | torch.device = "cpu") -> Precision:
        """The reference: the model's own float32 forward pass, in the default layout."""
        return cls(torch.device(device), torch.float32, channels_last=False)

    def on(self, device: torch.device) -> Precision:
        """The same arithmetic on another device (a dask worker's own): the plan resolves the
        precision once, and every task runs what the plan recorded. Raises ValueError where
        ``device`` cannot run it (float16 off CUDA)."""
        if device == self.device:
            return self
        _check_supported(self.name, device)
        return Precision(device, self.dtype, self.channels_last and device.type in ("cpu", "cuda"))

    @property
    def name(self) -> str:
        """``"float32"``, ``"bfloat16"`` or ``"float16"``."""
        return str(self.dtype).removeprefix("torch.")

    @property
    def activation_bytes(self) -> int:
        """Bytes per activation value (what the automatic tile size scales with)."""
        return 4 if self.dtype == torch.float32 else 2

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context in which to call the model."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def tensor(self, t: torch.Tensor) -> torch.Tensor:
        """A 4-D tensor on the device, in the memory format the model runs fastest in."""
        t = t.to(self.device)
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def to_device(self, a: np.ndarray) -> torch.Tensor:
        """``(C, H, W)`` array -> ``(1, C, H, W)`` tensor on the device."""
        return self.tensor(torch.from_numpy(np.ascontiguousarray(a))[None])

    @staticmethod
    def to_numpy(t: torch.Tensor) -> np.ndarray:
        """``(1, C, H, W)`` tensor -> ``(C, H, W)`` float32 array."""
        return t[0].float().cpu().numpy()


def resolve_precision(precision: str | Precision, device: torch.device) -> Precision:
    """The :class:`Precision` that ``precision`` means on ``device`` (see the module docstring).

    Raises ValueError for an unknown name, or float16 on a device other than CUDA.
    """
    if isinstance(precision, Precision):
        return precision
    check_precision(precision)
    kind = device.type
    if precision == "auto":
        if kind == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        elif kind == "cpu" and cpu_has_bf16():
            dtype = torch.bfloat16
        else:
            dtype = torch.float32
    else:
        dtype = _DTYPES[precision]
        _check_supported(precision, device)
    # explicit float32 is the reference: the model's own forward pass, bit for bit
    return Precision(
        device, dtype, channels_last=precision != "float32" and kind in ("cpu", "cuda")
    )


def _check_supported(name: str, device: torch.device) -> None:
    """Refuse a half type the device cannot run: float16 off CUDA, bfloat16 on MPS."""
    kind = device.type
    half_off_cuda = name == "float16" and kind != "cuda"
    if half_off_cuda or (name == "bfloat16" and kind not in ("cpu", "cuda")):
        raise ValueError(
            f"precision={name!r} is not supported on device {str(device)!r}; use "
            "'auto' (the best this device supports) or 'float32'"
        )
