"""Memory and throughput of lazy deblurring to zarr, from 2k x 2k to 16k x 16k.

For each size, a uint8 gray image stored in zarr (the embedded sample's photo, tiled) is
deblurred with ``deblur_to_zarr`` by a tiny-width network (so a 16k run finishes in minutes on
two CPU cores), each run in a fresh process so that its peak resident memory is its own. Also
measures the eager whole-image ``deblur`` on the same in-memory image (up to 4k) for the
lazy-to-zarr / whole-image throughput ratio (goal >= 0.80 on CPU), and checks that the 16k
run's peak RSS is within 2x of the 2k run's.

    python benchmarks/bench_lazy.py                 # 2k, 4k, 8k, 16k
    python benchmarks/bench_lazy.py --sizes 2048 4096 --width 8
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _tiny(width: int):
    import torch

    from napari_srn import SRN, SRNConfig

    torch.manual_seed(0)
    return SRN(SRNConfig(channels=1, width=width, res_blocks=1)).eval()


def _make_source(path: Path, size: int) -> None:
    import numpy as np
    import zarr
    from skimage.color import rgb2gray

    from napari_srn.sample import blurred_sample

    tile = (rgb2gray(blurred_sample()) * 255).astype(np.uint8)  # 512 x 512
    z = zarr.create_array(str(path), shape=(size, size), chunks=(1024, 1024), dtype="uint8")
    reps = 1024 // tile.shape[0]
    block = np.tile(tile, (reps, reps))
    for r in range(0, size, 1024):
        for c in range(0, size, 1024):
            z[r : r + 1024, c : c + 1024] = block[: min(1024, size - r), : min(1024, size - c)]


def _child(args: argparse.Namespace) -> None:
    import numpy as np
    import zarr

    from napari_srn import deblur, deblur_to_zarr

    model = _tiny(args.width)
    src = Path(args.workdir) / f"src{args.size}.zarr"
    deblur(np.zeros((64, 64), np.uint8), model=model)  # warm-up
    t0 = time.perf_counter()
    if args.mode == "zarr":
        deblur_to_zarr(
            str(src),
            Path(args.workdir) / f"out{args.size}.zarr",
            model=model,
            overwrite=True,
            in_range=(0, 255),
        )
    else:
        image = zarr.open_array(str(src), mode="r")[:]
        t0 = time.perf_counter()
        deblur(image, model=model, tile_size=-(-args.size // 16) * 16)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "mpx_per_s": args.size**2 / 1e6 / seconds,
                "peak_rss_gib": rss / 2**30,
            }
        )
    )


def _run(args: argparse.Namespace, size: int, mode: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--size",
        str(size),
        "--width",
        str(args.width),
        "--workdir",
        args.workdir,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{mode} {size} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192, 16384])
    p.add_argument("--width", type=int, default=4, help="network width (paper: 32)")
    p.add_argument("--whole-max", type=int, default=4096, help="largest eager whole-image run")
    p.add_argument("--child", choices=["zarr", "whole"], dest="mode", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        return _child(args)
    from machine import describe_machine  # benchmarks/machine.py, beside this script

    print(f"machine: {describe_machine()}")
    print(
        f"model: gray SRN, width {args.width}, 1 ResBlock per stage, 3 scales; "
        "input uint8 zarr, chunks 1024; automatic tiles; threaded dask scheduler"
    )
    with tempfile.TemporaryDirectory() as tmp:
        args.workdir = tmp
        rows = {}
        for size in args.sizes:
            _make_source(Path(tmp) / f"src{size}.zarr", size)
            lazy = _run(args, size, "zarr")
            whole = _run(args, size, "whole") if size <= args.whole_max else None
            rows[size] = (lazy, whole)
            ratio = f"{lazy['mpx_per_s'] / whole['mpx_per_s']:.2f}" if whole else "-"
            w = (
                f"whole {whole['mpx_per_s']:.2f} MP/s, peak RSS {whole['peak_rss_gib']:.2f} GiB"
                if whole
                else "whole: not run"
            )
            print(
                f"{size:>6}^2: lazy->zarr {lazy['seconds']:7.1f} s, {lazy['mpx_per_s']:.2f} MP/s,"
                f" peak RSS {lazy['peak_rss_gib']:.2f} GiB | {w} | lazy/whole {ratio}",
                flush=True,
            )
            for old in Path(tmp).glob(f"*{size}.zarr"):
                import shutil

                shutil.rmtree(old)
        small, large = min(rows), max(rows)
        growth = rows[large][0]["peak_rss_gib"] / rows[small][0]["peak_rss_gib"]
        print(f"peak RSS {large}^2 / {small}^2: {growth:.2f} (goal <= 2)")


if __name__ == "__main__":
    main()
