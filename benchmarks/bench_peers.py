"""``deblur()`` against a peer tiler, MONAI's ``sliding_window_inference``, with the same network.

Both run the bundled default model (``napari_srn.load_model()``) on the same colour image (the
embedded blurred sample resized to ``--size``, float32 in [0, 1]) in float32 and in ``auto``
precision. ``deblur`` tiles each scale of the network separately (``--tile``, its default
overlap, the model's halo); MONAI runs the whole network on each window (``--window``) and
blends the windows with a Gaussian (``mode="gaussian"``, ``--monai-overlap``). MONAI's ``auto``
uses what ``deblur``'s ``auto`` resolves to on this device (bfloat16 autocast, channels-last on
a CPU with native bfloat16; ``napari_srn.inference.precision``).

Printed per method and precision: the best time of ``--repeats`` runs (numpy in, numpy out),
megapixels per second at that time, each run's time (a busy machine shows in their spread), and
the agreement (PSNR in dB, data range 1) with the whole-image float32 result: the network run
once on the whole image, reflect-padded to its divisor as ``deblur`` pads, clipped to [0, 1] as
``deblur``'s result is (MONAI's is clipped too).

MONAI is a benchmark-only dependency: ``pip install -e ".[bench]"`` (or ``pip install monai``).

    python benchmarks/bench_peers.py                    # 2048 x 2048, best of 3
    python benchmarks/bench_peers.py --size 512 --repeats 1
    python benchmarks/bench_peers.py --window 256 --monai-overlap 0.25
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

MONAI_MISSING = (
    "bench_peers.py compares deblur() with MONAI's sliding_window_inference, and MONAI is not "
    "installed: pip install -e '.[bench]' (or pip install monai)"
)


def _image(size: int) -> np.ndarray:
    """The embedded blurred sample, ``(size, size, 3)`` float32 in [0, 1]."""
    from skimage.transform import resize

    from napari_srn.sample import blurred_sample

    return resize(blurred_sample(), (size, size), order=1).astype(np.float32)


def _psnr(a: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB of ``a`` against ``ref``, data range 1 (inf when they are equal)."""
    mse = float(np.mean((a.astype(np.float64) - ref.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def _machine(device) -> str:
    """CPU model (or GPU name), usable cores, torch version and threads."""
    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                name = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
        except (OSError, StopIteration):
            pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cores} cores; torch {torch.__version__}, {torch.get_num_threads()} threads"


def whole_image(net, image: np.ndarray) -> np.ndarray:
    """The network's float32 result on the whole ``(H, W, C)`` image, in one call: padded to
    the divisor at the bottom and right by reflection (as ``deblur`` pads), cropped back and
    clipped to [0, 1]."""
    import torch

    height, width = image.shape[:2]
    d = net.divisor
    pad = ((0, -height % d), (0, -width % d), (0, 0))
    x = np.pad(image, pad, mode="reflect") if any(p for p, _ in pad[:2]) else image
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 0)))[None]
    device = next(net.parameters()).device
    with torch.inference_mode():
        out = net(x.to(device))[0, :, :height, :width].cpu().numpy()
    return np.clip(np.moveaxis(out, 0, -1), 0, 1)


def run_deblur(net, image: np.ndarray, precision: str, args: argparse.Namespace) -> np.ndarray:
    """``deblur`` at ``--tile`` with its default overlap."""
    from napari_srn import deblur

    return deblur(
        image,
        model=net,
        channel_axis=-1,
        tile_size=args.tile,
        device=args.device,
        precision=precision,
    )


def run_monai(net, image: np.ndarray, precision: str, args: argparse.Namespace) -> np.ndarray:
    """MONAI's sliding window with Gaussian blending; each window autocast and laid out as
    ``deblur``'s ``precision`` resolves on this device."""
    import torch
    from monai.inferers import sliding_window_inference

    from napari_srn.inference.precision import resolve_precision

    policy = resolve_precision(precision, args.device)

    def predictor(window: torch.Tensor) -> torch.Tensor:
        with policy.autocast():
            return net(policy.tensor(window)).float()

    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0)))[None].to(args.device)
    with torch.inference_mode():
        out = sliding_window_inference(
            x,
            roi_size=(args.window, args.window),
            sw_batch_size=args.sw_batch,
            predictor=predictor,
            overlap=args.monai_overlap,
            mode="gaussian",
        )
    return np.clip(np.moveaxis(out[0].float().cpu().numpy(), 0, -1), 0, 1)


def timed(fn, repeats: int, device) -> tuple[list[float], np.ndarray]:
    """The wall times of ``repeats`` calls of ``fn()`` and the last result."""
    import torch

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return times, out


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048, help="image side in pixels (2048)")
    p.add_argument("--repeats", type=int, default=3, help="runs per method; the best counts (3)")
    p.add_argument("--tile", type=int, default=512, help="deblur's tile_size (512)")
    p.add_argument("--window", type=int, default=512, help="MONAI's roi_size (512)")
    p.add_argument("--monai-overlap", type=float, default=0.125, help="MONAI's overlap (0.125)")
    p.add_argument("--sw-batch", type=int, default=1, help="MONAI's sw_batch_size (1)")
    p.add_argument("--precisions", nargs="+", default=["float32", "auto"], help="(float32 auto)")
    p.add_argument("--device", default=None, help="torch device (CUDA when available, else cpu)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    try:
        import monai  # noqa: F401
    except ImportError:
        sys.exit(MONAI_MISSING)
    import torch

    from napari_srn import load_model
    from napari_srn.inference.precision import resolve_precision

    args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = load_model(device=args.device)
    if args.window % net.divisor:
        sys.exit(f"--window must be a multiple of the model's divisor {net.divisor}")
    image = _image(args.size)
    mpx = args.size**2 / 1e6
    print(f"{_machine(args.device)}")
    print(
        f"{args.size} x {args.size} RGB float32, model {net.card.name if net.card else '?'}; "
        f"deblur tile {args.tile} (overlap {net.halo} px); MONAI window {args.window}, "
        f"overlap {args.monai_overlap}, gaussian, sw_batch_size {args.sw_batch}; "
        f"best of {args.repeats}"
    )
    t0 = time.perf_counter()
    reference = whole_image(net, image)
    print(f"whole-image float32 reference: {time.perf_counter() - t0:.1f} s")
    methods = {"deblur": run_deblur, "monai": run_monai}
    for precision in args.precisions:
        policy = resolve_precision(precision, args.device)
        label = f"{precision} ({policy.name}{', channels-last' if policy.channels_last else ''})"
        for name, fn in methods.items():
            times, out = timed(
                lambda fn=fn, p=precision: fn(net, image, p, args), args.repeats, args.device
            )
            print(
                f"{name:7s} {label:32s} {min(times):8.1f} s {mpx / min(times):7.3f} MP/s  "
                f"agreement {_psnr(out, reference):6.1f} dB  "
                f"(runs: {', '.join(f'{s:.1f}' for s in times)} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
