"""The napari-srn command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_srn import deblur, save_model
from napari_srn.cli import main
from napari_srn.io import open_image, read_image, write_image
from napari_srn.model.weights import ModelCard

from .helpers import identity_srn


@pytest.fixture
def identity_file(tmp_path):
    path = tmp_path / "identity.safetensors"
    save_model(identity_srn(), path, ModelCard(name="identity", description="test"))
    return path


@pytest.mark.slow
def test_sample_writes_three_pngs_and_reports_psnr(tmp_path, capsys):
    out = tmp_path / "sample"
    assert main(["deblur", "--sample", str(out), "--no-progress"]) == 0
    for name in ("blurred.png", "deblurred.png", "side_by_side.png"):
        assert (out / name).is_file()
    side = iio.imread(out / "side_by_side.png")
    assert side.shape == (512, 512 * 2 + 8, 3)
    text = capsys.readouterr().out
    assert "PSNR vs the sharp photo" in text
    # never overwritten without asking
    assert main(["deblur", "--sample", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["deblur", "--sample", str(out), "--overwrite", "--no-progress"]) == 0


@pytest.mark.parametrize(
    ("name", "image", "axis"),
    [
        ("rgb.png", np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3), -1),
        ("gray16.png", np.arange(600, dtype=np.uint16).reshape(20, 30) * 50, None),
        ("rgb.jpg", np.full((20, 30, 3), 128, np.uint8), -1),
        ("stack.tif", np.random.default_rng(0).random((3, 20, 30)).astype(np.float32), None),
        ("rgb.tif", np.arange(20 * 30 * 3, dtype=np.uint16).reshape(20, 30, 3), 2),
        ("rgb16.png", np.arange(20 * 30 * 3, dtype=np.uint16).reshape(20, 30, 3) * 70, -1),
        ("rgba16.png", np.arange(20 * 30 * 4, dtype=np.uint16).reshape(20, 30, 4) * 50, -1),
    ],
)
def test_files_round_trip_through_the_cli(tmp_path, identity_file, name, image, axis):
    src = tmp_path / name
    write_image(src, image, channel_axis=axis)
    read, read_axis = read_image(src)
    assert read_axis == (None if axis is None else read.ndim - 1)
    dst = tmp_path / ("out_" + name)
    code = main(
        [
            "deblur",
            str(src),
            str(dst),
            "--model",
            str(identity_file),
            "--tile-size",
            "16",
            "--no-progress",
        ]
    )
    assert code == 0
    out, _ = read_image(dst)
    assert out.shape == read.shape and out.dtype == read.dtype
    if not name.endswith(".jpg"):
        np.testing.assert_allclose(out, read, atol=1e-6)


def test_grey_alpha_png_keeps_its_alpha_and_deblurs_only_the_grey(tmp_path, identity_file):
    import imagecodecs

    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    alpha = np.where(rng.random((40, 48)) > 0.5, 255, 0).astype(np.uint8)
    src, dst = tmp_path / "la.png", tmp_path / "out.png"
    src.write_bytes(imagecodecs.png_encode(np.stack([grey, alpha], -1)))
    info = open_image(src)
    assert info.data.shape == (40, 48, 2) and info.channel_axis == 2 and info.alpha
    assert main(["deblur", str(src), str(dst), "--no-progress"]) == 0  # the default colour model
    out = imagecodecs.png_decode(dst.read_bytes())
    assert out.shape == (40, 48, 2)
    np.testing.assert_array_equal(out[..., 1], alpha)  # transparency untouched
    expected = deblur(grey, model="default")
    np.testing.assert_array_equal(out[..., 0], expected)
    # to an OME-Zarr too (it refused: "a 3-channel model cannot take 2 channels")
    assert main(["deblur", str(src), str(tmp_path / "o.zarr"), "--no-progress"]) == 0
    import zarr

    stored = zarr.open_group(str(tmp_path / "o.zarr"), mode="r")["0"][:]  # c, y, x
    np.testing.assert_array_equal(stored[1], alpha)
    np.testing.assert_array_equal(stored[0], expected)


def test_tiff_layout_and_axes_come_back_as_they_were(tmp_path, identity_file):
    rng = np.random.default_rng(3)
    planar = rng.integers(0, 256, (3, 20, 24), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    stack = rng.integers(0, 4000, (2, 20, 24), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "tyx.tif", stack, metadata={"axes": "TYX"})
    for name, data, axes in (("planar.tif", planar, "SYX"), ("tyx.tif", stack, "TYX")):
        dst = tmp_path / f"out_{name}"
        args = ["deblur", str(tmp_path / name), str(dst), "--model", str(identity_file)]
        assert main([*args, "--no-progress"]) == 0
        with tifffile.TiffFile(dst) as tif:
            assert tif.series[0].axes == axes
            np.testing.assert_array_equal(tif.series[0].asarray(), data)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("text.png", b"just some text", r"cannot read '.*text.png' as a PNG image"),
        ("text.tif", b"just some text", r"cannot read '.*text.tif' as a TIFF image"),
        ("text.jpg", b"just some text", r"cannot read '.*text.jpg' as an image"),
    ],
)
def test_unreadable_files_are_named(tmp_path, capsys, name, content, message):
    (tmp_path / name).write_bytes(content)
    assert main(["deblur", str(tmp_path / name), str(tmp_path / "o.tif"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err and "imageio" not in err


def test_png_and_jpg_refuse_stacks_before_the_work(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((2, 20, 24), np.uint8))
    assert main(["deblur", str(tmp_path / "stack.tif"), str(tmp_path / "o.png")]) == 1
    assert "one 2D grey or colour image" in capsys.readouterr().err


def test_tiff_microscopy_channels_stay_separate(tmp_path, identity_file):
    src = tmp_path / "zcyx.tif"
    data = np.random.default_rng(1).integers(0, 4000, (2, 2, 20, 24), dtype=np.uint16)
    tifffile.imwrite(src, data, metadata={"axes": "ZCYX"}, imagej=True)
    image, axis = read_image(src)
    assert axis is None and image.shape == data.shape
    dst = tmp_path / "out.tif"
    assert main(["deblur", str(src), str(dst), "--model", str(identity_file), "--no-progress"]) == 0
    np.testing.assert_array_equal(tifffile.imread(dst), data)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deblur", "missing.png", "out.png"], "does not exist"),
        (["deblur", "in.png", "out.png", "--tile-size", "100"], "multiple of 32"),
        (["deblur", "in.png", "out.png", "--device", "tpu"], "not a device torch knows"),
        (["deblur", "in.png", "out.png", "--model", "nope"], "neither a bundled model"),
        (["deblur", "in.png", "out.png", "--precision", "float16", "--device", "cpu"], "float16"),
        (["deblur", "in.png", "exists.png"], "already exists"),
        (["deblur", "in.png", "out.jpg", "--model", "IDENTITY", "--channel-axis", "-1"], None),
        (["deblur", "in.png"], "give INPUT and OUTPUT"),
        (["deblur", "in.png", "out"], "has no file extension"),
        (["deblur", "in.png", "out.xyz"], "cannot write .xyz files"),
        (["deblur", "in.png", "no/such/dir/out.png"], "does not exist"),
        (["deblur", "in.png", "."], "is a folder"),
        (["deblur", "in.png", "out.png", "--sample", "dir"], "takes no INPUT/OUTPUT"),
    ],
)
def test_errors_are_one_clear_line(tmp_path, monkeypatch, capsys, identity_file, args, message):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "in.png", np.zeros((20, 20, 3), np.uint8), channel_axis=-1)
    write_image(tmp_path / "exists.png", np.zeros((20, 20, 3), np.uint8), channel_axis=-1)
    args = [str(identity_file) if a == "IDENTITY" else a for a in args]
    code = main(args)
    err = capsys.readouterr().err
    if message is None:
        assert code == 0
        return
    assert code == 1
    assert err.startswith("napari-srn: error:") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_float_output_to_png_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="write .tif instead"):
        write_image(tmp_path / "x.png", np.zeros((4, 4), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_console_script_help_and_models():
    out = subprocess.run(
        [sys.executable, "-m", "napari_srn", "deblur", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--tile-size", "--device", "--model", "--sample", "--overwrite"):
        assert option in out
    models = subprocess.run(
        [sys.executable, "-m", "napari_srn", "models"], capture_output=True, text=True, check=True
    ).stdout
    assert models.startswith("srn-") and "(default)" in models


def test_output_problems_are_found_before_the_work(tmp_path, monkeypatch, capsys):
    """A uint16 image to .jpg: refused before the model runs (not after a long deblur)."""
    write_image(tmp_path / "in.tif", np.zeros((20, 20), np.uint16))
    _no_deblur(monkeypatch)
    assert main(["deblur", str(tmp_path / "in.tif"), str(tmp_path / "out.jpg")]) == 1
    assert "8-bit images only" in capsys.readouterr().err


def test_unexpected_errors_are_one_line_unless_debug(tmp_path, monkeypatch, capsys):
    import napari_srn.inference.api as api

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    write_image(tmp_path / "in.png", np.zeros((20, 20), np.uint8))
    monkeypatch.setattr(api, "deblur_image", boom)
    args = ["deblur", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--no-progress"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and "--debug" in err and "Traceback" not in err
    with pytest.raises(RuntimeError, match="boom"):
        main([*args, "--debug"])


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o640)
    write_image(path, np.ones((4, 4), np.uint8), overwrite=True)
    assert path.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode


def test_disk_full_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    import errno

    import imagecodecs

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    write_image(tmp_path / "in.png", np.zeros((20, 20), np.uint8))
    monkeypatch.setattr(imagecodecs, "png_encode", full)
    args = ["deblur", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--no-progress"]
    assert main([*args, "--model", "default"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_store_and_config_damage_are_one_line(tmp_path, capsys):
    import zarr

    src = tmp_path / "in.zarr"
    zarr.create_array(str(src), shape=(32, 32), chunks=(16, 16), dtype="uint8")[:] = 7
    dest = tmp_path / "out.zarr"
    zarr.open_group(str(dest), mode="w").attrs["napari_srn"] = "complete"  # wrong type
    assert main(["deblur", str(src), str(dest), "--overwrite", "--no-progress"]) == 1
    assert "napari-srn did not write" in capsys.readouterr().err
    chunk = next(p for p in (src / "c").rglob("*") if p.is_file())
    chunk.write_bytes(b"garbage")  # a garbled input chunk
    assert main(["deblur", str(src), str(tmp_path / "o.tif"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("napari-srn: error:") and "Traceback" not in err
    config = tmp_path / "run.yaml"
    config.write_text("data: photos\nlr: .inf\n")
    assert main(["train", "--config", str(config)]) == 1
    assert "lr: must be > 0" in capsys.readouterr().err


def test_integers_over_their_full_range_survive_the_cli(tmp_path, identity_file, capsys):
    """Issue 22, item 2: an int32 TIFF of 0 and 2**31 - 1 came back with -2**31 (exit 0, after
    a RuntimeWarning)."""
    for dtype in (np.int32, np.uint32):
        image = np.zeros((20, 24), dtype)
        image[5:15, 6:18] = np.iinfo(dtype).max
        tifffile.imwrite(tmp_path / "in.tif", image)
        args = ["deblur", str(tmp_path / "in.tif"), str(tmp_path / "out.tif"), "--overwrite"]
        assert main([*args, "--model", str(identity_file), "--no-progress"]) == 0
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), image)
        assert "Warning" not in capsys.readouterr().err


def _no_deblur(monkeypatch):
    import napari_srn.inference.api as api

    for name in ("deblur", "deblur_image"):
        monkeypatch.setattr(api, name, lambda *a, **k: pytest.fail("deblur ran"))


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink"])
def test_the_input_file_is_never_the_output(tmp_path, monkeypatch, capsys, how):
    """Issue 22, item 5: `deblur same.png same.png --overwrite` replaced the input."""
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "same.png"
    write_image(source, np.arange(400, dtype=np.uint8).reshape(20, 20))
    before = source.read_bytes()
    output = {"same": "same.png", "relative": "../" + tmp_path.name + "/same.png"}.get(how)
    if how == "symlink":
        (tmp_path / "link.png").symlink_to(source)
        output = "link.png"
    elif how == "hardlink":
        os.link(source, tmp_path / "hard.png")
        output = "hard.png"
    _no_deblur(monkeypatch)
    assert main(["deblur", str(source), output, "--overwrite", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "is the input file" in err and "Traceback" not in err
    assert source.read_bytes() == before


@pytest.mark.parametrize(
    ("shape", "axis", "kwargs"),
    [
        ((20, 24, 4), -1, {}),  # RGBA
        ((20, 24, 2), -1, {}),  # grey+alpha
        ((20, 24, 4), -1, {"photometric": "separated"}),  # CMYK
    ],
)
def test_what_jpeg_cannot_hold_is_refused_before_the_work(
    tmp_path, monkeypatch, capsys, shape, axis, kwargs
):
    """Issue 22, item 18: RGBA, grey+alpha or CMYK to .jpg failed after all the work."""
    if kwargs:
        tifffile.imwrite(tmp_path / "in.tif", np.zeros(shape, np.uint8), **kwargs)
    else:
        write_image(tmp_path / "in.tif", np.zeros(shape, np.uint8), channel_axis=axis, alpha=True)
    _no_deblur(monkeypatch)
    assert main(["deblur", str(tmp_path / "in.tif"), str(tmp_path / "out.jpg")]) == 1
    err = capsys.readouterr().err
    assert "grey or RGB" in err and "write .png" in err
    with pytest.raises(ValueError, match="grey or RGB"):
        write_image(tmp_path / "x.bmp", np.zeros(shape, np.uint8), channel_axis=axis)


def test_gif_output_is_refused(tmp_path, capsys):
    """Issue 22, item 29: a .gif output was silently reduced to a palette of 256 colours."""
    write_image(tmp_path / "in.png", np.zeros((20, 24, 3), np.uint8), channel_axis=-1)
    assert main(["deblur", str(tmp_path / "in.png"), str(tmp_path / "out.gif")]) == 1
    assert "palette" in capsys.readouterr().err
    assert not (tmp_path / "out.gif").exists()


@pytest.mark.parametrize(
    ("name", "flag", "message"),
    [
        ("rgb.png", "5", "--channel-axis 5 is out of range"),
        ("grey.tif", "0", "--channel-axis 0 has fewer than two spatial"),
        ("grey.tif", "-3", "--channel-axis -3 is out of range"),
    ],
)
def test_a_bad_channel_axis_is_named_as_the_flag(
    tmp_path, monkeypatch, capsys, name, flag, message
):
    """Issue 22, item 24: --channel-axis 5 gave an IndexError, and 0 on a grey TIFF blamed the
    output file."""
    shape = (20, 24, 3) if name == "rgb.png" else (20, 24)
    write_image(tmp_path / name, np.zeros(shape, np.uint8), channel_axis=-1 if shape[2:] else None)
    _no_deblur(monkeypatch)
    for out in ("o.png", "o.tif", "o.zarr"):
        args = ["deblur", str(tmp_path / name), str(tmp_path / out), f"--channel-axis={flag}"]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert message in err and "IndexError" not in err and "files hold" not in err
        assert "channel_axis" not in err and "None" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_folder_as_input_is_called_a_folder(tmp_path, capsys):
    """Issue 22, item 25: a directory given as the input was reported as missing."""
    (tmp_path / "photos").mkdir()
    assert main(["deblur", str(tmp_path / "photos"), str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert "is a folder" in err and "does not exist" not in err


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("0", "--tile-size must be a positive integer"),
        ("100", "--tile-size must be a positive multiple of 32, got 100. Try 96 or 128"),
    ],
)
def test_tile_size_errors_speak_of_the_flag(tmp_path, capsys, flag, message):
    """Issue 22, item 26: --tile-size 0 passed the CLI's check, then the message advised None."""
    write_image(tmp_path / "in.png", np.zeros((20, 24), np.uint8))
    args = ["deblur", str(tmp_path / "in.png"), str(tmp_path / "o.png"), "--tile-size", flag]
    try:
        code = main(args)
    except SystemExit as stop:  # argparse's own check
        code = stop.code
    assert code in (1, 2)
    err = capsys.readouterr().err
    assert message in err and "None" not in err and "tile_size" not in err


def test_models_lists_each_model_once(capsys):
    """Issue 22, item 29: `napari-srn models` printed the default's paragraph twice."""
    from napari_srn import list_models

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    bundled = [name for name in list_models() if name != "default"]
    for name in bundled:
        assert out.count(f"{name}") >= 1
    assert out.count("\n    ") == len(bundled)  # one description each
    assert "(default)" in out
