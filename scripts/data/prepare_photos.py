"""Fetch and prepare the sharp photographs napari-srn trains on (no other downloads).

Training photos (30 scenes), each checked by eye on a contact sheet:

* the real photographs among the wallpapers of Debian's ``plasma-workspace-wallpapers`` (KDE; 13
  of 30, the rest are illustrations and renders), ``lomiri-wallpapers-16.04`` (13 of 15) and
  ``lomiri-wallpapers-20.04`` (1 of 4). ``ukui-wallpapers`` was checked too: all 12 of its
  wallpapers are illustrations, so none is used. Each is downscaled with anti-aliasing to at
  most 1280 pixels on the long side (about the resolution of GoPro frames) and again to 640
  (twice the detail per pixel, as in small photos and crops), written as PNG to
  ``train/<size>/``;
* three grey photographs bundled with scikit-image (moon, coins, cell: a grey scene, a
  low-contrast object photo and a microscope image) at their own size in ``train/gray/``, so
  that grey and microscopy images are part of training. (``clock`` is left out: it is
  motion-blurred itself.)

Validation photos (for following a run and picking its settings, never trained on):
scikit-image's textured grey photographs camera, brick, grass and gravel, as RGB PNGs in
``val/``.

Held-out photos (a second benchmark, never trained on or tuned with): the photographs of
Debian's ``mate-backgrounds`` (11 nature photos; ``Storm`` is left out, its road is
motion-blurred), downscaled to 768 pixels on the long side, in ``heldout/mate/``
(``scripts/evaluate/eval_deblur.py --set mate``). The main benchmark uses scikit-image's *colour*
photographs, a set disjoint from all of these.

    python scripts/data/prepare_photos.py     # -> data/photos/{train,val,heldout}/

Needs ``apt-get`` (Debian/Ubuntu) to download the packages; nothing is installed.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from skimage.transform import resize

#: Wallpapers of plasma-workspace-wallpapers that are photographs (folder names).
PLASMA = [
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
    "OneStandsOut",
]
#: Photographs among lomiri's wallpapers (file names without suffix, in usr/share/backgrounds).
LOMIRI_16 = [
    "Bridge_by_Sander_Klootwijk",
    "Dragonfly_by_Bolly",
    "Picture_0B_by_freespace",
    "Picture_1A_by_freespace",
    "Wine_by_Jakkub_Mede",
    "aitzgorri_by_Aitzol_Berasategi",
    "free_by_Peter_Nerlich",
    "friends_by_Aitzol_Berasategi",
    "greentock_by_Peter_Nerlich",
    "life_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi",
    "seeding_by_Clements_Engelhardt",
    "sunset_by_Aitzol_Berasategi",
]
LOMIRI_20 = ["Kleiber_by_Lukas_Baubkus"]
#: scikit-image's grey photographs used for training (not those of validation or benchmark).
GRAY_PHOTOS = ["moon", "coins", "cell"]
#: mate-backgrounds' photographs: held out for evaluation, never for training.
MATE = [
    "Aqua",
    "Blinds",
    "Dune",
    "FreshFlower",
    "Garden",
    "GreenMeadow",
    "LadyBird",
    "RainDrops",
    "TwoWings",
    "Wood",
    "YellowFlower",
]
HELDOUT_SIDE = 768
ROOT = Path(__file__).resolve().parents[2]


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


def _extract(package: str, tmp: Path) -> Path:
    """Download a Debian package into ``tmp`` and unpack it; return the unpacked root."""
    subprocess.run(["apt-get", "download", package], cwd=tmp, check=True)
    deb = next(tmp.glob(f"{package}_*.deb"))
    root = tmp / package
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def _rgb(path: Path) -> np.ndarray:
    image = iio.imread(path)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]


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
    gray = args.out / "train" / "gray"
    gray.mkdir(parents=True, exist_ok=True)
    for name in GRAY_PHOTOS:
        iio.imwrite(gray / f"{name}.png", getattr(data, name)())
    print(f"grey training photos: {', '.join(GRAY_PHOTOS)} -> {gray}")

    def write(name: str, image: np.ndarray, source: str) -> None:
        for side in args.sizes:
            small = _downscale(image, side)
            folder = args.out / "train" / str(side)
            folder.mkdir(parents=True, exist_ok=True)
            iio.imwrite(folder / f"{name}.png", small)
        print(f"{name}: {source} {image.shape[1]}x{image.shape[0]}")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = _extract("plasma-workspace-wallpapers", tmp) / "usr/share/wallpapers"
        for name in PLASMA:
            images = sorted((root / name / "contents" / "images").glob("*"))
            largest = max(images, key=_pixels)  # files are named WIDTHxHEIGHT.ext
            write(name, _rgb(largest), largest.name)
        for package, names in (
            ("lomiri-wallpapers-16.04", LOMIRI_16),
            ("lomiri-wallpapers-20.04", LOMIRI_20),
        ):
            root = _extract(package, tmp) / "usr/share/backgrounds"
            for name in names:
                write(name, _rgb(root / f"{name}.jpg"), package)
        root = _extract("mate-backgrounds", tmp) / "usr/share/backgrounds/mate/nature"
        heldout = args.out / "heldout" / "mate"
        heldout.mkdir(parents=True, exist_ok=True)
        for name in MATE:
            iio.imwrite(
                heldout / f"{name}.png", _downscale(_rgb(root / f"{name}.jpg"), HELDOUT_SIDE)
            )
        print(f"held-out: {len(MATE)} mate-backgrounds photos -> {heldout}")


if __name__ == "__main__":
    main()
