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
