"""The pieces of napari-srn's lock files (a zarr destination's, a training run's).

A lock file holds its owner's pid and host as JSON and is ``flock``-ed while held, so the
kernel lets go of it when its process dies, even by ``kill -9``. Standard library only.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the pid check alone
    fcntl = None  # type: ignore[assignment]

__all__ = ["flock", "owner_gone", "read_owner", "same_file", "write_owner"]


def flock(fd: int) -> bool | None:
    """An exclusive, non-blocking ``flock``: True taken, False held by another, None where
    there is none (Windows, a file system without locks)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK: this file system has no locks
        return None
    return True


def read_owner(fd: int) -> tuple[str, dict | None]:
    """The lock file's text and its owner record (None: empty, garbage or not a lock)."""
    data = os.pread(fd, 4097, 0)
    try:
        owner = json.loads(data) if len(data) <= 4096 else None
    except ValueError:
        owner = None
    valid = (
        isinstance(owner, dict)
        and isinstance(owner.get("pid"), int)
        and isinstance(owner.get("host"), str)
    )
    return data.decode(errors="replace"), owner if valid else None


def write_owner(fd: int, path: Path) -> None:
    """Make this process the lock's owner; on a write error (a full disk) remove the lock
    file, so that no empty lock is left behind, and name it in the error."""
    data = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
    try:
        os.ftruncate(fd, 0)
        if os.pwrite(fd, data, 0) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as err:
        path.unlink(missing_ok=True)
        raise OSError(err.errno, f"cannot write the lock {str(path)!r}: {err.strerror}") from err


def same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def owner_gone(owner: dict, flocked: bool = False) -> bool:
    """Whether a lock file's owner is known to be gone: on this host, when we hold the
    ``flock`` (the kernel let go of its owner's) or its pid is no process."""
    if owner.get("host") != socket.gethostname():
        return False  # another machine's process: cannot tell, so respect it
    if flocked:
        return True
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False
