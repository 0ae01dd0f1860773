"""The Deblur (SRN) widget in a real napari viewer (pytest-qt, napari's ``make_napari_viewer``).

Needs a display: ``bash scripts/test.sh`` runs pytest under Xvfb. Tiny random models keep every
run well under a second; the decisions themselves are tested without napari in
_napari/test_logic.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import dask
import dask.array as da
import numpy as np
import pytest
import torch
import zarr

if os.environ.get("CI"):  # the test command installs the napari extras: missing = broken install
    import napari  # noqa: F401
    import pytestqt  # noqa: F401
else:
    pytest.importorskip("napari")
    pytest.importorskip("pytestqt")

from napari.layers import Image
from napari.utils.notifications import notification_manager

from napari_srn import SRN, ModelCard, deblur, model_card, save_model
from napari_srn._napari import _logic
from napari_srn._napari.sample import SAMPLE_NAME
from napari_srn._napari.widget import DeblurWidget
from napari_srn.inference.eager import Runner
from napari_srn.inference.precision import Precision
from napari_srn.model import registry

from ..helpers import ROOT, CountingSRN, tiny_srn

PLUGIN, WIDGET = "napari-srn", "Deblur (SRN)"
SCALER = "ignore:Call to deprecated class Scaler:DeprecationWarning"  # ome-zarr's, on import


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(_logic.SETTINGS_ENV, str(tmp_path / "settings" / "widget.json"))


@pytest.fixture
def viewer_and_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)  # through the manifest
    assert isinstance(widget, DeblurWidget)
    return viewer, widget


def run_and_wait(qtbot, widget, layer=None, timeout=60_000):
    widget.run(layer)
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)
    return widget.last_outcome


class Notes:
    """Notifications shown since creation."""

    def __init__(self):
        self.start = len(notification_manager.records)

    @property
    def messages(self) -> list[str]:
        return [str(n.message) for n in notification_manager.records[self.start :]]


# --------------------------------------------------------------------------- compute now


def test_widget_adds_the_result_layer_with_the_source_transform(qtbot, viewer_and_widget, rng):
    viewer, widget = viewer_and_widget
    data = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    src = viewer.add_image(data, name="photo", scale=(0.5, 2.0), translate=(10, -3), rgb=True)
    assert widget.layer.value is src
    assert "Compute now" in widget.plan.value and "RGB uint8 40x56x3" in widget.plan.value
    net = widget.model_object = tiny_srn()
    assert run_and_wait(qtbot, widget) == "added"
    result = viewer.layers["photo (deblurred)"]
    assert result is viewer.layers[-1] and isinstance(result, Image) and result.rgb
    np.testing.assert_array_equal(result.data, deblur(data, model=net, channel_axis=-1))
    np.testing.assert_array_equal(result.scale, src.scale)
    np.testing.assert_array_equal(result.translate, src.translate)
    meta = result.metadata["napari_srn"]
    assert (meta["mode"], meta["source_layer"], meta["provisional"]) == (
        "compute now",
        "photo",
        False,
    )
    from napari_srn.inference.precision import resolve_precision

    assert meta["precision"] == resolve_precision("auto", torch.device("cpu")).name
    assert widget.progress.value == widget.progress.max > 0  # every tile reported
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_layouts_and_dtypes(qtbot, viewer_and_widget, rng):
    viewer, widget = viewer_and_widget
    net = widget.model_object = tiny_srn()
    widget.mode.value = "compute now"
    cases = {
        "gray u8": (rng.integers(0, 255, (32, 48), dtype=np.uint8), False),
        "gray u16": (rng.integers(100, 4000, (32, 48), dtype=np.uint16), False),
        "gray f32": (rng.random((32, 48), dtype=np.float32), False),
        "rgba u16": (rng.integers(0, 65535, (32, 32, 4), dtype=np.uint16), True),
        "t rgb u8": (rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8), True),
        "tz gray f64": (rng.random((2, 2, 32, 32)) * 7.0, False),
    }
    for name, (data, rgb) in cases.items():
        widget.layer.value = viewer.add_image(data, name=name, rgb=rgb)
        assert run_and_wait(qtbot, widget) == "added", name
        out = viewer.layers[f"{name} (deblurred)"].data
        assert isinstance(out, np.ndarray) and out.dtype == data.dtype and out.shape == data.shape
        expected = deblur(data, model=net, channel_axis=-1 if rgb else None)
        np.testing.assert_array_equal(out, expected, err_msg=name)


def test_a_weights_file_is_loaded_and_recorded(qtbot, viewer_and_widget, rng, tmp_path):
    viewer, widget = viewer_and_widget
    path = tmp_path / "tiny.safetensors"
    sha = save_model(
        tiny_srn(1, seed=3), path, ModelCard(name="tiny-gray", description="for tests")
    )
    data = rng.integers(0, 1000, (48, 48), dtype=np.uint16)
    viewer.add_image(data, name="cells")
    widget.model.value = _logic.WEIGHTS_FILE
    assert not widget.weights.native.isHidden()
    widget.weights.value = path
    assert widget.card.value == "tiny-gray: for tests"
    assert run_and_wait(qtbot, widget) == "added"
    result = viewer.layers["cells (deblurred)"]
    np.testing.assert_array_equal(result.data, deblur(data, model=path))
    assert result.metadata["napari_srn"]["model_sha256"] == sha


def test_the_model_label_shows_the_card_and_flags_provisional_weights(viewer_and_widget, tmp_path):
    _, widget = viewer_and_widget
    assert widget.model.value == "default" and widget.weights.native.isHidden()
    card = model_card("default")
    assert widget.card.value.startswith(card.name) and "PROVISIONAL" not in widget.card.value
    assert card.description in widget.card.tooltip
    demo = tmp_path / "demo.safetensors"
    save_model(
        tiny_srn(), demo, ModelCard(name="demo", description="an identity", provisional=True)
    )
    widget.model.value = _logic.WEIGHTS_FILE
    widget.weights.value = demo
    assert "PROVISIONAL" in widget.card.value and "an identity" in widget.card.tooltip


# --------------------------------------------------------------------------- cancel


class SlowCountingSRN(CountingSRN):
    """10 ms per level call, so that a run lasts seconds and Cancel lands mid-way."""

    def level(self, x, prev, state=None):
        time.sleep(0.01)
        return super().level(x, prev, state)


def test_cancel_stops_between_tiles_and_adds_nothing(qtbot, viewer_and_widget, rng):
    viewer, widget = viewer_and_widget
    net = widget.model_object = SlowCountingSRN(tiny_srn(1).config).eval()
    viewer.add_image(rng.random((256, 256), dtype=np.float32), name="big")
    widget.tile_size.value = 32  # 64 tiles per level
    notes = Notes()
    widget.run()
    assert widget.running and widget.cancel_button.enabled
    qtbot.waitUntil(lambda: widget.progress.value > 0, timeout=30_000)
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    assert widget.last_outcome == "cancelled"
    assert [layer.name for layer in viewer.layers] == ["big"]
    assert any("cancelled; no layer was added" in m for m in notes.messages)
    calls = len(net.seen)
    qtbot.wait(200)
    assert len(net.seen) == calls  # stopped, not still running in the background
    assert 0 < calls < widget.progress.max // 2
    # the next run goes through
    widget.tile_size.value = 0
    widget.model_object = tiny_srn(1)
    assert run_and_wait(qtbot, widget) == "added"


def test_closing_the_viewer_mid_run_stops_the_job(qtbot, make_napari_viewer, rng):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    net = widget.model_object = SlowCountingSRN(tiny_srn(1).config).eval()
    viewer.add_image(rng.random((256, 256), dtype=np.float32), name="big")
    widget.tile_size.value = 32
    widget.run()
    qtbot.waitUntil(lambda: len(net.seen) > 0, timeout=30_000)
    viewer.close()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    calls = len(net.seen)
    qtbot.wait(200)
    tiles = Runner(net, Precision.reference(), 32, net.halo).n_tiles((256, 256))
    assert len(net.seen) == calls < tiles


def test_closing_the_dock_mid_run_stops_the_job_and_adds_nothing(qtbot, viewer_and_widget, rng):
    """The dock's x (napari's remove_dock_widget) takes the widget out without destroying it."""
    viewer, widget = viewer_and_widget
    net = widget.model_object = SlowCountingSRN(tiny_srn(1).config).eval()
    viewer.add_image(rng.random((256, 256), dtype=np.float32), name="big")
    widget.tile_size.value = 32
    widget.run()
    qtbot.waitUntil(lambda: len(net.seen) > 0, timeout=30_000)
    viewer.window.remove_dock_widget(widget.native)
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    calls = len(net.seen)
    qtbot.wait(300)
    assert len(net.seen) == calls  # stopped
    assert [layer.name for layer in viewer.layers] == ["big"]  # and nothing added


def wait_for_frame(qtbot, layer, frame, timeout=30_000):
    """A lazy result computes a viewed frame in the background; wait until it is shown."""
    qtbot.waitUntil(
        lambda: layer.data.ready(frame) if not layer.multiscale else True, timeout=timeout
    )
    qtbot.wait(50)  # the redraw, queued to the main thread


# --------------------------------------------------------------------------- lazy


def test_lazy_mode_computes_only_the_viewed_frame(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    values = (0.1, 0.3, 0.6, 0.9)
    stack = np.stack([np.full((48, 48), v, np.float32) for v in values])
    viewer.add_image(stack, name="stack", contrast_limits=(0, 1))
    net = widget.model_object = CountingSRN(tiny_srn(1).config).eval()
    widget.prefetch = 0  # no neighbours computed ahead: count the viewed frames only
    assert widget.mode.value == "auto" and "Lazy" in widget.plan.value
    assert run_and_wait(qtbot, widget) == "added"
    result = viewer.layers["stack (deblurred)"]
    assert isinstance(result.data.lazy, da.Array)  # computed in the background when viewed
    assert result.metadata["napari_srn"]["mode"] == "lazy"

    def frames_seen() -> set[float]:
        return {round(v, 3) for v in net.seen}

    step = viewer.dims.current_step[0]
    wait_for_frame(qtbot, result, (step,))
    assert frames_seen() == {values[step]}  # the frame on screen, nothing else
    per_frame = len(net.seen)
    other = (step + 2) % 4
    viewer.dims.set_current_step(0, other)
    wait_for_frame(qtbot, result, (other,))
    assert frames_seen() == {values[step], values[other]}
    assert len(net.seen) == 2 * per_frame
    expected = deblur(stack[other], model=net)
    np.testing.assert_allclose(np.asarray(result.data[other]), expected, atol=1e-6)
    assert result.get_value((other, 5, 7)) == pytest.approx(expected[5, 7], abs=1e-6)


def test_two_lazy_results_show_their_own_data(qtbot, viewer_and_widget):
    # napari caches dask chunks by key; two lazy results must never share keys in that cache
    viewer, widget = viewer_and_widget
    net = widget.model_object = tiny_srn(1)
    stacks = {
        "a": np.full((3, 32, 32), 0.2, np.float32),
        "b": np.full((3, 32, 32), 0.7, np.float32),
    }
    for name, stack in stacks.items():
        widget.layer.value = viewer.add_image(stack, name=name, contrast_limits=(0, 1))
        assert run_and_wait(qtbot, widget) == "added"
    step = viewer.dims.current_step[0]
    for name, stack in stacks.items():
        wait_for_frame(qtbot, viewer.layers[f"{name} (deblurred)"], (step,))
        shown = viewer.layers[f"{name} (deblurred)"].get_value((step, 5, 7))
        assert shown == pytest.approx(deblur(stack[step], model=net)[5, 7], abs=1e-6), name


@pytest.mark.parametrize("backing", ["dask", "zarr"])
def test_dask_and_zarr_layers_are_lazy_with_the_contrast_limits_as_range(
    qtbot, viewer_and_widget, rng, backing, tmp_path
):
    viewer, widget = viewer_and_widget
    data = rng.integers(200, 3000, (3, 32, 32), dtype=np.uint16)
    if backing == "dask":
        layer_data = da.from_array(data, chunks=(1, 32, 32))
    else:
        layer_data = zarr.open_array(
            tmp_path / "in.zarr", mode="w", shape=data.shape, chunks=(1, 32, 32), dtype=data.dtype
        )
        layer_data[:] = data
    viewer.add_image(layer_data, name="stack", contrast_limits=(100, 3500))
    net = widget.model_object = tiny_srn(1)
    widget.intensity.value = "contrast limits"
    assert "Intensities 100..3500" in widget.plan.value
    assert run_and_wait(qtbot, widget) == "added"
    result = viewer.layers["stack (deblurred)"]
    assert isinstance(result.data.lazy, da.Array) and result.data.dtype == np.uint16
    assert result.metadata["napari_srn"]["in_range"] == [100.0, 3500.0]
    assert list(result.contrast_limits) == [100, 3500]
    with dask.config.set(scheduler="synchronous"):
        frame = result.data.lazy[1].compute()
    np.testing.assert_array_equal(frame, deblur(data[1], model=net, in_range=(100, 3500)))


def test_multiscale_lazily_each_level_or_now_the_full_resolution(qtbot, viewer_and_widget, rng):
    viewer, widget = viewer_and_widget
    full = rng.integers(0, 1000, (64, 64), dtype=np.uint16)
    pyramid = [full, full[::2, ::2]]
    viewer.add_image(pyramid, name="big", multiscale=True, contrast_limits=(0, 1000))
    net = widget.model_object = tiny_srn(1)
    widget.intensity.value = "contrast limits"
    assert "each level is deblurred at its own resolution" in widget.plan.value
    assert run_and_wait(qtbot, widget) == "added"
    lazy = viewer.layers["big (deblurred)"]
    assert lazy.multiscale and len(lazy.data) == 2
    for level, out in zip(pyramid, lazy.data, strict=True):
        assert isinstance(out.lazy, da.Array)
        with dask.config.set(scheduler="synchronous"):
            np.testing.assert_array_equal(
                out.lazy.compute(), deblur(level, model=net, in_range=(0, 1000))
            )

    widget.layer.value = viewer.layers["big"]
    widget.mode.value, widget.intensity.value = "compute now", "auto"
    assert "full-resolution level only" in widget.plan.value
    assert run_and_wait(qtbot, widget) == "added"
    now = viewer.layers[-1]
    assert not now.multiscale and now.data.shape == (64, 64)
    np.testing.assert_array_equal(now.data, deblur(full, model=net))


# --------------------------------------------------------------------------- OME-Zarr


@pytest.mark.filterwarnings(SCALER)
def test_save_to_ome_zarr_then_show_it_from_disk(qtbot, viewer_and_widget, rng, tmp_path):
    viewer, widget = viewer_and_widget
    data = rng.integers(0, 255, (2, 32, 48, 3), dtype=np.uint8)
    viewer.add_image(data, name="movie", rgb=True)
    net = widget.model_object = tiny_srn()
    widget.save.value = True
    assert not widget.save_path.native.isHidden()
    dest = tmp_path / "movie_deblurred.zarr"
    widget.save_path.value = dest
    assert "OME-Zarr" in widget.plan.value
    assert run_and_wait(qtbot, widget) == "added"
    result = viewer.layers["movie (deblurred)"]
    assert result.metadata["napari_srn"]["saved_to"] == str(dest)
    assert isinstance(result.data, da.Array) and result.data.shape == data.shape
    np.testing.assert_array_equal(np.asarray(result.data), deblur(data, model=net, channel_axis=-1))
    attrs = zarr.open_group(dest, mode="r").attrs.asdict()
    assert attrs["napari_srn"]["status"] == "complete"
    # a second run to the same store is refused with a notification, not a traceback
    notes = Notes()
    assert run_and_wait(qtbot, widget, viewer.layers["movie (deblurred)"]) == "failed"
    assert any("Deblur (SRN) failed" in m for m in notes.messages)


@pytest.mark.filterwarnings(SCALER)
def test_an_ome_zarr_pyramid_opened_with_napari_ome_zarr(qtbot, viewer_and_widget, rng, tmp_path):
    pytest.importorskip("napari_ome_zarr")
    from ome_zarr.writer import write_image

    viewer, widget = viewer_and_widget
    data = rng.integers(0, 4000, (2, 64, 64), dtype=np.uint16)
    write_image(
        data, zarr.open_group(tmp_path / "in.zarr", mode="w"), axes="tyx", scale_factors=[2]
    )
    (layer,) = viewer.open(tmp_path / "in.zarr", plugin="napari-ome-zarr")
    assert layer.multiscale and all(isinstance(level, da.Array) for level in layer.data)
    layer.contrast_limits = (0, 4000)
    widget.intensity.value = "contrast limits"
    net = widget.model_object = tiny_srn(1)
    assert widget.layer.value is layer and "multiscale (2 levels)" in widget.plan.value
    assert run_and_wait(qtbot, widget) == "added"
    result = viewer.layers[-1]
    assert result.multiscale and [d.shape for d in result.data] == [(2, 64, 64), (2, 32, 32)]
    assert tuple(result.axis_labels) == ("t", "y", "x")
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_array_equal(
            result.data[0].lazy[1].compute(), deblur(data[1], model=net, in_range=(0, 4000))
        )
    # saved: the full-resolution level, with the layer's axis names, readable by napari-ome-zarr
    widget.layer.value = layer
    widget.save.value, widget.save_path.value = True, tmp_path / "out.zarr"
    assert run_and_wait(qtbot, widget) == "added"
    (reopened,) = viewer.open(tmp_path / "out.zarr", plugin="napari-ome-zarr")
    saved = reopened.data[0] if reopened.multiscale else reopened.data
    np.testing.assert_array_equal(np.asarray(saved), deblur(data, model=net, in_range=(0, 4000)))


# ------------------------------------------------------------------- errors, sample, settings


@pytest.mark.parametrize("kind", ["labels", "points"])
def test_labels_and_points_layers_are_refused(qtbot, viewer_and_widget, kind):
    viewer, widget = viewer_and_widget
    if kind == "labels":
        layer = viewer.add_labels(np.zeros((32, 32), np.int32), name="cells")
    else:
        layer = viewer.add_points(np.zeros((3, 2)), name="spots")
    assert widget.layer.choices == ()  # the chooser offers image layers only
    notes = Notes()
    widget.run(layer)
    assert not widget.running and len(viewer.layers) == 1
    assert notes.messages and f"a {kind.capitalize()} layer" in notes.messages[-1]
    assert "works on Image layers" in notes.messages[-1]


def test_errors_become_notifications(qtbot, viewer_and_widget, rng, tmp_path):
    viewer, widget = viewer_and_widget
    viewer.add_image(rng.random((32, 32), dtype=np.float32), name="img")
    widget.model.value = _logic.WEIGHTS_FILE
    widget.weights.value = tmp_path / "missing.safetensors"
    assert widget.card.value.startswith("Cannot read the model")
    notes = Notes()
    assert run_and_wait(qtbot, widget) == "failed"
    assert any("failed" in m and "does not exist" in m for m in notes.messages)
    assert len(viewer.layers) == 1
    widget.model.value = "default"
    notes = Notes()
    viewer.layers.clear()
    widget.run()
    assert notes.messages[-1] == "Deblur (SRN): open or choose an image layer first"


class FailsWhenViewed(CountingSRN):
    def level(self, x, prev, state=None):
        raise MemoryError("simulated: out of memory while computing the viewed frame")


def test_a_lazy_result_that_fails_on_first_view_is_not_left_behind(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    viewer.add_image(np.zeros((3, 32, 32), np.float32), name="stack")
    widget.model_object = FailsWhenViewed(tiny_srn(1).config).eval()
    notes = Notes()
    run_and_wait(qtbot, widget)  # the layer comes at once; its first frame fails in the background
    qtbot.waitUntil(lambda: [layer.name for layer in viewer.layers] == ["stack"], timeout=30_000)
    qtbot.waitUntil(lambda: bool(notes.messages), timeout=5_000)
    assert "could not compute the result: simulated: out of memory" in notes.messages[-1]


def test_the_manifest_contributes_the_widget_and_the_sample_only():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    contributions = manifest.contributions
    assert [(w.display_name, w.command) for w in contributions.widgets or ()] == [
        (WIDGET, "napari-srn.deblur_widget")
    ]
    commands = {c.id: c.python_name for c in contributions.commands or ()}
    assert commands["napari-srn.deblur_widget"] == "napari_srn._napari.widget:DeblurWidget"
    assert [s.key for s in contributions.sample_data or ()] == ["blurred_photo"]
    # napari and napari-ome-zarr already read and write images and OME-Zarr
    assert not (contributions.readers or contributions.writers)


def test_sample_data_loads_and_is_offered(viewer_and_widget):
    viewer, widget = viewer_and_widget
    (layer,) = viewer.open_sample(PLUGIN, "blurred_photo")
    assert layer.name == SAMPLE_NAME and layer.rgb and layer.data.shape == (512, 512, 3)
    assert widget.layer.value is layer
    assert "RGB uint8 512x512x3" in widget.plan.value


def test_settings_are_remembered(qtbot, viewer_and_widget, rng):
    viewer, widget = viewer_and_widget
    viewer.add_image(rng.random((32, 32), dtype=np.float32), name="img")
    widget.model_object = tiny_srn()
    widget.device.value, widget.tile_size.value, widget.mode.value = "cpu", 64, "lazy"
    assert run_and_wait(qtbot, widget) == "added"
    saved = json.loads(_logic.settings_path().read_text())
    assert (saved["device"], saved["tile_size"]) == ("cpu", 64)
    again = DeblurWidget(viewer)
    viewer.window.add_dock_widget(again, name="again")
    assert (again.device.value, again.tile_size.value) == ("cpu", 64)
    assert again.model.value == "default"
    # the mode is not remembered (issue 22, item 28): a single image is computed now again
    again.layer.value = viewer.layers["img"]
    assert again.mode.value == "auto" and "Compute now" in again.plan.value


def test_a_tile_the_model_cannot_take_is_flagged_before_the_run(qtbot, viewer_and_widget, rng):
    # issue 22, item 27: tile 100 was not flagged, and the run failed in the library's words
    viewer, widget = viewer_and_widget
    viewer.add_image(rng.random((32, 32), dtype=np.float32), name="img")
    widget.tile_size.value = 100
    assert not widget.run_button.enabled
    line = widget.plan.value
    assert "tile 100" in line and "96 or 128" in line and "0 (automatic)" in line
    assert "None" not in line and "tile_size" not in line
    notes = Notes()
    widget.run()
    assert widget.worker is None and "img (deblurred)" not in viewer.layers
    assert "tile 100" in notes.messages[-1] and "None" not in notes.messages[-1]
    widget.model_object = tiny_srn(scales=2)  # a network of divisor 8 takes tile 96, not 100
    widget.tile_size.value = 96
    assert widget.run_button.enabled
    assert run_and_wait(qtbot, widget) == "added"


class _HeldSRN(SRN):
    """A network whose first call waits until the test lets it go."""

    def __init__(self, config):
        super().__init__(config)
        self.go = threading.Event()

    def level(self, x, prev, state=None):
        self.go.wait(timeout=30)
        return super().level(x, prev, state)


def test_a_single_image_shown_lazily_says_it_is_computing_without_a_frame_number(
    qtbot, viewer_and_widget, rng
):
    # issue 22, item 28: the status line read "Computing frame  of 'big (deblurred)'"
    viewer, widget = viewer_and_widget
    viewer.add_image(rng.random((48, 48), dtype=np.float32), name="big")
    net = widget.model_object = _HeldSRN(tiny_srn(1).config).eval()
    widget.mode.value = "lazy"  # chosen in this session: respected
    try:
        assert run_and_wait(qtbot, widget) == "added"
        qtbot.waitUntil(lambda: "Computing" in widget.status.value, timeout=10_000)
        assert widget.status.value == "Computing 'big (deblurred)'..."
    finally:
        net.go.set()
    wait_for_frame(qtbot, viewer.layers["big (deblurred)"], ())


# --------------------------------------------------------------------------- import cost

_OPEN_NAPARI = """
import sys
import napari
import numpy as np
viewer = napari.Viewer(show=False)
_, widget = viewer.window.add_plugin_dock_widget("napari-srn", "Deblur (SRN)")
viewer.open_sample("napari-srn", "blurred_photo")
print("before run:", "torch" in sys.modules)
widget.model.value = "default"
widget.layer.value = viewer.add_image(np.zeros((16, 16), np.uint8), name="tiny")
widget.mode.value = "lazy"
widget.run()
from qtpy.QtWidgets import QApplication
import time
t = time.time()
while widget.running and time.time() - t < 120:
    QApplication.processEvents()
    time.sleep(0.01)
print("after run:", "torch" in sys.modules, widget.last_outcome)
viewer.close()
"""


def test_opening_napari_with_the_plugin_does_not_import_torch(tmp_path):
    env = {**os.environ, _logic.SETTINGS_ENV: str(tmp_path / "widget.json")}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run(
        [sys.executable, "-c", _OPEN_NAPARI],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "before run: False" in lines, proc.stdout
    assert "after run: True added" in lines, proc.stdout


# --------------------------------------------------------------------------- responsiveness


@pytest.mark.slow
def test_napari_stays_responsive_during_compute_now_and_lazy_stepping(tmp_path):
    """The longest main-thread gap (a 50 ms QTimer's longest interval, less 50 ms) while the
    default model deblurs a 512 x 512 photo now (after a first run that imports torch), and
    while stepping through a lazy stack of 512 x 512 frames, stays under 250 ms. Measured by
    benchmarks/bench_widget_gaps.py in a fresh process (a real viewer, nothing left over from
    other tests); the machine is shared, so a bound missed is measured once more."""
    import re

    script = ROOT / "benchmarks" / "bench_widget_gaps.py"
    env = {**os.environ, _logic.SETTINGS_ENV: str(tmp_path / "widget.json")}
    if not env.get("DISPLAY"):
        pytest.skip("needs a display (run under xvfb-run, as scripts/test.sh does)")
    gaps = {}
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, str(script), "--frames", "3"],
            capture_output=True, text=True, env=env, timeout=600, check=True,
        ).stdout  # fmt: skip
        gaps = {
            "compute now": int(re.search(r"second run: longest main-thread gap (\d+) ms", out)[1]),
            "lazy stepping": int(re.search(r"stepping through .*gap (\d+) ms", out)[1]),
        }
        if max(gaps.values()) < 250:
            break
    assert max(gaps.values()) < 250, gaps


def test_each_model_once_usable_devices_and_save_needs_a_folder(qtbot, viewer_and_widget, rng):
    viewer, widget = viewer_and_widget
    values = list(widget.model.choices)
    default = registry.registry()["default"]
    assert values.count("default") == 1 and default not in values  # one entry per file
    assert widget.model.native.itemText(0) == f"{default} (default)"
    if "+cpu" in torch.__version__:
        assert "cuda" not in widget.device.choices
    viewer.add_image(rng.random((32, 32), dtype=np.float32), name="img")
    widget.model_object = tiny_srn(1)
    widget.save.value = True  # no output folder chosen
    assert not widget.run_button.enabled and "Choose an output .zarr folder" in widget.plan.value
    notes = Notes()
    widget.run()
    assert not widget.running and "no output folder is chosen" in notes.messages[-1]
    widget.save.value = False
    assert widget.run_button.enabled
    assert all(
        w.tooltip for w in (widget.layer, widget.model, widget.device, widget.tile_size,
                            widget.precision, widget.mode, widget.save, widget.run_button)
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["compute now", "lazy"])
def test_a_two_channel_image_is_deblurred_channel_by_channel(qtbot, viewer_and_widget, rng, mode):
    """(Y, X, 2): never 128 frames of 128 x 2 pixels; each channel as a gray image."""
    viewer, widget = viewer_and_widget
    image = rng.integers(0, 4000, (64, 64, 2), dtype=np.uint16)
    widget.layer.value = viewer.add_image(image, name="two")
    assert widget.axes.value == "YXC"
    assert "2 channels each deblurred as a gray image" in widget.plan.value
    net = widget.model_object = tiny_srn(1)
    widget.mode.value = mode
    assert run_and_wait(qtbot, widget) == "added"
    result = viewer.layers["two (deblurred)"]
    assert result.data.shape == image.shape
    expected = np.moveaxis(deblur(np.moveaxis(image, -1, 0), model=net), 0, -1)
    if mode == "lazy":
        wait_for_frame(qtbot, result, ())
        got = result.data[:]
    else:
        got = result.data
    np.testing.assert_array_equal(got, expected)
    widget.axes.value = "YXT"  # a wrong correction: said in the widget's words, no run
    assert "Y and X must be the last two image axes" in widget.plan.value
    assert not widget.run_button.enabled
    widget.axes.value = "YXC"
    assert widget.run_button.enabled


def test_repeated_runs_replace_the_result_and_defaults_can_be_restored(
    qtbot, viewer_and_widget, rng
):
    viewer, widget = viewer_and_widget
    widget.layer.value = viewer.add_image(rng.random((32, 32), dtype=np.float32), name="img")
    widget.model_object = tiny_srn(1)
    for _ in range(2):
        assert run_and_wait(qtbot, widget) == "added"
    assert [layer.name for layer in viewer.layers] == ["img", "img (deblurred)"]
    widget.replace.value = False  # keep both
    assert run_and_wait(qtbot, widget) == "added"
    assert len(viewer.layers) == 3
    widget.tile_size.value, widget.mode.value, widget.save.value = 128, "lazy", True
    widget.restore_defaults()
    assert (widget.tile_size.value, widget.mode.value, widget.save.value) == (0, "auto", False)
    assert widget.replace.value and widget.axes.value == "YX"


def test_the_model_line_says_what_the_model_does_in_plain_words(viewer_and_widget):
    _, widget = viewer_and_widget
    card = model_card("default")
    gain = card.metrics["benchmark"]["gain_over_input_db"]
    assert f"+{gain:.1f} dB on held-out photos" in widget.card.value
    assert card.description[:40] in widget.card.tooltip


def test_overwrite_is_a_checkbox_and_messages_use_the_widgets_words(
    qtbot, viewer_and_widget, rng, tmp_path
):
    viewer, widget = viewer_and_widget
    image = rng.random((2, 32, 32), dtype=np.float32)
    widget.layer.value = viewer.add_image(image, name="stack")
    widget.model_object = tiny_srn(1)
    widget.save.value, widget.save_path.value = True, tmp_path / "out.zarr"
    assert not widget.overwrite.native.isHidden()  # shown with the output folder
    assert run_and_wait(qtbot, widget) == "added"
    widget.model_object = tiny_srn(1, seed=7)  # another run into the same folder
    notes = Notes()
    assert run_and_wait(qtbot, widget) == "failed"
    message = notes.messages[-1]
    assert "tick 'replace an existing output'" in message and "overwrite=True" not in message
    widget.overwrite.value = True
    assert run_and_wait(qtbot, widget) == "added"


def test_a_brightening_dask_stack_is_mapped_by_a_range_sampled_over_its_frames(
    qtbot, viewer_and_widget
):
    """Not the contrast limits of the first frame viewed: no later frame is silently clipped."""
    viewer, widget = viewer_and_widget
    stack = np.stack([np.full((32, 32), 200 * (t + 1), np.uint16) for t in range(6)])
    viewer.add_image(
        da.from_array(stack, chunks=(1, 32, 32)), name="bright", contrast_limits=(0, 300)
    )
    net = widget.model_object = tiny_srn(1)
    assert widget.intensity.value == "auto" and "frames spread over the data" in widget.plan.value
    assert run_and_wait(qtbot, widget) == "added"
    result = viewer.layers["bright (deblurred)"]
    assert result.metadata["napari_srn"]["in_range"] == [200.0, 1200.0]
    with dask.config.set(scheduler="synchronous"):
        last = result.data.lazy[5].compute()
    np.testing.assert_array_equal(last, deblur(stack[5], model=net, in_range=(200, 1200)))
