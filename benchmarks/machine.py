"""What machine this is, for the benchmarks beside it (not shipped): the CPU's name and vector
units (from /proc/cpuinfo), its estimated peak FLOP/s, the GPU and torch's threads."""

from __future__ import annotations

import os
import platform

__all__ = ["cpu_field", "cpu_flags", "cpu_peak_tflops", "describe_machine"]


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``, ``amx_bf16``, ...); empty if unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next(line for line in f if line.startswith("flags"))
        return set(line.split(":", 1)[1].split())
    except (OSError, StopIteration):
        return set()


def cpu_field(name: str) -> str | None:
    """The first /proc/cpuinfo line starting with ``name`` (e.g. ``"model name"``), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith(name))
    except (OSError, StopIteration):
        return None


def cpu_peak_tflops() -> dict[str, float] | None:
    """Estimated peak TFLOP/s of the usable cores for float32 and bfloat16: cores x clock (``cpu
    MHz``) x FLOPs per cycle per core from the flags: float32 FMA 32 (AVX2, or AVX-512 on AMD Zen
    4, which runs 512-bit FMAs as two halves) or 64 (AVX-512 on Intel); bfloat16 1024 with AMX,
    twice float32 with AVX512-BF16, else float32's rate. None where /proc/cpuinfo is missing."""
    mhz = cpu_field("cpu MHz")
    if mhz is None:
        return None
    flags = cpu_flags()
    amd = cpu_field("vendor_id") == "AuthenticAMD"
    if "avx512f" in flags:
        fp32 = 32 if amd else 64
    elif "avx2" in flags and "fma" in flags:
        fp32 = 32
    else:
        fp32 = 8
    if "amx_bf16" in flags:
        bf16 = 1024
    elif "avx512_bf16" in flags:
        bf16 = 2 * fp32
    else:
        bf16 = fp32
    cores = len(os.sched_getaffinity(0))
    hz = float(mhz) * 1e6
    return {"float32": cores * hz * fp32 / 1e12, "bfloat16": cores * hz * bf16 / 1e12}


def describe_machine() -> str:
    """One line: CPU, vector units, cores, GPU, torch and its threads, Python."""
    cpu = cpu_field("model name") or platform.processor() or "unknown CPU"
    flags = cpu_flags()
    isa = [f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags]
    import torch

    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{cpu} ({', '.join(isa) or 'no AVX2'}), {len(os.sched_getaffinity(0))} cores{gpu}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}"
    )
