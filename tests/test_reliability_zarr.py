"""deblur_to_zarr under attack (issue 22): lost chunks of merged tiles, inputs written over,
sources rewritten in place, folders napari-srn did not create, locks, links, a full disk and a
damaged group. docs/reliability.md lists what each test guarantees."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from napari_srn import Cancelled, deblur_to_zarr

from .helpers import tiny_srn

ARGS = {"tile_size": 32, "precision": "float32"}


def run(source, dest, seed: int = 0, **kw):
    """deblur_to_zarr with a tiny grey model (``seed`` picks its weights)."""
    return deblur_to_zarr(source, dest, model=tiny_srn(1, seed=seed), **{**ARGS, **kw})


def interrupted(source, dest, left: int | None = None, **kw) -> None:
    """A run cancelled after 2 chunks (one chunk per batch), or with ``left`` chunks to go."""
    seen: list[tuple[int, int]] = []

    def cancel() -> bool:
        return bool(seen) and seen[-1][0] >= (2 if left is None else seen[-1][1] - left)

    with pytest.raises(Cancelled):
        run(source, dest, batch_size=1, progress=lambda *p: seen.append(p), cancel=cancel, **kw)


def status(dest) -> dict:
    return dict(zarr.open_group(str(dest), mode="r").attrs)["napari_srn"]


def level0(dest) -> np.ndarray:
    return zarr.open_array(str(dest / "0"), mode="r")[:]


@pytest.fixture
def grey(rng) -> np.ndarray:
    return rng.integers(0, 256, (64, 80), dtype=np.uint8)


def test_resume_redoes_a_lost_chunk_of_a_merged_last_tile(tmp_path, rng):
    """Item 1: the last tile of a row (80 = 64 + 16 px) spans two zarr chunks; losing the
    second one (``0/c/0/6``) must be noticed on resume, not read back as black."""
    image = rng.integers(0, 256, (128, 400), dtype=np.uint8)
    args = {"tile_size": 64}
    whole = run(image, tmp_path / "whole.zarr", **args)
    assert zarr.open_array(str(whole / "0")).chunks == (64, 64)
    dest = tmp_path / "r.zarr"
    interrupted(image, dest, left=1, **args)  # everything but the pyramid's last chunk
    for row in (0, 1):
        (dest / "0" / "c" / str(row) / "6").unlink()  # the 16-px strip of a merged tile
    run(image, dest, **args)
    np.testing.assert_array_equal(level0(dest), level0(whole))
