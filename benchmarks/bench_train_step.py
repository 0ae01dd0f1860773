"""Time one training step of the SRN on this machine, in float32 or bfloat16 autocast.

    python benchmarks/bench_train_step.py --width 16 --crop 128 --batch 4
    python benchmarks/bench_train_step.py --width 32 --crop 256 --batch 4 --modes fp32 bf16cl
    python benchmarks/bench_train_step.py --kernel-size 3 --block nafblock --width 32

Modes: ``fp32``; ``bf16`` (CPU autocast); ``bf16cl`` (autocast and channels-last tensors, what
``napari-srn train`` uses on a CPU with native bfloat16). Random data, the multi-scale loss and
Adam, 3 warm-up steps, then the mean of ``--steps`` steps. Prints ms/step and kilopixels/s.
"""

from __future__ import annotations

import argparse
import time

import torch

from napari_srn import SRN, SRNConfig
from napari_srn.training.metrics import multiscale_loss


def time_step(
    width: int,
    crop: int,
    batch: int,
    mode: str,
    steps: int,
    kernel_size: int = 5,
    block: str = "resblock",
) -> float:
    torch.manual_seed(0)
    config = SRNConfig(width=width, kernel_size=kernel_size, block=block, global_residual=True)
    model = SRN(config)
    layout = torch.channels_last if mode == "bf16cl" else torch.contiguous_format
    model = model.to(memory_format=layout)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.rand(batch, 3, crop, crop).contiguous(memory_format=layout)
    y = torch.rand(batch, 3, crop, crop)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode != "fp32"):
            loss = multiscale_loss(model(x, return_all=True), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--kernel-size", type=int, default=5)
    p.add_argument("--block", default="resblock", choices=["resblock", "nafblock", "gateblock"])
    p.add_argument("--modes", nargs="+", default=["fp32", "bf16", "bf16cl"])
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for mode in args.modes:
        dt = time_step(
            args.width, args.crop, args.batch, mode, args.steps, args.kernel_size, args.block
        )
        kpx = args.batch * args.crop**2 / dt / 1e3
        print(
            f"{args.block} k{args.kernel_size} width {args.width}, {args.batch} x {args.crop}^2, "
            f"{mode:6s}: "
            f"{dt * 1e3:6.0f} ms/step {kpx:7.0f} kpx/s"
        )


if __name__ == "__main__":
    main()
