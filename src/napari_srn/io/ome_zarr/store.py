"""A store on disk: napari-srn's record in it, opening, resuming or refusing it, and the swap
of a complete replacement for an old store.

Every store napari-srn writes carries a ``napari_srn`` attribute (:data:`STATUS_KEY`) with its
status and its run's fingerprint; an unfinished one also keeps that record in its work folder
(:data:`RUN_RECORD`). :func:`open_dest` decides where a run writes; :func:`swap` replaces an old
store by a complete new one, and :func:`recover_swap` finishes or undoes a swap that was cut
off. Nothing that napari-srn did not write is ever deleted, renamed or truncated.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import zarr

__all__ = [
    "RETIRED",
    "RUN_RECORD",
    "STATUS_KEY",
    "WORK",
    "open_dest",
    "open_group",
    "recover_swap",
    "swap",
]

STATUS_KEY = "napari_srn"
WORK = ".napari-srn-work"
#: An unfinished store's own record of its run (its first ``napari_srn`` attribute), kept in
#: the work folder: the store stays known as napari-srn's if its group metadata is damaged.
RUN_RECORD = f"{WORK}/run.json"
#: Written into a store about to be replaced: the replacement's fingerprint.
RETIRED = ".napari-srn-retired"


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


def swap(new: Path, dest: Path, fingerprint: str) -> None:
    """Replace ``dest`` by the complete store ``new`` (whose run is ``fingerprint``): two
    renames, then the old one deleted. The old store is stamped first (:data:`RETIRED`), so
    that, cut off between them, :func:`recover_swap` knows it for napari-srn's own."""
    old = _retired(dest)
    if os.path.lexists(old):
        raise FileExistsError(_in_the_way(old, dest))
    (dest / RETIRED).write_text(fingerprint)
    os.replace(dest, old)
    os.replace(new, dest)
    _remove_store(old)


def recover_swap(dest: Path) -> None:
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


def open_dest(dest: Path, fingerprint: str, overwrite: bool) -> Path:
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


def open_group(dest: Path, info: dict) -> tuple[zarr.Group, bool]:
    """Open (resume) or create the output group of the run ``info`` describes; return
    (group, already_complete)."""
    import zarr

    if not os.path.lexists(dest):
        return _create_group(dest, info), False
    try:  # open_dest chose it: this same run, to resume
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
