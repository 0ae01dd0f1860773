"""Throughput and peak memory of napari_srn.deblur: whole image vs automatic tiles.

Prints, in one run on one machine: whole-image throughput of the model (megapixels/s), tiled
throughput at the automatic tile size, their ratio (goal >= 0.85 on the CPU), and the peak
memory of each. Each mode runs in a fresh subprocess so that its peak resident memory (or peak
CUDA memory) is its own.

    python benchmarks/bench_deblur.py                 # 2048 x 2048 RGB, default model
    python benchmarks/bench_deblur.py --size 1024 --device cuda
    python benchmarks/bench_deblur.py --calibrate     # bytes per pixel for auto_tile_size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )


def _image(size: int):
    import numpy as np
    from skimage.transform import resize

    from napari_srn.sample import blurred_sample

    img = resize(blurred_sample(), (size, size), order=1, preserve_range=True)
    return img.astype(np.uint8)


def _child(args: argparse.Namespace) -> None:
    """Run one mode and print a JSON line."""
    import numpy as np
    import torch

    from napari_srn import deblur, load_model
    from napari_srn._deblur import auto_tile_size

    model = load_model(args.model, device=args.device)
    device = next(model.parameters()).device
    image = _image(args.size)
    deblur(image[:128, :128], model=model, channel_axis=-1)  # warm-up (kernels, allocator)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    if args.mode == "whole":
        tile = -(-args.size // model.divisor) * model.divisor
    else:
        tile = auto_tile_size(model, device)
    steps = []
    t0 = time.perf_counter()
    out = deblur(
        image, model=model, channel_axis=-1, tile_size=tile, progress=lambda d, t: steps.append(t)
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert out.shape == image.shape and np.isfinite(out).all()
    print(
        json.dumps(
            {
                "mode": args.mode,
                "tile": tile,
                "model_calls": steps[-1] if steps else 1,
                "seconds": seconds,
                "mpx_per_s": args.size**2 / 1e6 / seconds,
                "peak_rss_gib": peak_rss / 2**30,
                "rss_growth_gib": (peak_rss - base_rss) / 2**30,
                "peak_cuda_gib": (
                    torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
                ),
                "device": str(device),
            }
        )
    )


def _calibrate(args: argparse.Namespace) -> None:
    """Peak RSS growth of single-tile runs at two sizes -> bytes per pixel per unit width."""
    rows = []
    for size in (512, 1024):
        res = _spawn(argparse.Namespace(**{**vars(args), "size": size, "mode": "whole"}))
        rows.append((size, res["rss_growth_gib"] * 2**30))
    (s1, m1), (s2, m2) = rows
    from napari_srn import load_model

    width = load_model(args.model, device="cpu").config.width
    slope = (m2 - m1) / (s2**2 - s1**2)
    print(
        f"peak RSS growth: {s1}^2 -> {m1 / 2**20:.0f} MiB, {s2}^2 -> {m2 / 2**20:.0f} MiB; "
        f"{slope:.0f} bytes/pixel = {slope / width:.1f} bytes/pixel/width (width {width})"
    )


def _spawn(ns: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        ns.mode,
        "--size",
        str(ns.size),
        "--model",
        ns.model,
    ] + (["--device", ns.device] if ns.device else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{ns.mode} run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048, help="side of the square RGB test image")
    p.add_argument("--model", default="default")
    p.add_argument("--device", default=None)
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--child", choices=["whole", "tiled"], dest="mode", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        return _child(args)
    print(f"machine: {_machine()}")
    if args.calibrate:
        return _calibrate(args)
    print(f"image: {args.size} x {args.size} RGB uint8, model {args.model!r}")
    whole = _spawn(argparse.Namespace(**{**vars(args), "mode": "whole"}))
    tiled = _spawn(argparse.Namespace(**{**vars(args), "mode": "tiled"}))
    for r in (whole, tiled):
        mem = (
            f"peak CUDA {r['peak_cuda_gib']:.2f} GiB"
            if r["peak_cuda_gib"] is not None
            else f"peak RSS {r['peak_rss_gib']:.2f} GiB (+{r['rss_growth_gib']:.2f} GiB)"
        )
        print(
            f"{r['mode']:>6}: tile {r['tile']:>5}, {r['model_calls']:>3} model calls, "
            f"{r['seconds']:7.1f} s, {r['mpx_per_s']:.4f} MP/s, {mem} [{r['device']}]"
        )
    ratio = tiled["mpx_per_s"] / whole["mpx_per_s"]
    print(f"tiled / whole throughput: {ratio:.3f} (goal >= 0.85 on CPU)")


if __name__ == "__main__":
    main()
