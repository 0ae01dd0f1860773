"""Deblurring quality on held-out photographs: blurred input vs non-blind Wiener vs a model.

The benchmark is generated, reproducibly, from a source that napari-srn never trains on:
scikit-image's bundled colour photographs (the training photos come from Debian's
plasma-workspace-wallpapers, scripts/data/prepare_photos.py). Each photo's central crop (up to 384 x
384) is blurred by two seeded random camera-shake kernels of 13 to 25 pixels and given mild
Gaussian noise (sigma 0.5-1 % of the range), then rounded to uint8. Reported, as mean PSNR/SSIM
over the pairs (scikit-image metrics, data range 255):

* the blurred input itself;
* scikit-image's non-blind Wiener deconvolution given the TRUE kernel, at the balance that is
  best on average over this benchmark (a generous baseline: it knows the blur);
* each model given with --model (blind: it sees only the blurred image);
* with --sharp, each model on the unblurred photos (how much it alters a sharp image).

    python scripts/evaluate/eval_deblur.py --model default \
        --model runs/default_cpu/final.safetensors
    python scripts/evaluate/eval_deblur.py --grid docs/images/eval_grid.png --model PATH
    python scripts/evaluate/eval_deblur.py --set mate --model default     # the second held-out set
    python scripts/evaluate/eval_deblur.py --gray16 --model default       # 12-bit grey stack

``--set mate`` uses a second held-out source instead: the 11 photographs of Debian's
``mate-backgrounds`` that ``scripts/data/prepare_photos.py`` writes to
``data/photos/heldout/mate/`` (never trained on), blurred the same way with another seed.
``--gray16`` converts the benchmark's photos to grey, blurs them, and scores a 12-bit
``uint16`` stack (N, Y, X) deblurred in one call with ``in_range=(0, 4095)``, as a
microscopy user would: a model must not make it worse than its input.

``--real DIR`` scores blur that nobody on this project made instead (DIR is normally
``../shared/realblur``, which is never part of the repository; without it, the command says so
and exits 0): the synthetic benchmark is then not run, and --set, --sharp, --gray16 and --grid,
which belong to it, are refused. Printed per set, for the blurred input and each --model (the
whole image deblurred, default settings, on the CPU): PSNR/SSIM on the two GoPro frames (whole
frame, with the published outputs of other methods beside ours), on the 9 JPEG crops of real
captures and on Levin et al.'s 32 grey images (both after the best integer shift within +-5 px,
for every image and method alike, on the frame trimmed by 5 px), and the mean over the 11 real
pairs (GoPro + crops) with each model's gain over the input, the headline figure. A missing
set is skipped with a message. --json writes the table and every image's row; --sheet writes
a contact sheet of DIR/real_no_truth (photographs with no ground truth): for each, the most
textured window of the input (chosen from the input alone), input | each model, full resolution.

    python scripts/evaluate/eval_deblur.py --real ../shared/realblur --model default
    python scripts/evaluate/eval_deblur.py --real ../shared/realblur --model default \
        --sheet /tmp/real_sheet.png --json /tmp/real.json

The benchmark itself (pairs, Wiener baseline, scores, grid, real blur) is
:mod:`napari_srn.evaluation`; this file is its command line.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from napari_srn import SRN, deblur, load_model
from napari_srn.evaluation import (
    HELDOUT_MATE,
    MAX_SHIFT,
    REAL_SETS,
    baselines,
    contact_sheet,
    format_table,
    grid_image,
    make_benchmark,
    model_name,
    model_rows,
    real_baselines,
    real_gains,
    real_no_truth,
    real_scores,
    real_sets,
    real_table,
)

MATE_DIR = Path(__file__).resolve().parents[2] / HELDOUT_MATE
ALIGNMENT = (
    f"gopro: whole frame; crops and levin: best integer shift within ±{MAX_SHIFT} px for every "
    f"image and method, on the frame trimmed by {MAX_SHIFT} px"
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=[], help="name or .safetensors (repeat)")
    p.add_argument("--grid", help="write a before/after PNG grid of the last model here")
    p.add_argument(
        "--json", help="write the table (with --real, every image's row too) as JSON here"
    )
    p.add_argument(
        "--sharp", action="store_true", help="also score each model on the unblurred photos"
    )
    p.add_argument(
        "--set",
        choices=["skimage", "mate"],
        help="photos: scikit-image's (the benchmark) or mate-backgrounds' (held-out set 2)",
    )
    p.add_argument(
        "--gray16", action="store_true", help="also score each model on a 12-bit grey stack"
    )
    p.add_argument(
        "--real",
        metavar="DIR",
        help="score real blur in DIR (normally ../shared/realblur) instead of the benchmark",
    )
    p.add_argument(
        "--sheet", metavar="PATH", help="with --real: write a contact sheet of real_no_truth here"
    )
    args = p.parse_args()
    synthetic = [o for o in ("set", "sharp", "gray16", "grid") if getattr(args, o)]
    if args.real and synthetic:
        p.error(f"--{synthetic[0]} is for the synthetic benchmark, which --real does not run")
    if args.sheet and not (args.real and args.model):
        p.error(
            "--sheet shows real photographs beside each model's output: give --real and --model"
        )
    return args


def main() -> None:
    args = parse_args()
    if args.real:
        real(args)
    else:
        benchmark(args)


def benchmark(args: argparse.Namespace) -> None:
    """The synthetic benchmark: pairs made from held-out photos, Wiener, each model."""
    args.set = args.set or "skimage"
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


def real(args: argparse.Namespace) -> None:
    """Real blur: per-set table, per-image JSON, contact sheet; missing parts are skipped."""
    skipped: list[str] = []
    try:
        sets = real_sets(args.real)
    except FileNotFoundError as e:
        print(f"real blur skipped: {e}")
        return
    for folder in REAL_SETS:
        if folder not in sets:
            skipped.append(f"{Path(args.real) / folder} has no blur/ and sharp/ images: skipped")
            print(skipped[-1])
    models = [load_model(name, device="cpu") for name in args.model]
    scores = real_baselines(sets)
    for model in models:
        scores += real_scores(model, sets)
    table, gains = real_table(scores), real_gains(scores)
    print(f"real blur in {args.real} ({ALIGNMENT})")
    print(format_table(table))
    for method, gain in gains.items():
        print(f"{method}: {gain:+.2f} dB over the blurred input on the real pairs (goal: +1.0)")
    if args.json:
        report = {
            "root": str(args.real),
            "alignment": ALIGNMENT,
            "skipped": skipped,
            "table": {k: {"psnr": v[0], "ssim": v[1]} for k, v in table.items()},
            "gains_over_input_db": gains,
            "images": [asdict(s) for s in scores],
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.sheet:
        write_sheet(args.real, args.sheet, models)


def write_sheet(root: str, path: str, models: list[SRN]) -> None:
    """The contact sheet of ``root/real_no_truth``, or a message when that folder is absent."""
    try:
        images = real_no_truth(root)
    except FileNotFoundError as e:
        print(f"contact sheet skipped: {e}")
        return
    outputs = {
        model_name(model): [
            deblur(im, model=model, channel_axis=-1 if im.ndim == 3 else None) for _, im in images
        ]
        for model in models
    }
    import imageio.v3 as iio

    iio.imwrite(path, contact_sheet(images, outputs))
    print(f"wrote {path}: {len(images)} real photographs, input | {' | '.join(outputs)}")


if __name__ == "__main__":
    main()
