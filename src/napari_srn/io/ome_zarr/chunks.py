"""Stages written chunk by chunk, resumably: each stage's zarr array, the marker file written
after each chunk, and the check that a marked chunk is really stored and intact.

A stage is a dask array written into a zarr array whose chunks are its blocks (one task
writes one chunk, so parallel workers never write the same chunk). After a chunk is written, an
empty marker file under ``<store>/.napari-srn-work/done/<stage>/`` records it; a run started
again skips every marked chunk that reads back intact (its checksum passes) and redoes the rest.
"""

from __future__ import annotations

import shutil
from collections.abc import Generator
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import dask.array as da
import numpy as np

from ..._progress import Progress
from .store import WORK

if TYPE_CHECKING:
    import zarr

__all__ = ["stage_array", "write_stage", "zarr_chunks"]


def _codecs():
    """Zstandard, then a CRC32C checksum of every stored chunk: a damaged chunk is an error
    when read (and redone on resume), never silently wrong data."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return [ZstdCodec(), Crc32cCodec()]


def zarr_chunks(chunks: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    """Zarr chunk shape for dask chunks that form a regular grid (a merged last block spans
    two zarr chunks, both written by the same task)."""
    return tuple(c[0] for c in chunks)


def _write_block(block: np.ndarray, store: str, region: tuple, marker: str) -> None:
    import zarr

    zarr.open_array(store, mode="r+")[region] = block
    Path(marker).touch()  # after the data: a crash in between only redoes this chunk


def stage_array(path: Path, x: da.Array, dimension_names: list[str] | None) -> Path:
    """The zarr array at ``path`` that stage ``x`` is written into: created if absent, rebuilt
    if damaged (its chunks are then redone), kept as it is otherwise."""
    import zarr

    if path.exists() and not _intact(path, x):
        shutil.rmtree(path)  # damaged (by a crash or by hand): rebuilt, its chunks redone
    if not path.exists():
        zarr.create_array(
            str(path),
            shape=x.shape,
            chunks=zarr_chunks(x.chunks),
            dtype=x.dtype,
            fill_value=0,
            compressors=_codecs(),
            dimension_names=dimension_names,
            # every chunk is stored, zeros too: a chunk file that is missing was lost
            config={"write_empty_chunks": True},
        )
    return path


def write_stage(
    dest: Path,
    tag: str,
    x: da.Array,
    array_path: Path,
    done: int,
    total: int,
    batch: int,
) -> Generator[Progress, None, int]:
    """Compute every unmarked block of ``x`` into the array at ``array_path``, ``batch``
    blocks per dask call, yielding :class:`Progress` after each call (and once first); returns
    the updated count of done chunks."""
    import zarr

    marks = dest / WORK / "done" / tag
    marks.mkdir(parents=True, exist_ok=True)
    finished = {p.name for p in marks.iterdir()}
    stored = zarr.open_array(str(array_path), mode="r") if finished else None
    todo = []
    for idx in product(*(range(len(c)) for c in x.chunks)):
        name = ".".join(map(str, idx))
        region = _region(x.chunks, idx)
        if name in finished and stored is not None and _readable(stored, array_path, region):
            done += 1
        else:
            (marks / name).unlink(missing_ok=True)
            todo.append((idx, name))
    yield Progress(done, total)
    store = str(array_path)
    for i in range(0, len(todo), batch):
        tasks = []
        for idx, name in todo[i : i + batch]:
            region = _region(x.chunks, idx)
            marker = str(marks / name)
            tasks.append(dask.delayed(_write_block)(x.blocks[idx], store, region, marker))
        dask.compute(*tasks)
        done += len(tasks)
        yield Progress(done, total)
    return done


def _intact(path: Path, x: da.Array) -> bool:
    """Whether the stored array at ``path`` opens and has ``x``'s shape and dtype."""
    import zarr

    try:
        stored = zarr.open_array(str(path), mode="r")
    except Exception:
        return False
    return stored.shape == x.shape and stored.dtype == x.dtype


def _region(chunks: tuple[tuple[int, ...], ...], idx: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(sum(c[:k]), sum(c[: k + 1])) for c, k in zip(chunks, idx, strict=True))


def _readable(stored: zarr.Array, array_path: Path, region: tuple[slice, ...]) -> bool:
    """Whether a block marked done is stored and reads back intact: every zarr chunk it covers
    is on disk (a merged last tile spans two) and passes its checksum."""
    spans = [
        range(s.start // c, -(-s.stop // c)) for s, c in zip(region, stored.chunks, strict=True)
    ]
    for index in product(*spans):
        if not (Path(array_path) / stored.metadata.encode_chunk_key(index)).is_file():
            return False  # deleted: zarr would read the fill value back as if it were computed
    try:
        stored[region]
    except Exception:  # checksum mismatch, garbled compression: redo the chunk
        return False
    return True
