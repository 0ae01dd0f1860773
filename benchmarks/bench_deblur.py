"""Throughput, achieved FLOP/s and peak memory of napari_srn.deblur, per precision.

Prints, in one run on one machine: megapixels per second of ``deblur`` at the automatic tile
size for ``precision="float32"`` (the reference) and ``precision="auto"`` (the default) and
their ratio; the achieved TFLOP/s (the model's FLOPs per megapixel, counted by
``torch.utils.flop_counter``, times MP/s) and its ratio to the CPU's peak (estimated below); the
peak memory of each run. With ``--whole`` it also compares one tile per level against the
automatic tiles. Each run is a fresh subprocess, so its peak resident (or CUDA) memory is its
own.

Peak estimate on a CPU: usable cores (``os.sched_getaffinity``; a VM's vCPUs may be
hyperthreads, which overstates the peak) x clock (``cpu MHz`` in /proc/cpuinfo) x FLOPs per
cycle per core from the ``lscpu`` flags: float32 FMA 32 (AVX2, or AVX-512 on AMD Zen 4, which
runs 512-bit FMAs as two 256-bit halves) or 64 (AVX-512 on Intel); bfloat16 1024 with AMX
(``amx_bf16``), else twice the float32 rate with AVX512-BF16 dot products, else the float32 rate.

    python benchmarks/bench_deblur.py                 # 1024 x 1024 RGB, default model
    python benchmarks/bench_deblur.py --size 2048 --whole
    python benchmarks/bench_deblur.py --device cuda
    python benchmarks/bench_deblur.py --calibrate --precision auto   # bytes per pixel
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from machine import cpu_peak_tflops, describe_machine  # benchmarks/machine.py, beside this script


def _image(size: int):
    import numpy as np
    from skimage.transform import resize

    from napari_srn.sample import blurred_sample

    img = resize(blurred_sample(), (size, size), order=1, preserve_range=True)
    return img.astype(np.uint8)


def flops_per_megapixel(model) -> float:
    """FLOPs of one full forward pass per megapixel (torch's counter, 256 x 256 RGB input)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, model.config.channels, 256, 256, device=next(model.parameters()).device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / (256 * 256 / 1e6)


def _child(args: argparse.Namespace) -> None:
    """Run one mode and print a JSON line."""
    import numpy as np
    import torch

    from napari_srn import auto_tile_size, deblur, load_model
    from napari_srn.inference.precision import resolve_precision

    model = load_model(args.model, device=args.device)
    device = next(model.parameters()).device
    policy = resolve_precision(args.precision, device)
    image = _image(args.size)
    kw = {"model": model, "channel_axis": -1, "precision": args.precision}
    deblur(image[:128, :128], **kw)  # warm-up (kernels, allocator)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    if args.mode == "whole":
        tile = -(-args.size // model.divisor) * model.divisor
    else:
        tile = auto_tile_size(model, device, precision=args.precision)
    steps = []
    t0 = time.perf_counter()
    out = deblur(image, **kw, tile_size=tile, progress=lambda d, t: steps.append(t))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert out.shape == image.shape and np.isfinite(out).all()
    if args.save:
        np.save(args.save, out)
    print(
        json.dumps(
            {
                "mode": args.mode,
                "precision": policy.name + (" channels-last" if policy.channels_last else ""),
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
        res = _spawn(args, mode="whole", size=size)
        rows.append((size, res["rss_growth_gib"] * 2**30))
    (s1, m1), (s2, m2) = rows
    from napari_srn import load_model

    width = load_model(args.model, device="cpu").config.width
    slope = (m2 - m1) / (s2**2 - s1**2)
    print(
        f"precision {res['precision']}: peak RSS growth {s1}^2 -> {m1 / 2**20:.0f} MiB, "
        f"{s2}^2 -> {m2 / 2**20:.0f} MiB; {slope:.0f} bytes/pixel = "
        f"{slope / width:.1f} bytes/pixel/width (width {width})"
    )


def _spawn(args: argparse.Namespace, save: str | None = None, **change) -> dict:
    ns = argparse.Namespace(**{**vars(args), **change})
    cmd = [sys.executable, __file__, "--child", ns.mode, "--size", str(ns.size)]
    cmd += ["--model", ns.model, "--precision", ns.precision]
    cmd += (["--device", ns.device] if ns.device else []) + (["--save", save] if save else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{ns.mode} {ns.precision} run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _row(r: dict, flops_mp: float, peak: dict | None) -> str:
    tflops = r["mpx_per_s"] * flops_mp / 1e12
    mem = (
        f"peak CUDA {r['peak_cuda_gib']:.2f} GiB"
        if r["peak_cuda_gib"] is not None
        else f"peak RSS {r['peak_rss_gib']:.2f} GiB"
    )
    roof = ""
    if peak is not None and r["device"] == "cpu":
        kind = "float32" if r["precision"].startswith("float32") else "bfloat16"
        roof = f" = {tflops / peak[kind]:.1%} of the {kind} peak"
    return (
        f"{r['mode']:>5} {r['precision']:<24} tile {r['tile']:>5}, {r['model_calls']:>3} calls, "
        f"{r['seconds']:7.2f} s, {r['mpx_per_s']:.3f} MP/s, {tflops:.3f} TFLOP/s{roof}; {mem}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1024, help="side of the square RGB test image")
    p.add_argument("--model", default="default")
    p.add_argument("--device", default=None)
    p.add_argument("--precision", default="auto", help="the precision compared with float32")
    p.add_argument("--whole", action="store_true", help="also run one tile per level")
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--child", choices=["whole", "tiled"], dest="mode", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        return _child(args)
    print(f"machine: {describe_machine()}")
    if args.calibrate:
        return _calibrate(args)
    import tempfile

    import numpy as np

    from napari_srn import load_model

    model = load_model(args.model, device="cpu")
    flops_mp = flops_per_megapixel(model)
    peak = cpu_peak_tflops()
    print(
        f"image: {args.size} x {args.size} RGB uint8; model {args.model!r} "
        f"({model.card.name}, {flops_mp / 1e12:.3f} TFLOP per megapixel)"
    )
    if peak is not None:
        print(
            f"estimated CPU peak: float32 {peak['float32']:.3f} TFLOP/s, "
            f"bfloat16 {peak['bfloat16']:.3f} TFLOP/s"
        )
    with tempfile.TemporaryDirectory() as tmp:
        ref = _spawn(args, save=f"{tmp}/ref.npy", mode="tiled", precision="float32")
        fast = _spawn(args, save=f"{tmp}/fast.npy", mode="tiled")
        a, b = np.load(f"{tmp}/ref.npy").astype(float), np.load(f"{tmp}/fast.npy").astype(float)
    mse = float(np.mean((a - b) ** 2))
    agree = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    rows = [ref, fast]
    if args.whole:
        rows.append(_spawn(args, mode="whole"))
    for r in rows:
        print(_row(r, flops_mp, peak))
    print(
        f"{args.precision} / float32 throughput: {fast['mpx_per_s'] / ref['mpx_per_s']:.2f}x; "
        f"outputs agree at {agree:.1f} dB PSNR"
    )
    if args.whole:
        print(f"tiled / whole throughput: {fast['mpx_per_s'] / rows[2]['mpx_per_s']:.3f}")


if __name__ == "__main__":
    main()
