"""How a model's gain depends on the length of the blur: PSNR on synthetic motion blur
(``napari_srn.synthesis.motion``: a moving camera, no moving objects, light noise, no JPEG) in
three bands of streak length, on scikit-image's colour photographs and the training run's
validation textures (data/photos/val, made by scripts/data/prepare_photos.py). Synthetic only:
never the real blurred photographs, so a decision made on it tunes nothing to them.

    python scripts/evaluate/blur_length.py --model default --model runs/v4_eval.safetensors
    python scripts/evaluate/blur_length.py --model default --scales 4   # its weights at 4 scales
    python scripts/evaluate/blur_length.py --model default --per-scale  # each scale's own output

Prints one row per band: the blurred input and each model, mean PSNR in dB over 10 crops of
224 px (2 per photo, seeded). With ``--per-scale``, one row per band and scale of each model
instead: the network's output at that scale (``return_all``) against the sharp crop shrunk to
it, the way the training loss compares them (the model's own ``pyramid``) and by the mean of
the pixels covered (``area``), each beside the blurred input shrunk the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from skimage import data, io
from skimage.metrics import peak_signal_noise_ratio

from napari_srn import SRN, deblur, load_model
from napari_srn.model.srn import downscale
from napari_srn.synthesis.motion import Scene, render
from napari_srn.synthesis.params import MotionParams

REPO = Path(__file__).resolve().parents[2]
BANDS = ((2.0, 16.0), (16.0, 40.0), (40.0, 64.0))
SIZE = 224


def photos() -> list[np.ndarray]:
    """Three skimage colour photographs and two validation textures, float32 RGB in [0, 1]."""
    out = [data.coffee(), data.rocket(), data.astronaut()]
    for name in ("brick", "gravel"):
        grey = io.imread(REPO / "data" / "photos" / "val" / f"{name}.png")
        out.append(np.repeat(grey[..., None], 3, -1) if grey.ndim == 2 else grey[..., :3])
    return [p.astype(np.float32) / 255 for p in out]


def pairs(band: tuple[float, float], seed: int = 7) -> list[tuple[np.ndarray, np.ndarray]]:
    """(blurred, sharp) crops with streaks of ``band`` pixels."""
    params = MotionParams(
        motion_length=band,
        moving_objects=(0, 0),
        jpeg_fraction=0.0,
        shot_noise=(0.0, 0.005),
        read_noise=(0.0, 0.001),
    )
    rng, m, out = np.random.default_rng(seed), params.margin, []
    for photo in photos():
        h, w = photo.shape[:2]
        for _ in range(2):
            y, x = (int(rng.integers(0, n - SIZE - 2 * m)) for n in (h, w))
            region = photo[y : y + SIZE + 2 * m, x : x + SIZE + 2 * m]
            out.append(render(region, Scene((h, w), (y, x)), rng, params))
    return out


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / torch.mean((a.clamp(0, 1) - b) ** 2)))


def per_scale(net: SRN, band: tuple[float, float]) -> np.ndarray:
    """Mean PSNR per scale (coarsest first) of ``[input, output]`` against the sharp crop
    shrunk by the model's pyramid, then the same two by ``area``."""
    scores = []
    for blurred, sharp in pairs(band):
        side = SIZE // net.divisor * net.divisor
        b, s = (torch.from_numpy(a[:side, :side]).permute(2, 0, 1)[None] for a in (blurred, sharp))
        with torch.no_grad():
            outputs = net(b, return_all=True)
        row = []
        for out in outputs:
            size = tuple(out.shape[-2:])
            for pyramid in (net.config.pyramid, "area"):
                target = downscale(s, size, pyramid)
                row += [_psnr(downscale(b, size, pyramid), target), _psnr(out, target)]
        scores.append(row)
    return np.mean(scores, axis=0).reshape(len(outputs), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="name or .safetensors")
    parser.add_argument("--scales", type=int, help="run each model's weights at this many scales")
    parser.add_argument(
        "--per-scale", action="store_true", help="score each scale's output (see above)"
    )
    args = parser.parse_args()
    nets = {}
    for name in args.model:
        net = load_model(name, device="cpu")
        if args.scales and args.scales != net.config.scales:
            wider = SRN(dataclasses.replace(net.config, scales=args.scales))
            wider.load_state_dict(net.state_dict())
            net = wider.eval()
        nets[f"{name} ({net.config.scales} scales)"] = net
    if args.per_scale:
        print("model | streak px | scale | own pyramid: input, output | area: input, output")
        for name, net in nets.items():
            for band in BANDS:
                rows = per_scale(net, band)
                for i, (a, b, c, d) in enumerate(rows):
                    scale = f"1/{2 ** (len(rows) - 1 - i)}"
                    print(
                        f"{name} | {band[0]:.0f}-{band[1]:.0f} | {scale} | "
                        f"{a:.2f}, {b:.2f} ({b - a:+.2f}) | {c:.2f}, {d:.2f} ({d - c:+.2f})",
                        flush=True,
                    )
        return
    print("streak px | blurred input | " + " | ".join(nets))
    for band in BANDS:
        rows = pairs(band)
        score = [np.mean([peak_signal_noise_ratio(s, b, data_range=1) for b, s in rows])]
        for net in nets.values():
            psnrs = [
                peak_signal_noise_ratio(
                    s, deblur(b, model=net, channel_axis=-1, in_range=(0, 1)), data_range=1
                )
                for b, s in rows
            ]
            score.append(np.mean(psnrs))
        print(f"{band[0]:.0f}-{band[1]:.0f} | " + " | ".join(f"{v:.2f}" for v in score), flush=True)


if __name__ == "__main__":
    main()
