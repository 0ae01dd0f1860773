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
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from skimage import data
from skimage.color import rgb2gray
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import wiener

from napari_srn import deblur, load_model
from napari_srn.training.blur import blur_image, motion_kernel

PHOTOS = [
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "stereo_motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
]
BALANCES = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
SEED = 20181802
MATE_SEED = 20220531
MATE_DIR = Path(__file__).resolve().parents[1] / "data" / "photos" / "heldout" / "mate"


def _photos(source: str) -> list[tuple[str, np.ndarray]]:
    if source == "skimage":
        out = []
        for name in PHOTOS:
            photo = getattr(data, name)()
            out.append((name, photo[0] if isinstance(photo, tuple) else photo))
        return out
    import imageio.v3 as iio

    files = sorted(MATE_DIR.glob("*.png"))
    if not files:
        raise SystemExit(f"no photos in {MATE_DIR}: run python scripts/prepare_photos.py first")
    return [(f.stem, iio.imread(f)) for f in files]


def make_benchmark(crop: int = 384, per_photo: int = 2, source: str = "skimage") -> list[dict]:
    """Blurred/sharp pairs from ``source`` ('skimage': the benchmark; 'mate': held-out set 2)."""
    rng = np.random.default_rng(SEED if source == "skimage" else MATE_SEED)
    pairs = []
    for name, photo in _photos(source):
        h, w = photo.shape[:2]
        ch, cw = min(crop, h), min(crop, w)
        sharp = photo[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw, :3]
        for k in range(per_photo):
            size = int(rng.choice(np.arange(13, 26, 2)))
            kernel = motion_kernel(size, length=rng.uniform(0.6, 1.0) * size, rng=rng)
            blurred = blur_image(sharp.astype(np.float32) / 255, kernel, channel_axis=-1)
            blurred += rng.normal(0, rng.uniform(0.005, 0.01), blurred.shape)
            blurred = np.clip(np.rint(blurred * 255), 0, 255).astype(np.uint8)
            pairs.append(
                {"name": f"{name}#{k}", "sharp": sharp, "blurred": blurred, "kernel": kernel}
            )
    return pairs


def _wiener(blurred: np.ndarray, kernel: np.ndarray, balance: float) -> np.ndarray:
    pad = kernel.shape[0]
    x = np.pad(blurred.astype(np.float64) / 255, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.stack([wiener(x[..., c], kernel, balance, clip=True) for c in range(3)], axis=-1)
    return np.clip(np.rint(out[pad:-pad, pad:-pad] * 255), 0, 255).astype(np.uint8)


def _scores(restored: list[np.ndarray], pairs: list[dict]) -> tuple[float, float]:
    psnr = [
        peak_signal_noise_ratio(p["sharp"], r, data_range=255)
        for p, r in zip(pairs, restored, strict=True)
    ]
    ssim = [
        structural_similarity(p["sharp"], r, channel_axis=-1, data_range=255)
        for p, r in zip(pairs, restored, strict=True)
    ]
    return float(np.mean(psnr)), float(np.mean(ssim))


def baselines(pairs: list[dict]) -> tuple[dict, float, list[np.ndarray]]:
    """Scores of the blurred input and of the best-balance Wiener; that balance and its outputs."""
    rows = {"blurred input": _scores([q["blurred"] for q in pairs], pairs)}
    wieners = {b: [_wiener(q["blurred"], q["kernel"], b) for q in pairs] for b in BALANCES}
    best = max(BALANCES, key=lambda b: _scores(wieners[b], pairs)[0])
    rows[f"Wiener, true kernel (balance {best})"] = _scores(wieners[best], pairs)
    return rows, best, wieners[best]


def restore(model, pairs: list[dict], key: str = "blurred") -> list[np.ndarray]:
    """The model's output for each pair's ``key`` image ('blurred', or 'sharp')."""
    return [deblur(q[key], model=model, channel_axis=-1) for q in pairs]


def on_sharp_input(model, pairs: list[dict]) -> tuple[float, float]:
    """PSNR/SSIM of the model's output on the unblurred photos against themselves: how much
    it changes an image that needs no deblurring (an identity scores inf / 1)."""
    return _scores(restore(model, pairs[::2], "sharp"), pairs[::2])


def grid_image(pairs: list[dict], wiener: list, outputs: list, every: int = 4, crop: int = 256):
    """Rows of blurred | Wiener | model | sharp (central ``crop`` pixels of every 4th pair)."""
    tiles = []
    for i in range(0, len(pairs), every):
        h, w = pairs[i]["sharp"].shape[:2]
        top, left = (h - min(h, crop)) // 2, (w - min(w, crop)) // 2
        cut = (slice(top, top + crop), slice(left, left + crop))
        row = [pairs[i]["blurred"], wiener[i], outputs[i], pairs[i]["sharp"]]
        tiles.append(np.concatenate([a[cut] for a in row], axis=1))
    width = max(t.shape[1] for t in tiles)
    tiles = [
        np.pad(t, ((0, 4), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles
    ]
    return np.concatenate(tiles, axis=0)


def gray16_scores(model, pairs: list[dict]) -> tuple[tuple[float, float], tuple[float, float]]:
    """(input, model) PSNR/SSIM on a 12-bit grey stack made from the pairs' sharp photos (their
    common central crop), each blurred again in grey by its pair's kernel, noise sigma 0.5 %."""
    rng = np.random.default_rng(SEED + 16)
    h = min(q["sharp"].shape[0] for q in pairs)
    w = min(q["sharp"].shape[1] for q in pairs)
    sharp, blurred = [], []
    for q in pairs:
        top, left = (q["sharp"].shape[0] - h) // 2, (q["sharp"].shape[1] - w) // 2
        g = rgb2gray(q["sharp"][top : top + h, left : left + w]).astype(np.float32)
        b = blur_image(g, q["kernel"]) + rng.normal(0, 0.005, g.shape)
        sharp.append(np.rint(g * 4095).astype(np.uint16))
        blurred.append(np.clip(np.rint(b * 4095), 0, 4095).astype(np.uint16))
    sharp_s, blurred_s = np.stack(sharp), np.stack(blurred)
    out = deblur(blurred_s, model=model, in_range=(0, 4095))

    def score(stack: np.ndarray) -> tuple[float, float]:
        ps = [
            peak_signal_noise_ratio(a, b, data_range=4095)
            for a, b in zip(sharp_s, stack, strict=True)
        ]
        ss = [
            structural_similarity(a, b, data_range=4095)
            for a, b in zip(sharp_s, stack, strict=True)
        ]
        return float(np.mean(ps)), float(np.mean(ss))

    return score(blurred_s), score(out)


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
    pairs = make_benchmark(source=args.set)
    rows, _, wiener = baselines(pairs)
    outputs = None
    for name in args.model:
        model = load_model(name, device="cpu")
        outputs = restore(model, pairs)
        rows[f"{model.card.name} (blind)"] = _scores(outputs, pairs)
        if args.sharp:
            rows[f"{model.card.name} on the sharp photos"] = on_sharp_input(model, pairs)
        if args.gray16:
            before, after = gray16_scores(model, pairs)
            rows["12-bit grey stack: blurred input"] = before
            rows[f"12-bit grey stack: {model.card.name}"] = after
    source = "scikit-image" if args.set == "skimage" else "mate-backgrounds"
    print(
        f"{len(pairs)} pairs from {len(pairs) // 2} {source} photos, kernels 13-25 px, "
        "noise sigma 0.5-1 %"
    )
    print(f"{'method':<48} {'PSNR dB':>8} {'SSIM':>7}")
    for k, (ps, ss) in rows.items():
        print(f"{k:<48} {ps:8.2f} {ss:7.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {"psnr": v[0], "ssim": v[1]} for k, v in rows.items()}, f, indent=1)
    if args.grid and outputs is not None:
        import imageio.v3 as iio

        iio.imwrite(args.grid, grid_image(pairs, wiener, outputs))
        print(f"wrote {args.grid} (columns: blurred | Wiener with true kernel | model | sharp)")


if __name__ == "__main__":
    main()
