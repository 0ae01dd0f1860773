"""deblur_to_zarr under attack (issue 22): lost chunks of merged tiles, inputs written over,
sources rewritten in place, folders napari-srn did not create, locks, links, a full disk and a
damaged group. docs/reliability.md lists what each test guarantees."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_srn import Cancelled, deblur_to_zarr
from napari_srn.io.ome_zarr import DestinationLocked
from napari_srn.io.ome_zarr.lock import WriterLock

from ..helpers import tiny_srn

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
    """Item 4: the input found inside a dask array's graph (from_zarr, from_array, inlined),
    or a memmap's file, counts as the input, like a path or a zarr array."""
    store = run(grey, tmp_path / "in.zarr")
    before = level0(store)
    opened = zarr.open_array(str(store / "0"), mode="r")
    sources = [
        da.from_zarr(str(store / "0")),
        da.from_zarr(str(store / "0"), inline_array=True) + 0,
        da.from_array(opened)[:, ::-1],
    ]
    raw = np.memmap(store / "raw.u8", dtype=np.uint8, mode="w+", shape=grey.shape)
    raw[:] = grey  # a memmap reads a file too (dask's from_array copies one: not read)
    cases = [(s, (store, store / "0", store / "0" / "inside.zarr")) for s in sources]
    cases += [(raw, (store, store / "raw.u8"))]
    for source, dests in cases:
        for dest in dests:
            with pytest.raises(ValueError, match="would destroy the input"):
                run(source, dest, seed=9, overwrite=True)
    np.testing.assert_array_equal(level0(store), before)
    assert status(store)["status"] == "complete"


@pytest.mark.parametrize("kind", ["folder", "empty folder", "file"])
def test_a_users_folder_named_like_our_old_store_is_never_touched(tmp_path, grey, kind):
    """Item 6: ``<dest>.napari-srn-old`` that napari-srn did not create is neither deleted
    (dest present) nor renamed into place (dest absent), and blocks an overwrite up front."""

    def users(path):
        if kind == "file":
            path.write_text("precious")
        else:
            path.mkdir()
            if kind == "folder":
                (path / "keep.txt").write_text("precious")

    def intact(path):
        if kind == "file":
            return path.read_text() == "precious"
        inside = sorted(p.name for p in path.iterdir())
        return inside == (["keep.txt"] if kind == "folder" else [])

    dest = tmp_path / "S4.zarr"
    run(grey, dest)
    old = tmp_path / "S4.zarr.napari-srn-old"
    users(old)
    run(grey, dest)  # the same run: already complete
    assert intact(old)
    with pytest.raises(FileExistsError, match="napari-srn-old"):
        run(grey, dest, seed=9, overwrite=True)
    assert intact(old) and status(dest)["status"] == "complete"
    absent = tmp_path / "T.zarr"
    users(tmp_path / "T.zarr.napari-srn-old")
    run(grey, absent)  # written anew; the user's folder stays where it is
    assert intact(tmp_path / "T.zarr.napari-srn-old")
    assert status(absent)["status"] == "complete"


def test_a_lock_path_napari_srn_did_not_write_is_never_deleted(tmp_path, grey):
    """Item 6, the wider rule: whatever sits at ``<dest>.lock`` that is not napari-srn's lock
    (notes, a folder, a link) is refused, never unlinked or truncated."""
    notes = tmp_path / "a.zarr.lock"
    notes.write_text("my notes")
    folder = tmp_path / "b.zarr.lock"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    dead = {"pid": _dead_pid(), "host": socket.gethostname()}
    target = tmp_path / "record.json"
    target.write_text(json.dumps(dead))  # looks like a stale lock, but is the user's file
    (tmp_path / "c.zarr.lock").symlink_to(target)
    for name in "abc":
        with pytest.raises(FileExistsError, match="lock"):
            run(grey, tmp_path / f"{name}.zarr")
        assert not (tmp_path / f"{name}.zarr").exists()
    assert notes.read_text() == "my notes"
    assert (folder / "keep.txt").read_text() == "precious"
    assert (tmp_path / "c.zarr.lock").is_symlink()
    assert json.loads(target.read_text()) == dead


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


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


_STALE_RACE = """
import sys, time
from pathlib import Path
from napari_srn.io.ome_zarr import DestinationLocked
from napari_srn.io.ome_zarr.lock import WriterLock
dest, me, go = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
real_stale = WriterLock._stale
def slow_stale(owner):  # both judge the old lock stale; the second acts 0.3 s later
    stale = real_stale(owner)
    time.sleep(max(0.0, start + 0.5 + 0.3 * me - time.time()))
    return stale
WriterLock._stale = staticmethod(slow_stale)
lock = WriterLock(dest)
(dest.parent / f"ready{me}").touch()
while not go.exists():
    time.sleep(0.01)
start = float(go.read_text())
try:
    lock.acquire()
except DestinationLocked:
    print("refused", flush=True)
else:
    print("got", flush=True)
    time.sleep(max(0.0, start + 2.0 - time.time()))  # hold it past the other's attempt
    lock.release()
"""


def test_a_stale_lock_goes_to_one_of_two_processes(tmp_path):
    """Item 8: two processes find the same stale lock (its owner was killed) at once; exactly
    one takes it over."""
    dest = tmp_path / "out.zarr"
    lock = tmp_path / "out.zarr.lock"
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _STALE_RACE, str(dest), str(i), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        deadline = time.time() + 120
        while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
            assert time.time() < deadline, "the racing processes did not start"
            time.sleep(0.05)
        go.write_text(str(time.time()))
        outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert outs == ["got", "refused"]
    assert not lock.exists()  # released by its one holder


def test_a_destination_and_a_link_to_it_are_one_destination(tmp_path, grey):
    """Item 9: a run through a link (to the store, or to its folder) takes the same lock as a
    run on the real path."""
    real = tmp_path / "real.zarr"
    interrupted(grey, real)  # an unfinished store, resumed by both runs at once
    (tmp_path / "link.zarr").symlink_to(real)
    (tmp_path / "via").symlink_to(tmp_path)
    lock = WriterLock(real.resolve())
    lock.acquire()  # a writer of real.zarr, still running
    try:
        for dest in (tmp_path / "link.zarr", tmp_path / "via" / "real.zarr"):
            with pytest.raises(DestinationLocked, match=f"pid {os.getpid()}"):
                run(grey, dest)
    finally:
        lock.release()
    assert status(real)["status"] == "incomplete"


def test_overwrite_through_a_link_replaces_the_target_and_keeps_the_link(tmp_path, grey):
    """Item 10: --overwrite onto a symlinked destination replaces the store it points to; the
    link stays a link, and nothing is left beside either."""
    real = run(grey, tmp_path / "real.zarr")
    link = tmp_path / "link.zarr"
    link.symlink_to(real)
    first = status(real)["fingerprint"]
    run(grey, link, seed=9, overwrite=True)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert status(real)["status"] == "complete" and status(real)["fingerprint"] != first
    np.testing.assert_array_equal(level0(real), level0(run(grey, tmp_path / "b.zarr", seed=9)))
    run(grey, link, seed=9)  # and later runs work: complete, nothing to do
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zarr", "link.zarr", "real.zarr"]


_FULL_DISK = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # no byte can be written: a full disk
from napari_srn.io.ome_zarr import OmeZarrSink
try:
    OmeZarrSink(Path(sys.argv[1]), "f" * 64, {})
except OSError as err:
    print(f"{type(err).__name__}: {err}")
"""


def test_a_full_disk_leaves_no_lock_behind(tmp_path, grey):
    """Item 11: the lock's record cannot be written (RLIMIT_FSIZE=0 in a subprocess: every
    write fails with EFBIG, as a full disk fails with ENOSPC): the run fails naming the lock,
    and leaves no empty lock file behind."""
    dest = tmp_path / "out.zarr"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(dest)], capture_output=True, text=True, timeout=120
    )
    assert "lock" in done.stdout and "File too large" in done.stdout, done
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    run(grey, dest)  # the disk has room again: the next run simply works


def test_a_truncated_group_json_of_an_unfinished_store_resumes(tmp_path, grey):
    """Item 14: an unfinished store whose group ``zarr.json`` is truncated is still known as
    napari-srn's (its work folder keeps the run's record): the same run resumes it to the
    uninterrupted result, and another run with overwrite replaces it."""
    whole = run(grey, tmp_path / "whole.zarr")
    for name in ("same.zarr", "other.zarr"):
        interrupted(grey, tmp_path / name)
        meta = tmp_path / name / "zarr.json"
        meta.write_bytes(meta.read_bytes()[:40])
    run(grey, tmp_path / "same.zarr")
    np.testing.assert_array_equal(level0(tmp_path / "same.zarr"), level0(whole))
    assert status(tmp_path / "same.zarr")["status"] == "complete"
    with pytest.raises(FileExistsError, match="different napari-srn result"):
        run(grey, tmp_path / "other.zarr", seed=9)
    run(grey, tmp_path / "other.zarr", seed=9, overwrite=True)
    assert status(tmp_path / "other.zarr")["status"] == "complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.zarr", "same.zarr", "whole.zarr"]


def test_a_link_named_like_our_staging_store_is_never_followed(tmp_path, grey):
    """Item 6, another filesystem object: ``<dest>.napari-srn-new`` that is a link to the
    user's own napari-srn result is not napari-srn's abandoned replacement: refused, and
    what it points to is untouched."""
    dest = run(grey, tmp_path / "d.zarr")
    other = run(grey, tmp_path / "other.zarr", seed=5)
    before = level0(other)
    (tmp_path / "d.zarr.napari-srn-new").symlink_to(other)
    with pytest.raises(FileExistsError, match="napari-srn-new"):
        run(grey, dest, seed=9, overwrite=True)
    np.testing.assert_array_equal(level0(other), before)
    assert status(other)["status"] == "complete"


_BIND = """
import subprocess, sys
from pathlib import Path
import dask.array as da
from napari_srn.io.identity import check_not_the_input
a, b = Path(sys.argv[1]), Path(sys.argv[2])
subprocess.run(["mount", "--bind", str(a), str(b)], check=True)
for source in (str(b / "in.zarr"), da.from_zarr(str(b / "in.zarr"))):
    try:
        check_not_the_input(source, a / "in.zarr")
    except ValueError:
        print("refused")
    else:
        print("accepted")
"""


def test_the_input_under_another_name_is_still_the_input(tmp_path):
    """Item 4, another name: the input read through a bind mount of its folder (as a
    case-insensitive file system gives it another name too) is still refused as the
    destination. Runs in a user and mount namespace (``unshare -rm``)."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    zarr.create_array(str(a / "in.zarr"), shape=(8, 8), dtype="uint8")
    try:
        done = subprocess.run(
            ["unshare", "-rm", sys.executable, "-c", _BIND, str(a), str(b)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except FileNotFoundError:
        pytest.skip("no unshare")
    if "mount" in done.stderr or "unshare" in done.stderr:
        pytest.skip(f"no mount namespace here: {done.stderr.strip()[-200:]}")
    assert done.stdout.split() == ["refused", "refused"], done.stderr


_FULL_AFTER_LOCK = """
import resource, sys
from pathlib import Path
from napari_srn.io.ome_zarr import OmeZarrSink
from napari_srn.io.ome_zarr.lock import WriterLock
take = WriterLock.acquire
def acquire(self):  # the lock is written; then the disk is full
    take(self)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
WriterLock.acquire = acquire
try:
    OmeZarrSink(Path(sys.argv[1]), "f" * 64, {})
except OSError as err:
    print(f"{type(err).__name__}: {err}")
"""


def test_a_full_disk_while_creating_the_store_leaves_nothing_behind(tmp_path, grey):
    """Item 11, one step later: the disk fills up (RLIMIT_FSIZE=0 once the lock is written)
    while the new store is created; the run fails, and leaves no folder that the next run
    would refuse as "something napari-srn did not write"."""
    dest = tmp_path / "out.zarr"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_AFTER_LOCK, str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "File too large" in done.stdout, done
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    run(grey, dest)
    assert status(dest)["status"] == "complete"


def test_a_source_changed_during_the_run_is_never_marked_complete(tmp_path, rng):
    """Item 7, another order: another program writes into the input while it is read (an
    acquisition still running). The mix of two versions is left unfinished, never marked
    complete, and not resumed."""
    image = rng.integers(0, 256, (64, 80), dtype=np.uint8)
    src = tmp_path / "src.zarr"
    z = zarr.create_array(str(src), shape=image.shape, chunks=(32, 40), dtype="uint8")
    z[:] = image

    def rewrite(done, total):
        if done == 1:
            z[:] = 255 - image

    dest = tmp_path / "out.zarr"
    with pytest.raises(ValueError, match="input changed"):
        run(str(src), dest, batch_size=1, progress=rewrite)
    assert status(dest)["status"] == "incomplete"
    assert "ome" not in zarr.open_group(str(dest), mode="r").attrs
    with pytest.raises(FileExistsError, match="different napari-srn result"):
        run(str(src), dest)
    run(str(src), dest, overwrite=True)
    np.testing.assert_array_equal(level0(dest), level0(run(255 - image, tmp_path / "new.zarr")))
