"""deblur_to_zarr under attack (issue 22): lost chunks of merged tiles, inputs written over,
sources rewritten in place, folders napari-srn did not create, locks, links, a full disk and a
damaged group. docs/reliability.md lists what each test guarantees."""

from __future__ import annotations

import os

import dask.array as da
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


def test_a_dask_array_read_from_a_store_is_never_written_over(tmp_path, grey):
    """Item 4: the input found inside a dask array's graph (from_zarr, from_array, inlined)
    counts as the input, like a path or a zarr array."""
    store = run(grey, tmp_path / "in.zarr")
    before = level0(store)
    opened = zarr.open_array(str(store / "0"), mode="r")
    sources = [
        da.from_zarr(str(store / "0")),
        da.from_zarr(str(store / "0"), inline_array=True) + 0,
        da.from_array(opened)[:, ::-1],
    ]
    for source in sources:
        for dest in (store, store / "0", store / "0" / "inside.zarr"):
            with pytest.raises(ValueError, match="would destroy the input"):
                run(source, dest, seed=9, overwrite=True)
    np.testing.assert_array_equal(level0(store), before)
    assert status(store)["status"] == "complete"


@pytest.mark.parametrize("kind", ["path", "zarr array", "dask array"])
def test_a_source_rewritten_with_the_same_size_and_mtime_is_not_resumed(tmp_path, rng, kind):
    """Item 7: another version of the data, written at the same path with the same sizes,
    its modification times set back, is a different run: refused, never resumed into."""
    image = rng.integers(0, 256, (64, 80), dtype=np.uint8)
    src = tmp_path / "src.zarr"
    z = zarr.create_array(  # stored raw: a rewrite keeps every file's size
        str(src), shape=image.shape, chunks=(32, 40), dtype="uint8", compressors=None
    )
    z[:] = image

    def source():
        if kind == "path":
            return str(src)
        opened = zarr.open_array(str(src), mode="r")
        return opened if kind == "zarr array" else da.from_array(opened)

    interrupted(source(), tmp_path / "r.zarr")
    files = [p for p in src.rglob("*") if p.is_file()]
    stats = {p: (p.stat().st_size, p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in files}
    z[:] = 255 - image  # another version: same shape, dtype and (raw) chunk sizes
    for p, (size, atime, mtime) in stats.items():
        os.utime(p, ns=(atime, mtime))
        assert p.stat().st_size == size and p.stat().st_mtime_ns == mtime
    with pytest.raises(FileExistsError, match="different napari-srn result"):
        run(source(), tmp_path / "r.zarr")
