"""Fetch and prepare the sharp photographs napari-srn trains on (no other downloads).

Training photos: the real photographs among the wallpapers of Debian's
``plasma-workspace-wallpapers`` package (KDE; the others are illustrations and renders),
downscaled with anti-aliasing to at most 1280 pixels on the long side (about the resolution of
GoPro frames) and again to 640 (twice the detail per pixel, as in small photos and crops),
written as PNG to ``train/<size>/``.

Validation photos (for following a run and picking its settings, never trained on):
scikit-image's textured grey photographs camera, brick, grass and gravel, as RGB PNGs in
``val/``. The benchmark (benchmarks/eval_deblur.py) uses scikit-image's *colour* photographs, a
set disjoint from both.

    python scripts/prepare_photos.py            # -> data/photos/train/{1280,640}/, data/photos/val/

Needs ``apt-get`` (Debian/Ubuntu) to download the package; nothing is installed.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from skimage.transform import resize

PACKAGE = "plasma-workspace-wallpapers"
#: Wallpapers of the package that are photographs (checked by eye on a contact sheet).
PHOTOS = [
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "Kokkini",
    "Path",
    "SafeLanding",
    "summer_1am",
]
ROOT = Path(__file__).resolve().parents[1]


def _pixels(path: Path) -> int:
    try:
        w, h = path.stem.split("x")
        return int(w) * int(h)
    except ValueError:
        return 0


VAL_PHOTOS = ["camera", "brick", "grass", "gravel"]


def _downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
    image = resize(image, size, anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "data" / "photos")
    p.add_argument("--sizes", type=int, nargs="+", default=[1280, 640], help="long sides")
    args = p.parse_args()
    from skimage import data

    val = args.out / "val"
    val.mkdir(parents=True, exist_ok=True)
    for name in VAL_PHOTOS:
        image = getattr(data, name)()
        iio.imwrite(val / f"{name}.png", np.repeat(image[..., None], 3, axis=-1))
    print(f"validation: {', '.join(VAL_PHOTOS)} -> {val}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, check=True)
        deb = next(Path(tmp).glob(f"{PACKAGE}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        root = Path(tmp) / "x" / "usr" / "share" / "wallpapers"
        for name in PHOTOS:
            images = sorted((root / name / "contents" / "images").glob("*"))
            largest = max(images, key=_pixels)  # files are named WIDTHxHEIGHT.ext
            image = iio.imread(largest)
            image = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
            for side in args.sizes:
                small = _downscale(image, side)
                folder = args.out / "train" / str(side)
                folder.mkdir(parents=True, exist_ok=True)
                iio.imwrite(folder / f"{name}.png", small)
                print(f"{name}: {largest.name} -> {small.shape[1]}x{small.shape[0]}")


if __name__ == "__main__":
    main()
