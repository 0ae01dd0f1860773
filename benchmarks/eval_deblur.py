"""Deblurring quality on held-out photographs: blurred input vs non-blind Wiener vs a model.

The benchmark is generated, reproducibly, from a source that napari-srn never trains on:
scikit-image's bundled colour photographs (the training photos come from Debian's
plasma-workspace-wallpapers, scripts/prepare_photos.py). Each photo's central crop (up to 384 x
384) is blurred by two seeded random camera-shake kernels of 13 to 25 pixels and given mild
Gaussian noise (sigma 0.5-1 % of the range), then rounded to uint8. Reported, as mean PSNR/SSIM
over the pairs (scikit-image metrics, data range 255):

* the blurred input itself;
* scikit-image's non-blind Wiener deconvolution given the TRUE kernel, at the balance that is
  best on average over this benchmark (a generous baseline: it knows the blur);
* each model given with --model (blind: it sees only the blurred image);
* with --sharp, each model on the unblurred photos (how much it alters a sharp image).

    python benchmarks/eval_deblur.py --model default --model runs/default_cpu/final.safetensors
    python benchmarks/eval_deblur.py --grid docs/images/eval_grid.png --model PATH
    python benchmarks/eval_deblur.py --set mate --model default     # the second held-out set
    python benchmarks/eval_deblur.py --gray16 --model default       # 12-bit grey stack

``--set mate`` uses a second held-out source instead: the 11 photographs of Debian's
``mate-backgrounds`` that ``scripts/prepare_photos.py`` writes to
``data/photos/heldout/mate/`` (never trained on), blurred the same way with another seed.
``--gray16`` converts the benchmark's photos to grey, blurs them, and scores a 12-bit
``uint16`` stack (N, Y, X) deblurred in one call with ``in_range=(0, 4095)``, as a
microscopy user would: a model must not make it worse than its input.

The benchmark itself (pairs, Wiener baseline, scores, grid) is :mod:`napari_srn.evaluation`;
this file is its command line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_srn import load_model
from napari_srn.evaluation import (
    HELDOUT_MATE,
    baselines,
    format_table,
    grid_image,
    make_benchmark,
    model_rows,
)

MATE_DIR = Path(__file__).resolve().parents[1] / HELDOUT_MATE


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=[], help="name or .safetensors (repeat)")
    p.add_argument("--grid", help="write a before/after PNG grid of the last model here")
    p.add_argument("--json", help="write the table as JSON here")
    p.add_argument(
        "--sharp", action="store_true", help="also score each model on the unblurred photos"
    )
    p.add_argument(
        "--set",
        default="skimage",
        choices=["skimage", "mate"],
        help="photos: scikit-image's (the benchmark) or mate-backgrounds' (held-out set 2)",
    )
    p.add_argument(
        "--gray16", action="store_true", help="also score each model on a 12-bit grey stack"
    )
    args = p.parse_args()
    try:
        pairs = make_benchmark("skimage" if args.set == "skimage" else MATE_DIR)
    except FileNotFoundError as e:
        raise SystemExit(str(e)) from None
    rows, _, wiener = baselines(pairs)
    outputs = None
    for name in args.model:
        model = load_model(name, device="cpu")
        more, outputs = model_rows(model, pairs, sharp=args.sharp, gray16=args.gray16)
        rows.update(more)
    source = "scikit-image" if args.set == "skimage" else "mate-backgrounds"
    print(
        f"{len(pairs)} pairs from {len(pairs) // 2} {source} photos, kernels 13-25 px, "
        "noise sigma 0.5-1 %"
    )
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {"psnr": v[0], "ssim": v[1]} for k, v in rows.items()}, f, indent=1)
    if args.grid and outputs is not None:
        import imageio.v3 as iio

        iio.imwrite(args.grid, grid_image(pairs, wiener, outputs))
        print(f"wrote {args.grid} (columns: blurred | Wiener with true kernel | model | sharp)")


if __name__ == "__main__":
    main()
