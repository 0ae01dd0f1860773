"""The ``progress=`` argument of deblur and deblur_to_zarr, in one place: False, True (a tqdm
bar on stderr) or a callable ``(done, total)``; and :class:`Progress`, the step they report
(torch-free, so that the OME-Zarr writer in ``io/`` needs no torch to report it)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Progress", "progress_bar", "reporter"]


@dataclass(frozen=True)
class Progress:
    """One step of :func:`napari_srn.iter_deblur`: ``done`` of ``total`` model calls (or, for
    :func:`napari_srn.deblur_to_zarr`, chunks) finished.

    Parameters
    ----------
    done : int
        Steps finished so far.
    total : int
        Steps in all (it can grow when a tile is retried smaller after running out of GPU
        memory).
    """

    done: int
    total: int


def progress_bar(total: int, *, desc: str, unit: str, initial: int = 0, **kwargs: Any) -> Any:
    """The project's one progress bar: tqdm on stderr (``tqdm.auto``), sized to the terminal.

    Parameters
    ----------
    total : int
        Steps in all.
    desc : str
        The bar's label, e.g. ``"deblur"``.
    unit : str
        What one step is, e.g. ``"tile"``.
    initial : int, optional
        Steps already done (a resumed run).
    **kwargs
        Passed on to tqdm (``leave``, ``disable``).

    Returns
    -------
    tqdm.tqdm
        The bar; close it when done.
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, **kwargs)


@contextlib.contextmanager
def reporter(
    progress: bool | Callable[[int, int], object],
    *,
    desc: str,
    unit: str,
    min_total: int = 0,
    leave: bool = True,
) -> Iterator[Callable[[Any], None]]:
    """A function of a :class:`~napari_srn.Progress` that calls ``progress(done, total)``, or
    draws a tqdm bar (only once the total exceeds ``min_total``), or does nothing; the bar is
    closed when the block ends.

    The bar appears at the first step it is shown, and counts its rate from there: the steps
    already done then (one tile, or a resumed run's chunks) took a time the bar did not see,
    and counting them over the microseconds since it appeared showed rates like 90,000
    tiles/s."""
    bar = None

    def report(step: Any) -> None:
        nonlocal bar
        if callable(progress):
            progress(step.done, step.total)
        elif progress and step.total > min_total:
            if bar is None:
                bar = progress_bar(step.total, desc=desc, unit=unit, initial=step.done, leave=leave)
            bar.total, bar.n = step.total, step.done
            bar.refresh()

    try:
        yield report
    finally:
        if bar is not None:
            bar.close()
