"""One writer per destination: the lock file ``<dest>.lock`` beside an OME-Zarr store.

:class:`WriterLock` is taken before a store is created, resumed or replaced, and released when
the run ends; :class:`DestinationLocked` says that another live process holds it. The lock
file's pieces (``flock``, the owner record) are shared with a training run's lock
(:mod:`napari_srn._lockfile`).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..._lockfile import flock, owner_gone, read_owner, same_file, write_owner

__all__ = ["DestinationLocked", "WriterLock"]


class DestinationLocked(FileExistsError):
    """Another live process is writing the same destination."""


class WriterLock:
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
        # new, empty (its writer died before writing), or stale: ours now
        write_owner(fd, self.path)
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
