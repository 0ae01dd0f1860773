"""The progress= argument, in one place (napari_srn._progress.reporter)."""

from __future__ import annotations

from napari_srn import Progress
from napari_srn._progress import reporter


def test_a_callable_gets_done_and_total_and_true_draws_a_bar_on_stderr(capsys):
    seen = []
    with reporter(lambda d, t: seen.append((d, t)), desc="x", unit="tile") as report:
        for done in (1, 2, 3):
            report(Progress(done, 3))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with reporter(True, desc="deblur to zarr", unit="chunk") as report:
        report(Progress(2, 5))
    assert "deblur to zarr" in capsys.readouterr().err
    with reporter(True, desc="one tile", unit="tile", min_total=1) as report:
        report(Progress(1, 1))  # a single tile: no bar
    with reporter(False, desc="quiet", unit="tile") as report:
        report(Progress(1, 9))
    err = capsys.readouterr().err
    assert "one tile" not in err and "quiet" not in err


def test_the_first_step_shows_a_true_rate(capsys):
    """Issue 22, item 29: the bar was created at the first step, so that step's rate was
    measured over microseconds (91180 tile/s); it counts from the start of the work."""
    import re
    import time

    with reporter(True, desc="deblur", unit="tile") as report:
        time.sleep(0.2)  # the first tile's work
        report(Progress(1, 10))
        time.sleep(0.2)  # the second tile's
        report(Progress(2, 10))
    err = capsys.readouterr().err
    rates = re.findall(r"([\d.]+)(tile/s|s/tile)", err)
    assert rates, err
    for value, unit in rates:  # one tile in 0.2 s or more: 5 tile/s at most
        assert (float(value) if unit == "tile/s" else 1 / float(value)) < 10, err
