"""The Deblur (SRN) widget's decisions and jobs, tested without napari or Qt.

``napari_srn._napari._logic`` (layers -> run choice, settings, model card) and ``._jobs``
(what runs in napari's worker threads) import neither napari nor Qt; the widget itself is
tested in a real viewer in test_widget.py.
"""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import dask
import dask.array as da
import numpy as np
import pytest
import torch
import zarr

from napari_srn import (
    Cancelled,
    DeblurOptions,
    ModelCard,
    Progress,
    deblur,
    list_models,
    model_card,
    save_model,
)
from napari_srn._napari import _jobs, _logic
from napari_srn._napari._logic import Settings

from ..helpers import CountingSRN, tiny_srn


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(_logic.SETTINGS_ENV, str(tmp_path / "settings" / "widget.json"))


# stand-ins for napari's layer classes: layer_info looks at class names, not napari types
class Image(SimpleNamespace):
    pass


class Labels(SimpleNamespace):
    pass


class Points(SimpleNamespace):
    pass


def image(data, *, rgb=False, multiscale=False, contrast_limits=(0.0, 1.0), **kw):
    return Image(
        data=data,
        name=kw.pop("name", "img"),
        rgb=rgb,
        multiscale=multiscale,
        contrast_limits=list(contrast_limits),
        **kw,
    )


def info_of(data, **kw):
    return _logic.layer_info(image(data, **kw))


# --------------------------------------------------------------------------- layers


def test_layer_info_reads_shape_dtype_backing_and_levels():
    gray = info_of(np.zeros((4, 30, 40), np.uint16), contrast_limits=(10, 900))
    assert (gray.kind, gray.shape, gray.dtype, gray.frames) == ("image", (4, 30, 40), "uint16", 4)
    assert (gray.backing, gray.multiscale, gray.contrast_limits) == ("numpy", False, (10.0, 900.0))
    rgb = info_of(da.zeros((2, 30, 40, 3), np.uint8), rgb=True)
    assert (rgb.backing, rgb.frames) == ("dask", 2)
    z = info_of(zarr.zeros((30, 40), dtype="f4"))
    assert (z.backing, z.frames) == ("zarr", 1)
    pyramid = [np.zeros((64, 64), np.float32), np.zeros((32, 32), np.float32)]
    multi = info_of(pyramid, multiscale=True)
    assert (multi.shape, multi.n_levels, multi.multiscale) == ((64, 64), 2, True)
    assert _logic.layer_info(image([1, 2], name="x")).backing == "other"


@pytest.mark.parametrize(
    ("layer", "kind"),
    [
        (Labels(data=np.zeros((8, 8), np.int32), name="cells"), "Labels"),
        (Points(data=np.zeros((3, 2)), name="spots"), "Points"),
    ],
)
def test_labels_and_points_layers_are_refused(layer, kind):
    info = _logic.layer_info(layer)
    with pytest.raises(ValueError, match=rf"a {kind} layer; Deblur \(SRN\) works on Image layers"):
        _logic.check_layer(info)
    with pytest.raises(ValueError, match="Image layers"):
        _logic.choose_run(info, Settings())


def test_bool_image_is_refused():
    with pytest.raises(ValueError, match="dtype bool"):
        _logic.check_layer(info_of(np.zeros((8, 8), bool)))


# --------------------------------------------------------------------------- run choice

U8, U16, F32 = np.uint8, np.uint16, np.float32


@pytest.mark.parametrize(
    ("data", "rgb", "mode", "lazy", "cax"),
    [
        (np.zeros((32, 32), U8), False, "auto", False, None),
        (np.zeros((32, 32, 3), U8), True, "auto", False, -1),
        (np.zeros((32, 32, 4), U16), True, "auto", False, -1),
        (np.zeros((1, 32, 32), F32), False, "auto", False, None),  # one frame
        (np.zeros((5, 32, 32), U16), False, "auto", True, None),  # a stack
        (np.zeros((2, 3, 32, 32, 3), U8), True, "auto", True, -1),  # T, Z, RGB
        (da.zeros((32, 32), dtype=U8), False, "auto", True, None),  # dask-backed
        (zarr.zeros((32, 32), dtype="u2"), False, "auto", True, None),  # zarr-backed
        (np.zeros((5, 32, 32), U16), False, "compute now", False, None),
        (np.zeros((32, 32), F32), False, "lazy", True, None),
    ],
)
def test_run_choice_mode_and_channel_axis(data, rgb, mode, lazy, cax):
    choice = _logic.choose_run(info_of(data, rgb=rgb), Settings(mode=mode))
    assert (choice.lazy, choice.channel_axis, choice.levels, choice.save_to) == (
        lazy,
        cax,
        "single",
        None,
    )
    assert ("Lazy" in choice.summary) is lazy
    assert ("Compute now" in choice.summary) is not lazy


@pytest.mark.parametrize(
    ("data", "limits", "mode", "expected"),
    [
        # deblur's own rule: uint8 is 0..255, an in-memory array its own min..max
        (da.zeros((3, 8, 8), dtype=U8), (0, 255), "lazy", None),
        (np.zeros((3, 8, 8), U16), (100, 4000), "lazy", None),
        # dask/zarr-backed: the layer's contrast limits, never a pass over the data
        (da.zeros((3, 8, 8), dtype=U16), (100, 4000), "lazy", (100.0, 4000.0)),
        (zarr.zeros((3, 8, 8), dtype="i2"), (-5, 5), "lazy", (-5.0, 5.0)),
        (da.zeros((3, 8, 8), dtype=F32), (0.1, 0.7), "lazy", (0.0, 1.0)),
        (da.zeros((3, 8, 8), dtype=F32), (-2.0, 7.5), "lazy", (-2.0, 7.5)),
        (da.zeros((3, 8, 8), dtype=U16), (7, 7), "lazy", (7.0, 8.0)),
        # compute now reads the whole array anyway: deblur's rule
        (da.zeros((3, 8, 8), dtype=U16), (100, 4000), "compute now", None),
    ],
)
def test_lazy_intensity_range(data, limits, mode, expected):
    settings = Settings(mode=mode, intensity="auto" if expected is None else "contrast limits")
    choice = _logic.choose_run(info_of(data, contrast_limits=limits), settings)
    assert choice.in_range == expected
    if expected not in (None, (0.0, 1.0)):
        assert "contrast limits" in choice.summary


def test_multiscale_run_lazy_each_level_else_full_resolution():
    pyramid = [da.zeros((64, 64), dtype=U16), da.zeros((32, 32), dtype=U16)]
    info = info_of(pyramid, multiscale=True, contrast_limits=(0, 500))
    lazy = _logic.choose_run(info, Settings(intensity="contrast limits"))
    assert (lazy.lazy, lazy.levels, lazy.in_range) == (True, "each level", (0.0, 500.0))
    assert "each level is deblurred at its own resolution" in lazy.summary
    now = _logic.choose_run(info, Settings(mode="compute now"))
    assert (now.lazy, now.levels) == (False, "full resolution")
    assert "full-resolution level only" in now.summary
    saved = _logic.choose_run(info, Settings(), save_to="out.zarr")
    assert (saved.levels, saved.save_to) == ("full resolution", "out.zarr")
    # a multiscale in-memory pyramid still uses the contrast limits (one range for all levels)
    numpy_pyramid = [np.zeros((64, 64), U16), np.zeros((32, 32), U16)]
    choice = _logic.choose_run(
        info_of(numpy_pyramid, multiscale=True, contrast_limits=(0, 9)),
        Settings(intensity="contrast limits"),
    )
    assert choice.in_range == (0.0, 9.0)


def test_save_path_must_be_a_zarr_folder():
    info = info_of(np.zeros((32, 32), U8))
    with pytest.raises(ValueError, match=r"ending in \.zarr, got 'out\.tif'"):
        _logic.choose_run(info, Settings(), save_to="out.tif")
    choice = _logic.choose_run(info, Settings(), save_to="out.zarr")
    assert choice.save_to == "out.zarr" and "Writes out.zarr" in choice.summary
    assert _logic.choose_run(info, Settings(), save_to="").save_to is None


def test_deblur_options_are_the_librarys_typed_settings():
    choice = _logic.choose_run(info_of(np.zeros((32, 32, 3), U8), rgb=True), Settings())
    options = _logic.deblur_options(Settings(), choice)
    assert isinstance(options, DeblurOptions)
    assert options == DeblurOptions(channel_axis=-1)  # auto device and tile: None, the defaults
    custom = Settings(
        model=_logic.WEIGHTS_FILE,
        weights="~/m.safetensors",
        device="cpu",
        tile_size=64,
        precision="float32",
    )
    options = _logic.deblur_options(custom, choice)
    assert options.model.endswith("m.safetensors") and not options.model.startswith("~")
    assert (options.device, options.tile_size, options.precision) == ("cpu", 64, "float32")
    with pytest.raises(ValueError, match="choose a weights file"):
        _logic.deblur_options(Settings(model=_logic.WEIGHTS_FILE), choice)


def test_precision_choices_are_the_librarys():
    from napari_srn.inference.options import PRECISIONS

    assert _logic.PRECISIONS is PRECISIONS  # imported, not copied


@pytest.mark.parametrize(
    ("shape", "rgb", "labels", "expected"),
    [
        ((64, 64), False, None, "YX"),
        ((64, 64, 3), True, ("-2", "-1", "0"), "YXC"),
        ((5, 64, 64), False, ("a", "b", "c"), "TYX"),
        ((5, 4, 64, 64), False, None, "TZYX"),
        ((8, 64, 64), False, ("Z", "Y", "X"), "ZYX"),
        ((128, 128, 2), False, None, "YXC"),  # grey+alpha or two channels, not 128 frames
        ((2, 128, 128), False, ("c", "y", "x"), "CYX"),
        ((3, 64, 64, 3), True, ("t", "z", "y", "x"), "TYXC"),  # labels that do not fit
    ],
)
def test_the_axes_are_guessed_from_the_layer(shape, rgb, labels, expected):
    info = info_of(np.zeros(shape, np.uint8), rgb=rgb)
    assert _logic.guess_axes(info, labels) == expected


@pytest.mark.parametrize(
    ("shape", "axes", "result"),
    [
        ((64, 64, 3), "YXC", (-1, None)),
        ((64, 64, 4), "YXC", (-1, None)),
        ((64, 64, 2), "YXC", (None, 2)),  # two channels: each deblurred as a gray image
        ((2, 64, 64), "CYX", (None, 0)),
        ((3, 64, 64), "CYX", (None, 0)),  # a C axis before the image: channels, not colour
        ((5, 64, 64), "tyx", (None, None)),
        ((5, 64, 64), "YXT", "Y and X must be the last two image axes"),
        ((64, 64), "TYX", "has 3 letters but the layer has 2 dimensions"),
        ((5, 64, 64), "TQX", "use each of the letters T, Z, C, Y, X"),
        ((64, 3, 64), "YCX", "side by side"),
    ],
)
def test_the_axes_field_is_checked_in_the_widgets_words(shape, axes, result):
    info = info_of(np.zeros(shape, np.uint8))
    if isinstance(result, str):
        with pytest.raises(ValueError, match=result):
            _logic.check_axes(axes, info)
    else:
        assert _logic.check_axes(axes, info) == result


def test_two_channels_are_frames_never_reshaped_and_saved_with_c_first():
    info = info_of(np.zeros((128, 128, 2), np.uint16))
    choice = _logic.choose_run(info, Settings(mode="auto"), axes="YXC")
    assert choice.lazy and choice.channel_axis is None and choice.channels_first == 2
    assert "2 channels each deblurred as a gray image" in choice.summary
    assert "(2 frames)" in choice.summary
    assert _logic.zarr_axes(choice) == "cyx"
    moved = _logic.move_axis(np.zeros((128, 128, 2)), 2, 0)
    assert moved.shape == (2, 128, 128)


def test_result_layer_kwargs_copy_transform_and_record_the_model():
    src = image(
        np.zeros((3, 16, 16), U16),
        name="cells",
        contrast_limits=(5, 50),
        scale=np.array([2.0, 0.5, 0.5]),
        translate=np.array([1.0, 10.0, 20.0]),
        metadata={"mine": 1},
        colormap="magma",
        blending="additive",
    )
    choice = _logic.choose_run(_logic.layer_info(src), Settings())
    kwargs = _logic.result_layer_kwargs(src, {"model": "tiny", "provisional": False}, choice)
    assert kwargs["name"] == "cells (deblurred)"
    np.testing.assert_array_equal(kwargs["scale"], [2.0, 0.5, 0.5])
    np.testing.assert_array_equal(kwargs["translate"], [1.0, 10.0, 20.0])
    assert (kwargs["colormap"], kwargs["blending"], kwargs["contrast_limits"]) == (
        "magma",
        "additive",
        [5.0, 50.0],
    )
    assert (kwargs["rgb"], kwargs["multiscale"]) == (False, False)
    assert kwargs["metadata"]["mine"] == 1
    assert kwargs["metadata"]["napari_srn"] == {
        "model": "tiny",
        "provisional": False,
        "source_layer": "cells",
        "mode": "lazy",
        "levels": "single",
        "in_range": None,
        "saved_to": None,
    }
    assert src.metadata == {"mine": 1}  # the source's metadata is not modified
    assert "cache" not in kwargs  # lazy results have unique task names: napari's cache is safe
    rgb = image(np.zeros((16, 16, 3), U8), rgb=True, colormap="gray")
    rgb_kwargs = _logic.result_layer_kwargs(
        rgb, {}, _logic.choose_run(_logic.layer_info(rgb), Settings())
    )
    assert "colormap" not in rgb_kwargs and rgb_kwargs["rgb"] is True
    assert "cache" not in rgb_kwargs  # computed now: an ordinary array


@pytest.mark.parametrize(
    ("category", "shown"),
    [
        (UserWarning, True),
        (RuntimeWarning, True),
        (DeprecationWarning, False),
        (FutureWarning, False),
    ],
)
def test_worker_warnings_worth_showing(category, shown):
    assert _logic.worth_showing(category) is shown


# --------------------------------------------------------------------------- settings


def test_settings_round_trip_through_the_env_path(tmp_path):
    assert _logic.settings_path() == tmp_path / "settings" / "widget.json"
    assert _logic.load_settings() == Settings()  # no file yet
    chosen = Settings(
        model=_logic.WEIGHTS_FILE,
        weights="/w.safetensors",
        device="cpu",
        tile_size=128,
        precision="bfloat16",
    )
    path = _logic.save_settings(chosen)
    assert path == _logic.settings_path() and json.loads(path.read_text())["tile_size"] == 128
    assert _logic.load_settings() == chosen


def test_settings_default_to_the_user_config_dir(monkeypatch):
    monkeypatch.delenv(_logic.SETTINGS_ENV)
    path = _logic.settings_path()
    assert path.name == "widget.json" and "napari-srn" in path.parts


@pytest.mark.parametrize(
    "text",
    ["{not json", "[1, 2]", '{"device": "tpu", "tile_size": -16, "mode": 3, "model": ""}'],
)
def test_bad_settings_files_give_defaults(text):
    _logic.settings_path().parent.mkdir(parents=True)
    _logic.settings_path().write_text(text)
    assert _logic.load_settings() == Settings()


def test_invalid_values_are_dropped_one_by_one():
    data = {"device": "cpu", "tile_size": True, "precision": "int8", "unknown": 1, "weights": 5}
    assert Settings.from_dict(data) == Settings(device="cpu")


def test_settings_are_checked_once_when_made_and_every_bad_field_is_named():
    # each choice is checked where its field is declared; the run choice and the library's
    # options then take it as valid (no second check of mode, intensity or device)
    with pytest.raises(ValueError) as err:
        Settings(mode="fast", device="tpu", intensity="linear", tile_size=-16)
    text = str(err.value)
    assert "mode must be one of ('auto', 'compute now', 'lazy'), got 'fast'" in text
    assert "device must be one of ('auto', 'cpu', 'cuda'), got 'tpu'" in text
    assert "intensity must be one of" in text and "tile_size must be an int >= 0" in text
    assert "model" not in text and "precision" not in text
    assert _logic.NOT_REMEMBERED == ("mode",)


def test_the_mode_is_not_remembered_so_a_single_image_is_computed_now():
    # issue 22, item 28: "lazy" chosen for a stack in one session ran the next session's single
    # 1024 x 1024 image lazily. The mode is a choice for the data at hand: each session starts
    # at auto (an old settings file's mode is ignored)
    _logic.save_settings(Settings(device="cpu", tile_size=64, mode="lazy"))
    assert "mode" not in json.loads(_logic.settings_path().read_text())
    _logic.settings_path().write_text(json.dumps({"device": "cpu", "mode": "lazy"}))
    restored = _logic.load_settings()
    assert restored == Settings(device="cpu") and restored.mode == "auto"
    choice = _logic.choose_run(info_of(np.zeros((1024, 1024), np.float32)), restored)
    assert not choice.lazy and "Compute now" in choice.summary


@pytest.mark.parametrize(
    ("frame", "waiting", "expected"),
    [
        ((), 0, "Computing 'big (deblurred)'..."),
        ((3,), 0, "Computing frame 3 of 'big (deblurred)'..."),
        ((1, 4), 2, "Computing frame 1, 4 of 'big (deblurred)' (2 more queued)..."),
    ],
)
def test_the_computing_line_names_a_frame_only_when_there_is_one(frame, waiting, expected):
    # issue 22, item 28: a single lazy image read "Computing frame  of 'big (deblurred)'"
    assert _logic.computing_line("big (deblurred)", frame, waiting) == expected


@pytest.mark.parametrize(
    ("tile", "hint"),
    [(100, "try 96 or 128"), (8, "try 32"), (48, "try 32 or 64")],
)
def test_a_tile_the_model_cannot_take_is_flagged_in_the_plan_in_the_widgets_words(tile, hint):
    # issue 22, item 27: tile 100 ran, then failed with the library's "or None to choose from
    # free memory"; the plan line now flags it before the run, in the widget's words
    info = info_of(np.zeros((64, 64), np.float32))
    step = _logic.tile_step("default")
    assert step == 32  # the bundled model's divisor (4 scales), read from its header, no torch
    with pytest.raises(ValueError, match=f"tile {tile} .*multiple of 32.*{hint}") as err:
        _logic.choose_run(info, Settings(tile_size=tile), tile_step=step)
    assert "0 (automatic)" in str(err.value)
    for fine in (0, 32, 96, 128):
        _logic.choose_run(info, Settings(tile_size=fine), tile_step=step)
    assert _logic.tile_step(tiny_srn(scales=2)) == 8  # a loaded network: its own divisor
    assert _logic.tile_step("missing.safetensors") is None  # unknown: the run says


def test_the_librarys_tile_message_reads_in_the_widgets_words():
    from napari_srn.inference.plan import check_tile_size

    with pytest.raises(ValueError) as err:
        check_tile_size(100, 16)
    text = _logic.gui_words(str(err.value))
    assert "None" not in text and "tile_size" not in text and "tile" in text


# --------------------------------------------------------------------------- model cards


def test_bundled_models_match_the_library():
    assert _logic.bundled_models() == list_models()


def test_card_of_the_default_model_is_a_trained_model_with_its_benchmark():
    short, full, provisional = _logic.describe_model("default")
    card = model_card("default")
    assert not provisional and not card.provisional and card.training_steps > 0
    assert short.startswith(card.name) and len(short) <= 120 and "PROVISIONAL" not in short
    assert full == f"{card.name}: {card.description}" and "dB" in full
    assert _logic.read_card("default")["name"] == card.name


def test_a_provisional_card_is_flagged(tmp_path):
    path = tmp_path / "demo.safetensors"
    card = ModelCard(name="demo", description="returns its input unchanged", provisional=True)
    save_model(tiny_srn(), path, card)
    short, full, provisional = _logic.describe_model(path)
    assert provisional and "PROVISIONAL, not trained weights" in short and len(short) < 120
    assert "returns its input unchanged" in full


def test_card_of_a_weights_file(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_model(tiny_srn(), path, ModelCard(name="tiny", description="a test model"))
    assert _logic.describe_model(path) == ("tiny: a test model", "tiny: a test model", False)
    long = tmp_path / "long.safetensors"
    save_model(tiny_srn(), long, ModelCard(name="long", description="word " * 60))
    short, full, _ = _logic.describe_model(long)
    assert len(short) == 120 and short.endswith("…") and full.startswith(short[:-1])
    text, _, _ = _logic.describe_model(tmp_path / "missing.safetensors")
    assert text.startswith("Cannot read the model") and "does not exist" in text
    assert _logic.describe_model("")[0].startswith("Choose a napari-srn")


def test_read_card_refuses_other_files(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(ValueError, match="not a napari-srn weights file"):
        _logic.read_card(other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{nope")
    with pytest.raises(ValueError, match="not a readable napari-srn weights file"):
        _logic.read_card(junk)


# --------------------------------------------------------------------------- jobs


def drain(gen):
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            return steps, stop.value


def test_compute_job_yields_tiles_and_returns_deblur_result(rng):
    image_ = rng.integers(0, 4096, (2, 48, 48), dtype=np.uint16)
    net = tiny_srn()
    steps, outcome = drain(
        _jobs.compute_job(image_, options=DeblurOptions(model=net, tile_size=16))
    )
    assert (
        steps and steps[-1].done == steps[-1].total and all(isinstance(s, Progress) for s in steps)
    )
    np.testing.assert_array_equal(outcome.data, deblur(image_, model=net, tile_size=16))
    from napari_srn.inference.precision import resolve_precision

    auto = resolve_precision("auto", torch.device("cpu")).name
    assert outcome.model == {
        "model": "SRN",
        "model_sha256": None,
        "provisional": False,
        "precision": auto,
    }


def test_compute_job_loads_a_named_model_once_and_records_it(tmp_path, rng):
    path = tmp_path / "tiny.safetensors"
    sha = save_model(tiny_srn(), path, ModelCard(name="tiny", description="x"))
    image_ = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    _, outcome = drain(
        _jobs.compute_job(
            image_,
            options=DeblurOptions(
                model=str(path), device="cpu", channel_axis=-1, precision="float32"
            ),
        )
    )
    reference = deblur(image_, model=path, channel_axis=-1, precision="float32")
    np.testing.assert_array_equal(outcome.data, reference)
    assert outcome.model == {
        "model": "tiny",
        "model_sha256": sha,
        "provisional": False,
        "precision": "float32",
        "model_source": str(path),
    }


def test_compute_job_turns_runtime_errors_into_job_failed(rng):
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    gen = _jobs.compute_job(rng.random((16, 16)).astype(F32), options=DeblurOptions(model=Broken()))
    with pytest.raises(_jobs.JobFailed, match="RuntimeError: boom"):
        drain(gen)


def test_lazy_job_builds_lazy_levels_that_run_only_the_computed_frame():
    net = CountingSRN(tiny_srn(1).config).eval()
    stack = np.stack([np.full((32, 32), v, F32) for v in (0.1, 0.5, 0.9)])
    outcome = _jobs.lazy_job(
        [stack, stack[:, ::2, ::2]],
        rgb=False,
        options=DeblurOptions(model=net, in_range=(0.0, 1.0)),
    )
    assert [type(x) for x in outcome.data] == [da.Array, da.Array]
    assert outcome.data[0].chunks[0] == (1, 1, 1) and net.seen == []
    with dask.config.set(scheduler="synchronous"):
        frame = outcome.data[0][2].compute()
    assert set(np.round(net.seen, 3)) == {0.9}
    np.testing.assert_allclose(frame, deblur(stack[2], model=net, in_range=(0.0, 1.0)), atol=1e-6)


def test_lazy_job_with_a_gray_model_on_color_deblurs_each_channel(rng):
    rgb = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    gray = tiny_srn(1, seed=3)
    options = DeblurOptions(model=gray, channel_axis=-1)
    (lazy,) = _jobs.lazy_job([rgb], rgb=True, options=options).data
    eager = deblur(rgb, model=gray, channel_axis=-1)
    assert np.abs(lazy.compute().astype(int) - eager).max() <= 1


def test_frame_chunks():
    assert _jobs.frame_chunks((4, 5, 30, 40), rgb=False) == (1, 1, 30, 40)
    assert _jobs.frame_chunks((4, 30, 40, 3), rgb=True) == (1, 30, 40, 3)


# ome-zarr's writer module builds a deprecated Scaler when first imported
@pytest.mark.filterwarnings("ignore:Call to deprecated class Scaler:DeprecationWarning")
def test_zarr_job_writes_ome_zarr_and_returns_it_in_the_layer_axis_order(tmp_path, rng):
    image_ = rng.integers(0, 255, (2, 32, 48, 3), dtype=np.uint8)
    net = tiny_srn()
    dest = tmp_path / "out.zarr"
    steps, outcome = drain(
        _jobs.zarr_job(
            image_,
            str(dest),
            threading.Event(),
            axes="tyxc",
            rgb=True,
            options=DeblurOptions(model=net, channel_axis=-1),
        )
    )
    assert steps[-1].done == steps[-1].total and outcome.saved_to == str(dest)
    assert zarr.open_group(dest, mode="r")["0"].shape == (2, 3, 32, 48)  # NGFF order: t, c, y, x
    assert outcome.data.shape == image_.shape
    np.testing.assert_array_equal(
        outcome.data.compute(), deblur(image_, model=net, channel_axis=-1)
    )


@pytest.mark.filterwarnings("ignore:Call to deprecated class Scaler:DeprecationWarning")
def test_zarr_job_cancel_leaves_a_resumable_store(tmp_path, rng):
    image_ = rng.random((4, 32, 32)).astype(F32)
    cancel = threading.Event()
    gen = _jobs.zarr_job(
        image_,
        str(tmp_path / "out.zarr"),
        cancel,
        axes="tyx",
        rgb=False,
        options=DeblurOptions(model=tiny_srn()),
        batch_size=1,
    )
    next(gen)
    cancel.set()
    with pytest.raises(Cancelled):
        drain(gen)
    attrs = dict(zarr.open_group(tmp_path / "out.zarr", mode="r").attrs)
    assert attrs["napari_srn"]["status"] == "incomplete"


@pytest.mark.filterwarnings("ignore:Call to deprecated class Scaler:DeprecationWarning")
def test_closing_the_zarr_job_stops_between_chunks_and_releases_the_store(tmp_path, rng):
    # napari's quit() closes the job's generator: the library's generator is closed with it
    # (its lock released), and the same run resumes and completes the store
    image_ = rng.random((4, 32, 32)).astype(F32)
    dest = tmp_path / "out.zarr"
    job = dict(axes="tyx", rgb=False, options=DeblurOptions(model=tiny_srn()), batch_size=1)
    gen = _jobs.zarr_job(image_, str(dest), threading.Event(), **job)
    first = next(gen)
    gen.close()
    assert first.done < first.total
    assert dict(zarr.open_group(dest, mode="r").attrs)["napari_srn"]["status"] == "incomplete"
    steps, outcome = drain(_jobs.zarr_job(image_, str(dest), threading.Event(), **job))
    assert steps[-1].done == steps[-1].total and outcome.saved_to == str(dest)
    np.testing.assert_array_equal(outcome.data.compute(), deblur(image_, options=job["options"]))


def test_lazy_stacks_sample_their_range_over_frames_by_default():
    info = info_of(da.zeros((20, 8, 8), dtype=U16), contrast_limits=(100, 200))
    choice = _logic.choose_run(info, Settings())
    assert choice.sample_range and choice.in_range is None
    assert f"min..max of {_logic.SAMPLE_FRAMES} frames spread over the data" in choice.summary
    full = _logic.choose_run(info, Settings(intensity="data type range"))
    assert full.in_range == (0.0, 65535.0) and "full uint16 range" in full.summary
    # a stack that brightens over time: the sampled range covers its last frames too
    stack = np.stack([np.full((8, 8), 100 * t, U16) for t in range(20)])
    assert _jobs.sampled_range(da.from_array(stack, chunks=(1, 8, 8)), rgb=False) == (0.0, 1900.0)
    assert _jobs.sampled_range(stack[:3], rgb=False) == (0.0, 200.0)
