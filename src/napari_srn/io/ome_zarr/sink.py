"""OME-Zarr out: the resumable, chunk-by-chunk writer behind :func:`napari_srn.deblur_to_zarr`.

A store goes through these states (all under ``dest``):

1. ``dest`` is created (a new folder: napari-srn never writes into one it did not make) as a
   zarr group whose ``napari_srn`` attribute says ``status: "incomplete"`` with the run's
   fingerprint (source, model SHA-256, parameters); the same record is kept in
   ``dest/.napari-srn-work/run.json`` until the end, so the store stays known as napari-srn's
   if its group metadata is damaged. It carries no OME ``multiscales`` metadata yet, so no
   viewer mistakes it for a finished image.
2. Each stage is a dask array written chunk by chunk into a zarr array: the coarse SRN levels
   into float32 arrays under ``dest/.napari-srn-work/`` (read back from there by the next
   level, so memory stays bounded by a few tiles), the full-resolution result into ``dest/0``
   (zarr chunks are the tiles: one task writes one chunk, so parallel workers never write the
   same chunk), then the resolution pyramid ``dest/1``, ``dest/2``, ... (each a 2x2 mean of the
   level above, computed from the stored result, chunk by chunk), down to about one tile.
3. After each chunk is written, an empty marker file records it; a run started again with the
   same arguments skips every marked chunk and ends with the same result as an uninterrupted
   run. Only when every stage is written are the OME-NGFF 0.5 metadata added, the status set
   to ``"complete"`` and the work folder removed.

Every array carries zarr 3 ``dimension_names``, so ``ome-zarr-models validate`` accepts the
store. A different existing output is never overwritten without ``overwrite=True``; with it,
the replacement is written beside it (``<dest>.napari-srn-new``) and swapped in when complete
(:func:`_swap`). ``dest`` is resolved first: through a link, the target is what is locked and
replaced. Nothing that napari-srn did not create is ever deleted, renamed or truncated,
whatever its name (``<dest>.lock``, ``<dest>.napari-srn-old``, ...).
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import shutil
import warnings
from collections.abc import Callable, Generator
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import dask
import dask.array as da
import numpy as np

from ..._lockfile import flock, owner_gone, read_owner, same_file, write_owner
from ..._progress import Progress

if TYPE_CHECKING:
    import zarr

__all__ = [
    "NGFF_ORDER",
    "STATUS_KEY",
    "WORK",
    "Cancelled",
    "DestinationLocked",
    "OmeZarrSink",
    "ngff_axes",
]

STATUS_KEY = "napari_srn"
WORK = ".napari-srn-work"
#: An unfinished store's own record of its run (its first ``napari_srn`` attribute), kept in
#: the work folder: the store stays known as napari-srn's if its group metadata is damaged.
RUN_RECORD = f"{WORK}/run.json"
#: Written into a store about to be replaced: the replacement's fingerprint.
RETIRED = ".napari-srn-retired"
NGFF_ORDER = "tczyx"


class Cancelled(Exception):
    """Raised by :func:`napari_srn.deblur_to_zarr` when ``cancel()`` returned True. The store is
    left incomplete and resumable: the same call again continues where it stopped."""


class DestinationLocked(FileExistsError):
    """Another live process is writing the same destination."""


def _codecs():
    """Zstandard, then a CRC32C checksum of every stored chunk: a damaged chunk is an error
    when read (and redone on resume), never silently wrong data."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return [ZstdCodec(), Crc32cCodec()]


class _Lock:
    """One writer per destination: ``<dest>.lock`` beside the store, holding the owner's pid
    and host, and ``flock``-ed while held (the kernel releases that when the process dies).

    A lock whose process is gone (same host) is taken over, under the ``flock``: of two
    processes that find it stale at once, one takes it and the other finds it locked. A live
    owner, or another host's (it cannot be checked), is reported. Whatever else is at that
    path (notes, a folder, a link) was not written by napari-srn: refused, never removed."""

    def __init__(self, dest: Path):
        self.path = dest.with_name(dest.name + ".lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        for _ in range(5):  # a lock released between our open and flock: try again
            fd, created = self._open()
            try:
                if self._claim(fd, created):
                    self._fd = fd
                    return
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise DestinationLocked(f"could not take the lock {str(self.path)!r}; try again")

    def _open(self) -> tuple[int, bool]:
        """The lock file, opened for reading and writing; True if this call created it."""
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        for _ in range(5):
            try:
                return os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                pass
            try:
                return os.open(self.path, flags), False
            except FileNotFoundError:
                continue  # released meanwhile: create it
            except OSError as err:
                if err.errno in (errno.EISDIR, errno.ELOOP):
                    raise FileExistsError(self._foreign("a folder or a link")) from None
                raise
        raise DestinationLocked(f"could not take the lock {str(self.path)!r}; try again")

    def _claim(self, fd: int, created: bool) -> bool:
        """Take the opened lock file: False if it was released and replaced meanwhile."""
        if flock(fd) is False:
            raise DestinationLocked(self._locked(read_owner(fd)[1]))
        if not same_file(self.path, fd):
            return False
        if not created:
            text, owner = read_owner(fd)
            if text.strip() and owner is None:
                raise FileExistsError(self._foreign("a file that is not napari-srn's lock"))
            if owner is not None and not self._stale(owner):
                raise DestinationLocked(self._locked(owner))
        write_owner(
            fd, self.path
        )  # new, empty (its writer died before writing), or stale: ours now
        return True

    def _locked(self, owner: dict | None) -> str:
        who = f" (pid {owner['pid']} on {owner['host']})" if owner else ""
        return (
            f"another napari-srn run{who} is writing {str(self.path.with_suffix(''))!r}; wait "
            f"for it to finish, or delete {str(self.path)!r} if that process is gone"
        )

    def _foreign(self, what: str) -> str:
        return (
            f"{str(self.path)!r} is {what}; napari-srn needs that path for the lock of "
            f"{str(self.path.with_suffix(''))!r} and never removes what it did not write: "
            "move it away, or choose another destination"
        )

    @staticmethod
    def _stale(owner: dict) -> bool:
        return owner_gone(owner)  # the pid decides (a test slows this step down)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if same_file(self.path, self._fd):
                self.path.unlink()
        finally:
            os.close(self._fd)  # and with it the flock
            self._fd = None


def ngff_axes(axes: str | None, ndim: int, cax: int | None) -> str:
    """Axis names of an image, validated (NGFF letters t, c, z, y, x); guessed when None."""
    if axes is None:
        lead = ndim - 2 - (cax is not None)
        if lead > 2:
            raise ValueError(
                f"cannot guess axis names for {ndim} dimensions; pass axes= (e.g. 'tczyx')"
            )
        names = [*("", "t", "tz")[lead], "y", "x"]
        if cax is not None:
            names.insert(cax, "c")
        return "".join(names)
    if not isinstance(axes, str):
        raise TypeError(f"axes must be a string such as 'tyx', got {type(axes).__name__}")
    axes = axes.lower()
    problems = []
    if len(axes) != ndim:
        problems.append(f"has {len(axes)} letters for an image with {ndim} dimensions")
    if set(axes) - set(NGFF_ORDER) or len(set(axes)) != len(axes):
        problems.append("must use each of t, c, z, y, x at most once")
    if cax is not None and len(axes) == ndim and axes[cax] != "c":
        problems.append(f"must name the channel axis ({cax}) 'c'")
    spatial = [a for i, a in enumerate(axes) if i != cax][-2:]
    if spatial != ["y", "x"]:
        problems.append("must end (apart from the channel axis) with 'y', 'x'")
    if problems:
        raise ValueError(f"axes={axes!r} " + "; ".join(problems))
    return axes


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _regular(chunks: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    """Zarr chunk shape for dask chunks that form a regular grid (a merged last block spans
    two zarr chunks, both written by the same task)."""
    return tuple(c[0] for c in chunks)


def _write_block(block: np.ndarray, store: str, region: tuple, marker: str) -> None:
    import zarr

    zarr.open_array(store, mode="r+")[region] = block
    Path(marker).touch()  # after the data: a crash in between only redoes this chunk


def _halve(block: np.ndarray) -> np.ndarray:
    """2x2 mean over the last two axes (even sides), rounded back to an integer dtype."""
    h, w = block.shape[-2:]
    cells = block.reshape(*block.shape[:-2], h // 2, 2, w // 2, 2)
    mean = cells.mean(axis=(-3, -1), dtype=np.float64)
    if np.issubdtype(block.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(block.dtype)


def pyramid_level(prev: da.Array, chunks: tuple[int, ...]) -> da.Array:
    """The next, half-size resolution level of ``prev`` (2x2 means; an odd last row or column
    is repeated), chunked as ``chunks`` (the spatial chunk shape of the full resolution)."""
    h, w = prev.shape[-2:]
    if h % 2 or w % 2:
        prev = da.pad(prev, [(0, 0)] * (prev.ndim - 2) + [(0, h % 2), (0, w % 2)], mode="edge")
    src = prev.rechunk((*prev.chunks[:-2], 2 * chunks[-2], 2 * chunks[-1]))
    out_chunks = tuple(tuple(-(-c // 2) for c in axis) for axis in src.chunks[-2:])
    return src.map_blocks(_halve, chunks=(*src.chunks[:-2], *out_chunks), dtype=prev.dtype)


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
        self._lock = _Lock(dest)
        self._lock.acquire()  # before anything is created, resumed or replaced
        try:
            _recover_swap(dest)
            self.dest = _open_dest(dest, fingerprint, overwrite)
            info = {"status": "incomplete", "fingerprint": fingerprint, **provenance}
            self.group, self.complete = _open_group(self.dest, {**info, "started": _now()})
            if self.complete and self.dest != dest:  # finished, cut off before its swap
                _swap(self.dest, dest, fingerprint)
                self.dest = dest
                self.group = _open_group(dest, info)[0]
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

    def _array(self, path: Path, x: da.Array, dimension_names: list[str] | None) -> Path:
        import zarr

        if path.exists() and not _intact(path, x):
            shutil.rmtree(path)  # damaged (by a crash or by hand): rebuilt, its chunks redone
        if not path.exists():
            zarr.create_array(
                str(path),
                shape=x.shape,
                chunks=_regular(x.chunks),
                dtype=x.dtype,
                fill_value=0,
                compressors=_codecs(),
                dimension_names=dimension_names,
                # every chunk is stored, zeros too: a chunk file that is missing was lost
                config={"write_empty_chunks": True},
            )
        return path

    def level(self, tag: str, out: da.Array) -> da.Array:
        """Store a coarse level in the work folder; the next level reads it from there."""
        import zarr

        path = self._array(self.dest / WORK / tag, out, None)
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
        chunks = _regular(result.chunks)
        levels = [self._array(self.dest / "0", result, dims)]
        self._stages.append(("final", result, levels[0]))
        x = result
        while max(x.shape[-2:]) > max(chunks[-2:]):  # down to about one tile
            prev = da.from_zarr(zarr.open_array(str(levels[-1]), mode="r"))
            x = pyramid_level(prev, chunks)
            levels.append(self._array(self.dest / str(len(levels)), x, dims))
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
        with warnings.catch_warnings():  # ome-zarr deprecates its own Scaler at import
            warnings.simplefilter("ignore", DeprecationWarning)
            from ome_zarr.writer import write_multiscales_metadata

        spatial = {len(axes) - 2, len(axes) - 1}
        datasets = []
        for k in range(n_levels):
            f = float(2**k)
            scale = [f if i in spatial else 1.0 for i in range(len(axes))]
            shift = [(f - 1) / 2 if i in spatial else 0.0 for i in range(len(axes))]
            transforms = [{"type": "scale", "scale": scale}]
            if k:
                transforms.append({"type": "translation", "translation": shift})
            datasets.append({"path": str(k), "coordinateTransformations": transforms})
        write_multiscales_metadata(self.group, datasets=datasets, axes=list(axes), name=name)
        info = dict(cast("dict[str, Any]", self.group.attrs[STATUS_KEY]))
        info["status"] = "complete"
        info["finished"] = _now()
        self.group.attrs[STATUS_KEY] = info
        shutil.rmtree(self.dest / WORK, ignore_errors=True)
        if self.dest != self.final:  # the new result is complete: only now replace the old one
            _swap(self.dest, self.final, self.fingerprint)
            self.dest = self.final


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


def _staging(dest: Path) -> Path:
    """Where a result that will replace ``dest`` is written until it is complete."""
    return dest.with_name(dest.name + ".napari-srn-new")


def _retired(dest: Path) -> Path:
    return dest.with_name(dest.name + ".napari-srn-old")


def _in_the_way(old: Path, dest: Path) -> str:
    return (
        f"{str(old)!r} is in the way: napari-srn moves {str(dest)!r} there while it swaps in "
        "the replacement, and never removes what it did not write. Move it away, or choose "
        "another destination"
    )


def _swap(new: Path, dest: Path, fingerprint: str) -> None:
    """Replace ``dest`` by the complete store ``new`` (whose run is ``fingerprint``): two
    renames, then the old one deleted. The old store is stamped first (:data:`RETIRED`), so
    that, cut off between them, :func:`_recover_swap` knows it for napari-srn's own."""
    old = _retired(dest)
    if os.path.lexists(old):
        raise FileExistsError(_in_the_way(old, dest))
    (dest / RETIRED).write_text(fingerprint)
    os.replace(dest, old)
    os.replace(new, dest)
    _remove_store(old)


def _recover_swap(dest: Path) -> None:
    """Finish or undo a swap that was cut off. Only a store napari-srn stamped is touched: a
    user's file or folder of the same name stays as it is."""
    old = _retired(dest)
    try:
        if old.is_symlink():
            return
        replacement = (old / RETIRED).read_text()
    except OSError:
        return  # absent, or not napari-srn's
    if not os.path.lexists(dest):  # cut off between the renames: the old result goes back
        os.replace(old, dest)
        (dest / RETIRED).unlink()
    elif (_status(dest) or {}).get("fingerprint") == replacement:  # only the deletion missed
        _remove_store(old)


def _remove_store(path: Path) -> None:
    """Delete a store napari-srn wrote, its group metadata and stamp last: cut off midway,
    what remains is still recognisably napari-srn's, and removed at the next run."""
    if path.is_symlink():  # never followed: what a link points to was not made here
        raise FileExistsError(f"{str(path)!r} is a link; napari-srn does not remove it")
    last = ("zarr.json", RETIRED)
    for entry in os.scandir(path):
        if entry.name not in last:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    for name in last:
        (path / name).unlink(missing_ok=True)
    path.rmdir()


def _status(path: Path) -> dict | None:
    """The ``napari_srn`` attribute of a store napari-srn wrote; None for anything else. An
    unfinished store whose group metadata is lost or damaged is known by its run record."""
    import zarr

    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:  # no readable zarr group
        return _run_record(path)
    info = attrs.get(STATUS_KEY)
    return info if isinstance(info, dict) and info.get("status") else None


def _run_record(path: Path) -> dict | None:
    """The record an unfinished store keeps in its work folder (the group's first
    ``napari_srn`` attribute); None if there is none."""
    try:
        info = json.loads((path / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(info, dict) and isinstance(info.get("fingerprint"), str)
    return info if ok and info.get("status") == "incomplete" else None


def _open_dest(dest: Path, fingerprint: str, overwrite: bool) -> Path:
    """Where to write: ``dest`` itself (new, or this same run resumed), or, to replace another
    napari-srn result with ``overwrite``, a store beside it swapped in when complete. Refuses
    to touch anything napari-srn did not write, even with ``overwrite``."""
    if not os.path.lexists(dest):
        return dest
    info = _status(dest)
    if info is None:  # never delete what napari-srn did not write, even when asked to
        raise FileExistsError(
            f"{str(dest)!r} already holds something napari-srn did not write; it is not "
            "replaced even with overwrite=True (--overwrite). Remove it yourself, or "
            "choose another destination"
        )
    if info.get("fingerprint") == fingerprint:
        return dest  # the same run: resumed, or already complete
    if not overwrite:
        raise FileExistsError(
            f"{str(dest)!r} already holds a different napari-srn result; pass "
            "overwrite=True (--overwrite) to replace it, or choose another destination"
        )
    if os.path.lexists(_retired(dest)):  # checked now, not after the work
        raise FileExistsError(_in_the_way(_retired(dest), dest))
    new = _staging(dest)
    if os.path.lexists(new):
        staged = None if new.is_symlink() else _status(new)  # napari-srn makes no links
        if staged is None:
            raise FileExistsError(
                f"{str(new)!r} holds something napari-srn did not write; remove it to replace "
                f"{str(dest)!r}"
            )
        if staged.get("fingerprint") != fingerprint:
            _remove_store(new)  # an earlier, abandoned replacement: napari-srn's own
    return new


def _open_group(dest: Path, info: dict) -> tuple[zarr.Group, bool]:
    """Open (resume) or create the output group of the run ``info`` describes; return
    (group, already_complete)."""
    import zarr

    if not os.path.lexists(dest):
        return _create_group(dest, info), False
    try:  # _open_dest chose it: this same run, to resume
        group = zarr.open_group(str(dest), mode="r+")
    except Exception:  # damaged group metadata: rewritten from the run's record
        _write_group(dest, cast(dict, _run_record(dest)))
        group = zarr.open_group(str(dest), mode="r+")
    stored = dict(group.attrs).get(STATUS_KEY)
    if not isinstance(stored, dict) or stored.get("fingerprint") != info["fingerprint"]:
        raise FileExistsError(f"{str(dest)!r} changed while it was opened; run again")
    return group, stored.get("status") == "complete"


def _create_group(dest: Path, info: dict) -> zarr.Group:
    """A new output group at ``dest``, with the run's record in its work folder too."""
    import zarr

    try:
        os.mkdir(dest)  # fails if anything is there: napari-srn writes only into what it made
    except FileExistsError:
        raise
    except OSError as err:
        raise PermissionError(f"cannot write {str(dest)!r}: {err}") from err
    try:
        _write_json(dest / RUN_RECORD, info)
        _write_group(dest, info)
        return zarr.open_group(str(dest), mode="r+")
    except BaseException as err:
        shutil.rmtree(dest, ignore_errors=True)  # only what this call created
        if isinstance(err, OSError):
            raise PermissionError(f"cannot write {str(dest)!r}: {err}") from err
        raise


def _write_group(dest: Path, info: dict) -> None:
    """The zarr 3 metadata of the output group, with the run's ``napari_srn`` attribute."""
    meta = {"zarr_format": 3, "node_type": "group", "attributes": {STATUS_KEY: info}}
    _write_json(dest / "zarr.json", meta)


def _write_json(path: Path, obj: object) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(
            json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o))
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
