"""The output store of one run, :class:`OmeZarrSink`: created, resumed or refused, its stages
written chunk by chunk, then completed with its pyramid and NGFF metadata.

The store's states are described in the package's docstring; the sink composes the lock
(:mod:`.lock`), the store's record and swap (:mod:`.store`), the resumable stage writing
(:mod:`.chunks`) and the pyramid and metadata (:mod:`.ngff`).
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, cast

import dask.array as da

from ..._progress import Progress
from .chunks import stage_array, write_stage, zarr_chunks
from .lock import WriterLock
from .ngff import pyramid_level, write_multiscales
from .store import STATUS_KEY, WORK, open_dest, open_group, recover_swap, swap

__all__ = ["Cancelled", "OmeZarrSink"]


class Cancelled(Exception):
    """Raised by :func:`napari_srn.deblur_to_zarr` when ``cancel()`` returned True. The store is
    left incomplete and resumable: the same call again continues where it stopped."""


class OmeZarrSink:
    """The output store of one run: created, resumed or refused at construction.

    Use :meth:`level` as the lazy graph's sink for the coarse levels, then :meth:`iter_write`
    the full-resolution result; nothing is computed before :meth:`iter_write`.

    Parameters
    ----------
    dest : Path
        The store.
    fingerprint : str
        Identifies the run: the same fingerprint resumes, another one is refused.
    provenance : dict
        Recorded under the group's ``napari_srn`` attribute.
    overwrite : bool
        Replace a store that holds anything else.
    """

    def __init__(self, dest: Path, fingerprint: str, provenance: dict, overwrite: bool = False):
        # a link and what it points to are one destination: one lock, the target replaced
        dest = dest.expanduser().resolve()
        if not dest.parent.is_dir():
            raise FileNotFoundError(
                f"cannot write {str(dest)!r}: its folder {str(dest.parent)!r} does not exist"
            )
        self.final = dest
        self.fingerprint = fingerprint
        self._lock = WriterLock(dest)
        self._lock.acquire()  # before anything is created, resumed or replaced
        try:
            recover_swap(dest)
            self.dest = open_dest(dest, fingerprint, overwrite)
            info = {"status": "incomplete", "fingerprint": fingerprint, **provenance}
            self.group, self.complete = open_group(self.dest, {**info, "started": _now()})
            if self.complete and self.dest != dest:  # finished, cut off before its swap
                swap(self.dest, dest, fingerprint)
                self.dest = dest
                self.group = open_group(dest, info)[0]
        except BaseException:
            self._lock.release()
            raise
        self._stages: list[tuple[str, da.Array, Path]] = []

    def close(self) -> None:
        """Release the destination's lock (the store stays as it is: complete or resumable)."""
        self._lock.release()

    def __enter__(self) -> OmeZarrSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def level(self, tag: str, out: da.Array) -> da.Array:
        """Store a coarse level in the work folder; the next level reads it from there."""
        import zarr

        path = stage_array(self.dest / WORK / tag, out, None)
        self._stages.append((tag, out, path))
        return da.from_zarr(zarr.open_array(str(path), mode="r"), chunks=out.chunks)

    def iter_write(
        self,
        result: da.Array,
        axes: str,
        *,
        name: str,
        batch: int = 2,
        unchanged: Callable[[], bool] | None = None,
    ) -> Generator[Progress, None, None]:
        """Compute every stage (coarse levels, ``result`` in NGFF axis order, the pyramid)
        chunk by chunk, ``batch`` chunks per dask call, yielding :class:`Progress` after each
        batch (stop iterating to cancel: the store stays resumable); then mark the store
        complete, unless ``unchanged()`` (asked once every chunk is written) says the input
        changed while it was read: then a ``ValueError``, and the store stays unfinished."""
        import zarr

        dims = list(axes)
        chunks = zarr_chunks(result.chunks)
        levels = [stage_array(self.dest / "0", result, dims)]
        self._stages.append(("final", result, levels[0]))
        x = result
        while max(x.shape[-2:]) > max(chunks[-2:]):  # down to about one tile
            prev = da.from_zarr(zarr.open_array(str(levels[-1]), mode="r"))
            x = pyramid_level(prev, chunks)
            levels.append(stage_array(self.dest / str(len(levels)), x, dims))
            self._stages.append((f"pyramid{len(levels) - 1}", x, levels[-1]))
        total = sum(stage.npartitions for _, stage, _ in self._stages)
        done = 0
        for tag, stage, path in self._stages:
            done = yield from write_stage(self.dest, tag, stage, path, done, total, batch)
        if unchanged is not None and not unchanged():
            raise ValueError(
                f"the input changed while it was read: {str(self.final)!r} may mix two "
                "versions of it, so it is left unfinished. Run again with overwrite=True "
                "(--overwrite) once the input no longer changes"
            )
        self._finish(axes, len(levels), name)

    def _finish(self, axes: str, n_levels: int, name: str) -> None:
        write_multiscales(self.group, axes, n_levels, name)
        info = dict(cast("dict[str, Any]", self.group.attrs[STATUS_KEY]))
        info["status"] = "complete"
        info["finished"] = _now()
        self.group.attrs[STATUS_KEY] = info
        shutil.rmtree(self.dest / WORK, ignore_errors=True)
        if self.dest != self.final:  # the new result is complete: only now replace the old one
            swap(self.dest, self.final, self.fingerprint)
            self.dest = self.final


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
