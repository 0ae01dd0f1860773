"""The run's progress plot: readable step labels, the loss named as configured."""

from PIL import Image

from napari_srn.training.plot import LOSS_NAMES, _fmt, _ticks, plot_progress


def test_step_ticks_of_a_long_run_are_distinct_and_readable():
    labels = [_fmt(t) for t in _ticks(0, 20_000)]
    assert labels == ["0", "5,000", "10,000", "15,000", "20,000"]
    assert len(set(labels)) == len(labels)
    assert _fmt(0.005) == "5e-03" and _fmt(1.25) == "1.25"


def test_every_loss_has_a_name_and_the_plot_is_written(tmp_path):
    assert set(LOSS_NAMES) == {"mse", "l1", "l1+fft"}
    path = plot_progress(
        tmp_path / "p.png", [1, 2, 3], [1.2, 1.1, 1.0], [2], [22.0], [21.0], loss="l1+fft"
    )
    with Image.open(path) as image:
        assert image.size == (1040, 360)
