"""benchmarks/gpu_check.py, run on the CPU at small sizes (the GPU run uses the same code)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from ..helpers import ROOT


def _run(device: str) -> tuple[int, dict]:
    script = ROOT / "benchmarks" / "gpu_check.py"
    args = [sys.executable, str(script), "--device", device, "--quick"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    return out.returncode, json.loads(out.stdout.strip().splitlines()[-1])


def test_gpu_check_passes_on_the_cpu_with_a_simulated_out_of_memory():
    code, summary = _run("cpu")
    assert code == 0 and summary["ok"]
    assert min(summary["agreement_db"].values()) >= 50
    assert set(summary["timings"]) == {"frame", "large"}
    assert "retrying this frame with tile_size=" in summary["oom_retry"]["warnings"][0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_check_passes_on_cuda():
    code, summary = _run("cuda")
    assert code == 0, summary
