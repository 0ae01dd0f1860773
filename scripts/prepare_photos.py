"""Fetch and prepare the sharp photographs napari-srn trains on (no other downloads).

Training photos: the real photographs among the wallpapers of Debian's
``plasma-workspace-wallpapers`` package (KDE; the others are illustrations and renders),
downscaled to at most 1280 pixels on the long side (about the resolution of GoPro frames) with
anti-aliasing, written as PNG. Evaluation photos come from a different source, scikit-image's
bundled photographs (see benchmarks/eval_deblur.py), so no evaluation image is ever trained on.

    python scripts/prepare_photos.py            # -> data/photos/train/*.png

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "data" / "photos" / "train")
    p.add_argument("--max-side", type=int, default=1280)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
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
            scale = args.max_side / max(image.shape[:2])
            if scale < 1:
                size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
                image = resize(image, size, anti_aliasing=True, preserve_range=True)
                image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
            iio.imwrite(args.out / f"{name}.png", image)
            print(f"{name}: {largest.name} -> {image.shape[1]}x{image.shape[0]}")


if __name__ == "__main__":
    main()
