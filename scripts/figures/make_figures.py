"""Regenerate the README/docs figures (run from the repo root).

* ``docs/images/sample_side_by_side.png``: the embedded sample deblurred by the default model;
* ``docs/images/motion_examples.png``: training pairs of the realistic motion blur
  (:mod:`napari_srn.synthesis.motion`) rendered from scikit-image's photographs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from skimage import data

from napari_srn.cli import main
from napari_srn.synthesis.motion import Scene, render
from napari_srn.synthesis.params import MotionParams
from napari_srn.synthesis.shake import reflect_take

DOCS = Path(__file__).resolve().parents[2] / "docs" / "images"

#: (photo, crop top, crop left, moving objects, seed) for each row of the motion examples.
MOTION_ROWS = [
    ("astronaut", 40, 160, 0, 3),
    ("coffee", 100, 200, 0, 11),
    ("chelsea", 20, 80, 2, 6),
    ("rocket", 80, 180, 1, 8),
]


def sample() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        main(["deblur", "--sample", tmp, "--no-progress"])
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(tmp) / "side_by_side.png", DOCS / "sample_side_by_side.png")
    print(f"wrote {DOCS / 'sample_side_by_side.png'}")


def motion_examples(crop: int = 256) -> None:
    params = MotionParams(motion_fraction=1.0)
    m = params.margin
    others = [getattr(data, n)().astype(np.float32) / 255 for n in ("coffee", "astronaut")]
    rows = []
    for name, top, left, count, seed in MOTION_ROWS:
        photo = getattr(data, name)().astype(np.float32) / 255
        rng = np.random.default_rng(seed)
        region = reflect_take(photo, top - m, left - m, crop + 2 * m, crop + 2 * m)
        objects = tuple(reflect_take(others[i % 2], 150, 150, 100, 80) for i in range(count))
        blurred, sharp = render(
            region, Scene(photo.shape[:2], (top - m, left - m)), rng, params, objects
        )
        gap = np.ones((crop, 8, 3), np.float32)
        rows.append(np.concatenate([sharp, gap, blurred], axis=1))
        rows.append(np.ones((8, rows[-1].shape[1], 3), np.float32))
    out = np.round(np.concatenate(rows[:-1]) * 255).astype(np.uint8)
    iio.imwrite(DOCS / "motion_examples.png", out)
    print(f"wrote {DOCS / 'motion_examples.png'}")


if __name__ == "__main__":
    sample()
    motion_examples()
