"""Regenerate the README/docs figures from the embedded sample (run from the repo root)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from napari_srn.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        main(["deblur", "--sample", tmp, "--no-progress"])
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(tmp) / "side_by_side.png", DOCS / "sample_side_by_side.png")
    print(f"wrote {DOCS / 'sample_side_by_side.png'}")


if __name__ == "__main__":
    run()
