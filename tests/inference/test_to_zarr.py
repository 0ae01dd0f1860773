"""deblur_to_zarr: OME-Zarr output, resume after a crash, overwrite rules, a dask cluster."""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_srn import Cancelled, DeblurOptions, deblur, deblur_to_zarr, save_model
from napari_srn.cli import main
from napari_srn.model.srn import SRN
from napari_srn.model.weights import ModelCard

from ..helpers import tiny_srn


class Flaky(SRN):
    """Counts level passes and raises after ``fail_after`` of them (None: never)."""

    def __init__(self, config):
        super().__init__(config)
        self.calls = 0
        self.fail_after: int | None = None

    def level(self, x, prev, state=None):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("injected failure")
        return super().level(x, prev, state)


def flaky(seed: int = 0) -> Flaky:
    """tiny_srn(seed=seed) as a Flaky network (same weights)."""
    net = Flaky(tiny_srn(seed=seed).config)
    net.load_state_dict(tiny_srn(seed=seed).state_dict())
    return net


def assert_same_result(a, b) -> None:
    """Two stores hold the same full-resolution result, to the byte."""
    np.testing.assert_array_equal(
        zarr.open_array(str(a / "0"))[:], zarr.open_array(str(b / "0"))[:]
    )


@pytest.fixture
def stack(tmp_path, rng):
    image = rng.integers(0, 256, (2, 100, 140, 3), dtype=np.uint8)
    z = zarr.create_array(
        str(tmp_path / "src.zarr"), shape=image.shape, chunks=(1, 50, 50, 3), dtype="uint8"
    )
    z[:] = image
    return image, str(tmp_path / "src.zarr")


ARGS = {"channel_axis": -1, "tile_size": 48, "overlap": 16}


# ome-zarr's reader uses its own deprecated Scaler internally
@pytest.mark.filterwarnings("ignore:Call to deprecated class Scaler:DeprecationWarning")
def test_writes_an_ome_zarr_image_equal_to_the_eager_result(tmp_path, stack):
    image, src = stack
    net = tiny_srn()
    seen = []
    dest = deblur_to_zarr(
        src, tmp_path / "out.zarr", model=net, **ARGS, progress=lambda d, t: seen.append((d, t))
    )
    group = zarr.open_group(str(dest), mode="r")
    attrs = dict(group.attrs)
    assert attrs["napari_srn"]["status"] == "complete"
    assert attrs["napari_srn"]["model"]["tile_size"] == 48
    assert attrs["napari_srn"]["model"]["precision"] in ("float32", "bfloat16")
    axes = attrs["ome"]["multiscales"][0]["axes"]
    assert [a["name"] for a in axes] == ["t", "c", "y", "x"]
    out = group["0"][:]
    assert out.shape == (2, 3, 100, 140) and out.dtype == np.uint8
    assert group["0"].chunks[-2:] == (40, 48)  # the tile grid
    eager = deblur(image, model=net, **ARGS)
    assert np.abs(np.moveaxis(out, 1, -1).astype(int) - eager).max() <= 1
    assert seen[-1][0] == seen[-1][1] > 2
    assert not (dest / ".napari-srn-work").exists()
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    node = next(iter(Reader(parse_url(str(dest)))()))
    assert node.data[0].shape == out.shape


def test_a_killed_run_resumes_and_equals_an_uninterrupted_one(tmp_path, stack):
    _, src = stack
    net = Flaky(tiny_srn().config)
    net.load_state_dict(tiny_srn().state_dict())
    whole = deblur_to_zarr(src, tmp_path / "whole.zarr", model=net, **ARGS)
    per_run = net.calls
    net.calls, net.fail_after = 0, per_run // 2
    with pytest.raises(RuntimeError, match="injected failure"):
        deblur_to_zarr(src, tmp_path / "resumed.zarr", model=net, **ARGS)
    group = zarr.open_group(str(tmp_path / "resumed.zarr"), mode="r")
    assert group.attrs["napari_srn"]["status"] == "incomplete"
    assert "ome" not in group.attrs  # never mistaken for a finished image
    net.calls, net.fail_after = 0, None
    deblur_to_zarr(src, tmp_path / "resumed.zarr", model=net, **ARGS)
    assert 0 < net.calls < per_run  # finished chunks were skipped
    np.testing.assert_array_equal(
        zarr.open_array(str(tmp_path / "resumed.zarr" / "0"))[:],
        zarr.open_array(str(whole / "0"))[:],
    )
    net.calls = 0
    deblur_to_zarr(src, tmp_path / "resumed.zarr", model=net, **ARGS)  # complete: nothing to do
    assert net.calls == 0


def test_cancel_between_tiles_leaves_a_resumable_store(tmp_path, stack):
    _, src = stack
    net = tiny_srn()
    with pytest.raises(Cancelled, match="resume"):
        deblur_to_zarr(src, tmp_path / "c.zarr", model=net, **ARGS, cancel=lambda: True)
    assert zarr.open_group(str(tmp_path / "c.zarr")).attrs["napari_srn"]["status"] == "incomplete"
    deblur_to_zarr(src, tmp_path / "c.zarr", model=net, **ARGS)
    assert zarr.open_group(str(tmp_path / "c.zarr")).attrs["napari_srn"]["status"] == "complete"


def test_never_overwrites_something_else(tmp_path, stack):
    _, src = stack
    dest = tmp_path / "out.zarr"
    deblur_to_zarr(src, dest, model=tiny_srn(), **ARGS)
    with pytest.raises(FileExistsError, match="different napari-srn result"):
        deblur_to_zarr(src, dest, model=tiny_srn(seed=9), **ARGS)
    deblur_to_zarr(src, dest, model=tiny_srn(seed=9), **ARGS, overwrite=True)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    for overwrite in (False, True):  # not even when asked: napari-srn did not write it
        with pytest.raises(FileExistsError, match="napari-srn did not write"):
            deblur_to_zarr(src, other, model=tiny_srn(), **ARGS, overwrite=overwrite)
    assert (other / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize(
    ("dest", "what"), [("src.zarr", "is"), (".", "contains"), ("src.zarr/out.zarr", "is inside")]
)
def test_the_destination_can_never_be_the_input(tmp_path, stack, dest, what, capsys):
    image, src = stack
    with pytest.raises(ValueError, match=f"{what} the input"):
        deblur_to_zarr(src, tmp_path / dest, model=tiny_srn(), **ARGS, overwrite=True)
    opened = zarr.open_array(src, mode="r")
    with pytest.raises(ValueError, match="would destroy the input"):
        deblur_to_zarr(opened, tmp_path / dest, model=tiny_srn(), **ARGS, overwrite=True)
    if dest.endswith(".zarr"):  # the CLI writes OME-Zarr for a .zarr output
        args = ["deblur", src, str(tmp_path / dest), "--overwrite", "--no-progress"]
        assert main(args) == 1
        assert "would destroy the input" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_array(src, mode="r")[:], image)  # untouched


@pytest.mark.parametrize(
    ("dest", "exc", "match"),
    [
        ("no/such/folder/out.zarr", FileNotFoundError, "does not exist"),
        ("a_file/out.zarr", FileNotFoundError, "does not exist"),
    ],
)
def test_unwritable_destinations(tmp_path, stack, dest, exc, match):
    _, src = stack
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(exc, match=match):
        deblur_to_zarr(src, tmp_path / dest, model=tiny_srn(), **ARGS)


def test_read_only_destination(tmp_path, stack, monkeypatch):
    """A folder we may not write into (simulated: root may write anywhere)."""
    import napari_srn.inference.to_zarr as tz

    _, src = stack

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(zarr, "open_group", refuse)
    with pytest.raises(PermissionError, match="cannot write"):
        tz.deblur_to_zarr(src, tmp_path / "ro.zarr", model=tiny_srn(), **ARGS)


def test_axes_are_checked_and_channels_move_first(tmp_path, rng):
    image = rng.integers(0, 4000, (3, 40, 48), dtype=np.uint16)
    with pytest.raises(ValueError, match="has 2 letters"):
        deblur_to_zarr(image, tmp_path / "a.zarr", model=tiny_srn(1), axes="yx")
    dest = deblur_to_zarr(image, tmp_path / "z.zarr", model=tiny_srn(1), axes="zyx")
    axes = zarr.open_group(str(dest)).attrs["ome"]["multiscales"][0]["axes"]
    assert [a["name"] for a in axes] == ["z", "y", "x"]


def test_cli_writes_zarr_and_resumes(tmp_path, stack, capsys):
    _, src = stack
    weights = tmp_path / "tiny.safetensors"
    save_model(tiny_srn(), weights, ModelCard(name="tiny", description="test"))
    args = [
        "deblur",
        src,
        str(tmp_path / "cli.zarr"),
        "--model",
        str(weights),
        "--tile-size",
        "64",  # a multiple of both models' divisors (tiny: 16; the default, 4 scales: 32)
        "--overlap",
        "16",
        "--channel-axis",
        "-1",
        "--no-progress",
    ]
    assert main(args) == 0
    assert main(args) == 0  # the same command again: already complete, nothing to do
    group = zarr.open_group(str(tmp_path / "cli.zarr"), mode="r")
    assert group.attrs["napari_srn"]["model"]["name"] == "tiny"
    assert main([*args[:-1], "--model", "default"]) == 1
    assert "different napari-srn result" in capsys.readouterr().err


@pytest.mark.slow
def test_runs_on_a_local_dask_cluster_loading_the_model_once_per_worker(tmp_path, stack):
    distributed = pytest.importorskip("distributed")
    image, src = stack
    weights = tmp_path / "tiny.safetensors"
    save_model(tiny_srn(), weights, ModelCard(name="tiny", description="test"))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        dest = deblur_to_zarr(src, tmp_path / "dist.zarr", model=str(weights), **ARGS)

        def loads():
            from napari_srn.inference.lazy import _load_ref

            return _load_ref.cache_info().misses

        per_worker = client.run(loads)
        lazy = deblur(src, model=str(weights), **ARGS)
        got = lazy.compute()
    assert sorted(per_worker.values()) == [1, 1]  # loaded once per worker process
    local = deblur(image, model=str(weights), **ARGS)
    assert (
        np.abs(np.moveaxis(zarr.open_array(str(dest / "0"))[:], 1, -1).astype(int) - local).max()
        <= 1
    )
    assert np.abs(got.astype(int) - local).max() <= 1
    assert isinstance(lazy, da.Array)


@pytest.mark.filterwarnings("ignore:Call to deprecated class Scaler:DeprecationWarning")
def test_napari_opens_the_output(tmp_path, rng):
    """napari reads OME-Zarr through napari-ome-zarr (installed with the [napari] extra)."""
    reader = pytest.importorskip("napari_ome_zarr")
    image = rng.integers(0, 256, (2, 64, 80), dtype=np.uint8)
    dest = deblur_to_zarr(image, tmp_path / "nap.zarr", model=tiny_srn(1), axes="tyx", tile_size=32)
    read = reader.napari_get_reader(str(dest))
    assert read is not None
    ((data, meta, kind),) = read(str(dest))
    assert kind == "image"
    assert [np.asarray(level).shape for level in data] == [(2, 64, 80), (2, 32, 40), (2, 16, 20)]
    assert meta.get("multiscale", True)


def _halve(a: np.ndarray) -> np.ndarray:
    """Reference 2x2 mean (odd last row/column repeated), rounded to uint8."""
    h, w = a.shape[-2:]
    a = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, h % 2), (0, w % 2)], mode="edge")
    cells = a.reshape(*a.shape[:-2], a.shape[-2] // 2, 2, a.shape[-1] // 2, 2)
    return np.rint(cells.mean(axis=(-3, -1))).astype(a.dtype)


def test_output_validates_and_has_a_resumable_pyramid(tmp_path, rng):
    """ome-zarr-models accepts the store; levels 1.. are 2x2 means down to about one tile,
    and a run cancelled while writing them resumes to the uninterrupted result."""
    import warnings

    models = pytest.importorskip("ome_zarr_models")
    image = rng.integers(0, 256, (2, 300, 200), dtype=np.uint8)
    args = {"model": tiny_srn(1), "axes": "tyx", "tile_size": 64, "precision": "float32"}
    dest = deblur_to_zarr(image, tmp_path / "p.zarr", **args)
    group = zarr.open_group(str(dest), mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a validation warning fails the test too
        models.open_ome_zarr(group)
    assert group.attrs["napari_srn"]["model"]["precision"] == "float32"
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    assert [d["path"] for d in datasets] == ["0", "1", "2", "3"]
    assert datasets[2]["coordinateTransformations"][0]["scale"] == [1.0, 4.0, 4.0]
    levels = [group[d["path"]] for d in datasets]
    assert [a.shape for a in levels] == [(2, 300, 200), (2, 150, 100), (2, 75, 50), (2, 38, 25)]
    assert all(a.metadata.dimension_names == ("t", "y", "x") for a in levels)
    for fine, coarse in itertools.pairwise(levels):
        np.testing.assert_array_equal(coarse[:], _halve(fine[:]))

    seen = []

    def last_chunk_cancels():  # cancel just before the very last chunk (of the pyramid)
        return bool(seen) and seen[-1][0] == seen[-1][1] - 1

    with pytest.raises(Cancelled):
        deblur_to_zarr(
            image,
            tmp_path / "r.zarr",
            **args,
            batch_size=1,
            cancel=last_chunk_cancels,
            progress=lambda d, t: seen.append((d, t)),
        )
    assert "ome" not in zarr.open_group(str(tmp_path / "r.zarr"), mode="r").attrs
    resumed = zarr.open_group(str(deblur_to_zarr(image, tmp_path / "r.zarr", **args)), mode="r")
    for k in "0123":
        np.testing.assert_array_equal(resumed[k][:], group[k][:])


def test_one_writer_per_destination_and_a_stale_lock_is_taken_over(tmp_path, stack):
    import json
    import os
    import socket
    import subprocess
    import sys

    from napari_srn.io.ome_zarr import DestinationLocked

    _, src = stack
    dest = tmp_path / "out.zarr"
    lock = tmp_path / "out.zarr.lock"
    host = socket.gethostname()
    lock.write_text(json.dumps({"pid": os.getpid(), "host": host}))  # a live writer
    with pytest.raises(DestinationLocked, match=f"pid {os.getpid()}"):
        deblur_to_zarr(src, dest, model=tiny_srn(), **ARGS)
    assert not dest.exists() and lock.exists()  # nothing touched, the owner's lock kept
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": host}))  # its process is gone
    deblur_to_zarr(src, dest, model=tiny_srn(), **ARGS)
    assert zarr.open_group(str(dest)).attrs["napari_srn"]["status"] == "complete"
    assert not lock.exists()  # released at the end


def test_resume_redoes_a_damaged_or_lost_finished_chunk(tmp_path, stack):
    _, src = stack
    net = flaky()
    whole = deblur_to_zarr(src, tmp_path / "whole.zarr", model=net, **ARGS)
    per_run, net.calls = net.calls, 0
    net.fail_after = per_run - 2  # dies near the end: most of dest/0 is written and marked
    with pytest.raises(RuntimeError, match="injected failure"):
        deblur_to_zarr(src, tmp_path / "r.zarr", model=net, **ARGS)
    chunks = sorted(
        p for p in (tmp_path / "r.zarr" / "0").rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    assert len(chunks) >= 2
    data = bytearray(chunks[0].read_bytes())
    data[len(data) // 2] ^= 0xFF  # a bit flip on disk in a chunk marked done
    chunks[0].write_bytes(bytes(data))
    chunks[1].unlink()  # and a finished chunk lost (it would read back as zeros)
    net.fail_after = None
    assert_same_result(deblur_to_zarr(src, tmp_path / "r.zarr", model=net, **ARGS), whole)


def test_overwrite_replaces_the_old_result_only_once_the_new_one_is_complete(tmp_path, stack):
    from napari_srn.io.ome_zarr import sink, store

    _, src = stack
    dest = tmp_path / "out.zarr"
    deblur_to_zarr(src, dest, model=tiny_srn(), **ARGS)
    old = zarr.open_array(str(dest / "0"))[:]
    net = flaky(seed=9)
    net.fail_after = 3
    with pytest.raises(RuntimeError, match="injected failure"):
        deblur_to_zarr(src, dest, model=net, **ARGS, overwrite=True)
    # the old result is still there, whole and complete; the new one waits beside it
    assert zarr.open_group(str(dest)).attrs["napari_srn"]["status"] == "complete"
    np.testing.assert_array_equal(zarr.open_array(str(dest / "0"))[:], old)
    assert (tmp_path / "out.zarr.napari-srn-new").is_dir()

    real_swap = sink.swap

    def cut_between_renames(new, final, fingerprint):  # the machine dies after the 1st rename
        import os

        (final / store.RETIRED).write_text(fingerprint)  # as swap stamps it
        os.replace(final, store._retired(final))
        raise KeyboardInterrupt

    net.fail_after = None
    sink.swap = cut_between_renames
    try:
        with pytest.raises(KeyboardInterrupt):
            deblur_to_zarr(src, dest, model=net, **ARGS, overwrite=True)
    finally:
        sink.swap = real_swap
    assert not dest.exists()  # (the moment of the cut)
    deblur_to_zarr(src, dest, model=net, **ARGS, overwrite=True)  # recovers, then swaps
    new = zarr.open_array(str(dest / "0"))[:]
    expected = deblur_to_zarr(src, tmp_path / "fresh.zarr", model=tiny_srn(seed=9), **ARGS)
    np.testing.assert_array_equal(new, zarr.open_array(str(expected / "0"))[:])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.zarr"]


def test_a_damaged_work_folder_is_rebuilt(tmp_path, stack):
    _, src = stack
    net = flaky()
    whole = deblur_to_zarr(src, tmp_path / "whole.zarr", model=net, **ARGS)
    per_run, net.calls = net.calls, 0
    net.fail_after = per_run // 2
    with pytest.raises(RuntimeError, match="injected failure"):
        deblur_to_zarr(src, tmp_path / "r.zarr", model=net, **ARGS)
    work = tmp_path / "r.zarr" / ".napari-srn-work"
    metas = sorted(work.rglob("zarr.json"))
    assert metas
    metas[0].write_text("{garbled")  # a coarse level's metadata
    for chunk in (p for p in work.rglob("*") if p.is_file() and p.parent.name.isdigit()):
        chunk.write_bytes(b"\0" * 7)  # and its chunks
        break
    net.fail_after = None
    assert_same_result(deblur_to_zarr(src, tmp_path / "r.zarr", model=net, **ARGS), whole)


def test_a_source_rewritten_at_the_same_path_is_not_resumed(tmp_path, stack):
    image, src = stack
    net = flaky()
    net.fail_after = 3
    with pytest.raises(RuntimeError, match="injected failure"):
        deblur_to_zarr(src, tmp_path / "r.zarr", model=net, **ARGS)
    z = zarr.open_array(src, mode="r+")
    z[1] = 255 - image[1]  # another version of the data, same path, shape and dtype
    net.fail_after = None
    with pytest.raises(FileExistsError, match="different napari-srn result"):
        deblur_to_zarr(src, tmp_path / "r.zarr", model=net, **ARGS)
    for source in (src, zarr.open_array(src, mode="r")):  # a path or an opened zarr array
        out = deblur_to_zarr(source, tmp_path / "r.zarr", model=net, **ARGS, overwrite=True)
        np.testing.assert_array_equal(
            zarr.open_array(str(out / "0"))[:],
            np.moveaxis(deblur(z[:], model=tiny_srn(), **ARGS), -1, 1),
        )


_SLOW_WRITER = """
import sys, time
from napari_srn import deblur_to_zarr
src, dest, weights = sys.argv[1:4]
def slow(done, total):
    time.sleep(0.3)  # a long job: holds the destination for seconds
deblur_to_zarr(src, dest, model=weights, channel_axis=-1, tile_size=48, overlap=16,
               progress=slow, batch_size=1)
"""


def test_a_second_writer_is_refused_and_a_killed_writers_lock_is_taken_over(tmp_path, stack):
    import os
    import signal
    import subprocess
    import sys
    import time

    from napari_srn.io.ome_zarr import DestinationLocked

    _, src = stack
    weights = tmp_path / "tiny.safetensors"
    save_model(tiny_srn(), weights, ModelCard(name="tiny", description="test"))
    dest = tmp_path / "out.zarr"
    lock = tmp_path / "out.zarr.lock"
    first = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, src, str(dest), str(weights)])
    try:
        for _ in range(600):  # until it holds the lock and has written a chunk or two
            if lock.exists() and list((dest / ".napari-srn-work" / "done").rglob("*")):
                break
            time.sleep(0.05)
        assert lock.exists(), "the first writer never took the lock"
        with pytest.raises(DestinationLocked, match=f"pid {first.pid}"):
            deblur_to_zarr(src, dest, model=str(weights), **ARGS)
        os.kill(first.pid, signal.SIGKILL)  # dies holding the lock, mid-run
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert lock.exists()
    deblur_to_zarr(src, dest, model=str(weights), **ARGS)  # a dead owner's lock is taken over
    assert not lock.exists()
    reference = deblur_to_zarr(src, tmp_path / "ref.zarr", model=str(weights), **ARGS)
    for level in ("0", "1"):
        if (reference / level).exists():
            np.testing.assert_array_equal(
                zarr.open_array(str(dest / level))[:], zarr.open_array(str(reference / level))[:]
            )
    assert zarr.open_group(str(dest)).attrs["napari_srn"]["status"] == "complete"


def test_an_image_files_gray_and_alpha_go_to_zarr_with_the_alpha_untouched(tmp_path):
    """iter_deblur_to_zarr(alpha=True): what an image file says of its last channel."""
    from napari_srn.inference.to_zarr import iter_deblur_to_zarr, run_to_zarr

    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    alpha = np.where(rng.random((40, 48)) > 0.5, 255, 0).astype(np.uint8)
    image = np.stack([gray, alpha], -1)
    kept = image.copy()
    steps = iter_deblur_to_zarr(
        image, tmp_path / "o.zarr", options=DeblurOptions(channel_axis=-1), alpha=True
    )
    assert run_to_zarr(steps, tmp_path / "o.zarr") == tmp_path / "o.zarr"
    stored = zarr.open_group(str(tmp_path / "o.zarr"), mode="r")["0"][:]  # c, y, x
    np.testing.assert_array_equal(stored[1], alpha)
    np.testing.assert_array_equal(stored[0], deblur(gray))
    np.testing.assert_array_equal(image, kept)
    with pytest.raises(ValueError, match="3-channel model"):  # two channels, no alpha said
        iter_deblur_to_zarr(image, tmp_path / "p.zarr", options=DeblurOptions(channel_axis=-1))
