"""BackgroundFrames: a lazy result as layer data that is never computed on the reading thread."""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np
import pytest

from napari_srn._napari._frames import BackgroundFrames


def slow_stack(n=5, h=6, w=7, delay=0.05, log=None):
    """A lazy (T, Y, X) stack whose frame t is full of t, each taking ``delay`` s."""

    def frame(t):
        time.sleep(delay)
        if log is not None:
            log.append(t)
        return np.full((1, h, w), t, np.uint16)

    parts = [da.from_delayed(dask.delayed(frame)(t), (1, h, w), np.uint16) for t in range(n)]
    return da.concatenate(parts)


def wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_a_frame_not_ready_is_a_placeholder_at_once_and_computed_in_the_background():
    ready = []
    frames = BackgroundFrames(slow_stack(delay=0.3), frame_ndim=2, on_ready=ready.append)
    start = time.perf_counter()
    first = frames[2]
    assert time.perf_counter() - start < 0.1  # answered at once, not after the 0.3 s compute
    assert first.shape == (6, 7) and first.dtype == np.uint16 and not first.any()
    wait(lambda: (2,) in ready)
    assert ready[0] == (2,)
    np.testing.assert_array_equal(frames[2], np.full((6, 7), 2))
    np.testing.assert_array_equal(frames[2, 1:3, ::2], np.full((2, 4), 2))
    frames.close()


def test_the_latest_ask_goes_first_then_its_neighbours():
    log = []
    frames = BackgroundFrames(slow_stack(n=8, delay=0.15, log=log), frame_ndim=2, prefetch=1)
    frames[0]  # starts at once
    time.sleep(0.05)
    frames[3]
    frames[6]  # the slider moved on: 6 before 3
    wait(lambda: frames.ready((6,)) and frames.ready((3,)))
    wait(lambda: frames.ready((7,)) and frames.ready((5,)))  # 6's neighbours, after it
    assert log.index(6) < log.index(3) < log.index(7)
    frames.close()


def test_indexing_matches_numpy_once_computed():
    lazy = slow_stack(n=3, delay=0)
    frames = BackgroundFrames(lazy, frame_ndim=2, prefetch=0)
    frames[:]  # asks for every frame
    wait(lambda: all(frames.ready((t,)) for t in range(3)))
    full = lazy.compute()
    for key in (1, (slice(None),), (Ellipsis, 2), (slice(0, 3, 2), 4), (np.int64(2), slice(1, 3))):
        np.testing.assert_array_equal(frames[key], full[key])
    np.testing.assert_array_equal(np.asarray(frames), full)
    assert frames.shape == full.shape and frames.ndim == 3 and len(frames) == 3
    with pytest.raises(IndexError):
        frames[5]
    frames.close()


def test_a_failing_frame_is_reported_once_and_not_retried():
    calls, errors = [], []

    def bad(t):
        calls.append(t)
        raise MemoryError("simulated")

    lazy = da.from_delayed(dask.delayed(bad)(0), (1, 4, 4), np.float32)
    frames = BackgroundFrames(lazy, frame_ndim=2, on_error=lambda f, e: errors.append((f, e)))
    frames[0]
    wait(lambda: errors)
    frames[0]
    time.sleep(0.1)
    assert len(calls) == 1 and isinstance(errors[0][1], MemoryError)
    assert not frames[0].any()
    frames.close()


def test_close_stops_the_background_work():
    log = []
    frames = BackgroundFrames(slow_stack(n=6, delay=0.1, log=log), frame_ndim=2, prefetch=0)
    frames[:]
    time.sleep(0.05)
    frames.close()
    time.sleep(0.4)
    assert len(log) <= 1
    frames._thread.join(timeout=2)
    assert not frames._thread.is_alive()
