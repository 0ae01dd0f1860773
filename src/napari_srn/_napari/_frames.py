"""A lazy result as layer data that never computes on the thread that reads it (no napari, no Qt).

napari slices a layer's data on its main thread. Given a dask array, every new frame would be
computed there, freezing the viewer for as long as the network takes. :class:`BackgroundFrames`
answers at once instead: frames already computed come from a small cache; for the others it
returns a placeholder (zeros) and queues them on one background thread, the frame asked for last
first, then its neighbours along the first axis (the next slider steps). When a frame is ready
it calls ``on_ready``, from that thread; the widget then asks napari to redraw the layer, which
reads the frame from the cache.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import numbers
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["BackgroundFrames", "lower_thread_priority"]

Frame = tuple[int, ...]

_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """At exit, let a frame in progress finish before the interpreter (and torch) go away."""
    for frames in list(_LIVE):
        frames.close()
        frames._thread.join(timeout=60)


def lower_thread_priority(nice: int = 10) -> None:
    """Give every thread of this process but the main one (the calling thread, torch's and
    dask's worker threads) a lower CPU priority than napari's main thread, so the viewer stays
    responsive while they compute. Linux only (threads have their own nice value there; raising
    it needs no privilege); elsewhere nothing happens."""
    if not hasattr(os, "setpriority") or not os.path.isdir("/proc/self/task"):
        return
    main = threading.main_thread().native_id
    for entry in os.listdir("/proc/self/task"):
        tid = int(entry)
        if tid == main:
            continue
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))


def _indices(key: Any, n: int) -> list[int]:
    if isinstance(key, numbers.Integral):
        i = int(key)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for an axis of length {n}")
        return [i % n]
    if isinstance(key, slice):
        return list(range(*key.indices(n)))
    return [int(i) % n for i in np.asarray(key).ravel()]


class BackgroundFrames:
    """Array-like view of a lazy result whose frames are computed in the background.

    Parameters
    ----------
    lazy : dask.array.Array
        The lazy result; a frame is its trailing ``frame_ndim`` axes.
    frame_ndim : int
        2 (Y, X), or 3 for RGB(A) (Y, X, C).
    on_ready : callable, optional
        Called with the frame's index (a tuple) from the background thread when it is ready.
    on_error : callable, optional
        Called with the frame's index and the exception when computing it failed.
    cache_frames : int
        Computed frames kept (least recently used dropped first).
    prefetch : int
        Neighbours along the first axis computed after the frame asked for (0: none).
    """

    def __init__(
        self,
        lazy: Any,
        *,
        frame_ndim: int,
        on_ready: Callable[[Frame], object] | None = None,
        on_error: Callable[[Frame, BaseException], object] | None = None,
        cache_frames: int = 32,
        prefetch: int = 1,
    ) -> None:
        self.lazy = lazy
        self.shape = tuple(lazy.shape)
        self.dtype = np.dtype(lazy.dtype)
        self.ndim = len(self.shape)
        self._lead = self.ndim - frame_ndim
        self.on_ready, self.on_error = on_ready, on_error
        self._cache_frames, self._prefetch = max(1, cache_frames), prefetch
        self._cache: OrderedDict[Frame, np.ndarray] = OrderedDict()
        self._failed: dict[Frame, BaseException] = {}
        self._wanted: list[Frame] = []  # a stack: the frame asked for last is computed first
        self._later: list[Frame] = []  # neighbours, computed when nothing is wanted
        self._cond = threading.Condition()
        self._closed = False
        self.computing: Frame | None = None
        self._thread = threading.Thread(target=self._loop, name="napari-srn frames", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    # ----------------------------------------------------------------- the array interface

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):  # everything, computed here: an explicit ask
        out = np.asarray(self.lazy)
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = self._expand(key)
        lead, rest = key[: self._lead], key[self._lead :]
        per_axis = [_indices(k, n) for k, n in zip(lead, self.shape[: self._lead], strict=True)]
        kept = [not isinstance(k, numbers.Integral) for k in lead]
        frame_shape = np.empty(self.shape[self._lead :], dtype=bool)[rest].shape
        out_shape = tuple(len(ix) for ix, k in zip(per_axis, kept, strict=True) if k)
        out = np.zeros(out_shape + frame_shape, self.dtype)
        missing = []
        with self._cond:
            for pos in itertools.product(*(range(len(ix)) for ix in per_axis)):
                frame = tuple(ix[p] for ix, p in zip(per_axis, pos, strict=True))
                data = self._cache.get(frame)
                if data is None:
                    missing.append(frame)
                    continue
                self._cache.move_to_end(frame)
                at = tuple(p for p, k in zip(pos, kept, strict=True) if k)
                out[at] = data[rest]
            if missing:
                self._ask(missing)
        return out

    def _expand(self, key: Any) -> tuple:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        return key + (slice(None),) * (self.ndim - len(key))

    # ----------------------------------------------------------------- state

    def ready(self, frame: Frame) -> bool:
        """Whether ``frame`` is computed (and cached)."""
        with self._cond:
            return tuple(frame) in self._cache

    def pending(self) -> int:
        """Frames waiting to be computed (the one in progress included)."""
        with self._cond:
            return len(self._wanted) + (self.computing is not None)

    def close(self) -> None:
        """Stop the background thread after the frame in progress; nothing more is computed."""
        with self._cond:
            self._closed = True
            self._wanted.clear()
            self._later.clear()
            self._cond.notify_all()

    # ----------------------------------------------------------------- the background thread

    def _ask(self, frames: list[Frame]) -> None:  # with the lock held
        fresh = [f for f in frames if f not in self._failed and f != self.computing]
        for f in reversed(fresh):  # the first of a request ends on top of the stack
            with contextlib.suppress(ValueError):
                self._wanted.remove(f)
            self._wanted.append(f)
        if self._prefetch and self._lead and fresh:  # the neighbours of the latest ask only
            first, self._later = fresh[0], []
            for step in range(1, self._prefetch + 1):
                for d in (step, -step):
                    near = (first[0] + d, *first[1:])
                    if 0 <= near[0] < self.shape[0] and near not in self._cache:
                        self._later.append(near)
        self._cond.notify_all()

    def _next(self) -> Frame | None:  # with the lock held
        while self._wanted or self._later:
            frame = self._wanted.pop() if self._wanted else self._later.pop(0)
            if frame not in self._cache and frame not in self._failed:
                return frame
        return None

    def _loop(self) -> None:
        lower_thread_priority()
        while True:
            with self._cond:
                frame = self._next()
                while frame is None and not self._closed:
                    self._cond.wait()
                    frame = self._next()
                if self._closed or frame is None:  # None only when closed
                    return
                self.computing = frame
            try:
                lower_thread_priority()  # torch's and dask's threads exist by now
                # in this thread alone: torch's own threads use the cores; dask's pool would
                # only add threads competing with the viewer
                data = np.asarray(self.lazy[frame].compute(scheduler="synchronous"))
            except BaseException as err:  # reported, and never tried again
                with self._cond:
                    self._failed[frame] = err
                    self.computing = None
                if self.on_error is not None:
                    self.on_error(frame, err)
                continue
            with self._cond:
                self._cache[frame] = data
                while len(self._cache) > self._cache_frames:
                    self._cache.popitem(last=False)
                self.computing = None
            if self.on_ready is not None:
                self.on_ready(frame)
