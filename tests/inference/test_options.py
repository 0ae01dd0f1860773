"""One settings object (DeblurOptions), one way through inference/, and the generator form of
deblur_to_zarr (issue 23)."""

import ast
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from napari_srn import DeblurOptions, deblur, deblur_to_zarr, iter_deblur, iter_deblur_to_zarr
from napari_srn.inference.plan import make_plan
from napari_srn.inference.precision import Precision, resolve_precision

from ..helpers import ROOT, tiny_srn

INFERENCE = ROOT / "src" / "napari_srn" / "inference"


def test_options_check_what_they_can_without_the_model():
    with pytest.raises(TypeError, match="tile_size must be an int or None"):
        DeblurOptions(tile_size=64.0)
    with pytest.raises(ValueError, match="overlap must be >= 0"):
        DeblurOptions(overlap=-8)
    with pytest.raises(ValueError, match="precision must be one of"):
        DeblurOptions(precision="half")
    with pytest.raises(ValueError, match="in_range must be finite with low < high"):
        DeblurOptions(in_range=(1, 0))
    with pytest.raises(TypeError, match="model must be a name"):
        DeblurOptions(model=3)
    with pytest.raises(TypeError, match="channel_axis must be an int or None"):
        DeblurOptions(channel_axis="last")
    opts = DeblurOptions(tile_size=np.int64(64), in_range=(0, 255))
    assert opts.in_range == (0.0, 255.0)
    assert opts.replace(precision="float32").precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        opts.replace(precision="float64")  # a copy is checked too
    with pytest.raises(AttributeError):
        opts.tile_size = 32  # frozen


def test_options_and_keywords_give_the_same_result_and_never_both(rng):
    image = rng.random((40, 56), dtype=np.float32)
    net = tiny_srn(1)
    opts = DeblurOptions(model=net, tile_size=32, overlap=8, precision="float32")
    by_options = deblur(image, options=opts)
    by_keywords = deblur(image, model=net, tile_size=32, overlap=8, precision="float32")
    np.testing.assert_array_equal(by_options, by_keywords)
    with pytest.raises(TypeError, match=r"either as options= or as keywords.*tile_size"):
        deblur(image, options=opts, tile_size=16)
    with pytest.raises(TypeError, match="options must be a DeblurOptions"):
        iter_deblur(image, options={"model": net})


def test_the_plan_reads_the_network_once_and_keeps_the_callers_options(rng):
    net = tiny_srn(3)
    opts = DeblurOptions(model=net, channel_axis=-1, tile_size=32, precision="float32")
    plan = make_plan(rng.random((40, 40, 3), dtype=np.float32), opts)
    assert plan.options is opts
    assert (plan.facts.divisor, plan.facts.halo) == (net.divisor, net.halo)
    assert plan.facts.scales == net.config.scales and plan.facts.in_channels == 3
    assert plan.precision == resolve_precision("float32", torch.device("cpu"))


def test_a_precision_moves_to_another_device_as_the_same_arithmetic():
    cpu = Precision(torch.device("cpu"), torch.bfloat16, channels_last=True)
    assert cpu.on(torch.device("cpu")) is cpu
    with pytest.raises(ValueError, match="not supported on device 'meta'"):
        cpu.on(torch.device("meta"))
    auto32 = Precision(torch.device("cpu"), torch.float32, channels_last=True)
    moved = auto32.on(torch.device("meta"))  # channels-last only where it pays (CPU, CUDA)
    assert moved.dtype == torch.float32 and not moved.channels_last
    half = Precision(torch.device("cuda"), torch.float16, channels_last=True)
    with pytest.raises(ValueError, match="not supported on device 'cpu'"):
        half.on(torch.device("cpu"))
    assert Precision.reference().name == "float32"


def test_iter_deblur_to_zarr_yields_chunks_and_writes_what_deblur_to_zarr_writes(tmp_path, rng):
    image = rng.integers(0, 256, (2, 64, 80), dtype=np.uint8)
    opts = DeblurOptions(model=tiny_srn(1), tile_size=32, overlap=16)
    gen = iter_deblur_to_zarr(image, tmp_path / "g.zarr", options=opts, axes="tyx", batch_size=1)
    assert not (tmp_path / "g.zarr").exists()  # nothing happens before iteration begins
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            dest = stop.value
            break
    assert dest == tmp_path / "g.zarr"
    assert steps[-1].done == steps[-1].total and all(
        a.done <= b.done for a, b in itertools.pairwise(steps)
    )
    expected = deblur_to_zarr(image, tmp_path / "f.zarr", options=opts, axes="tyx")
    got, want = (zarr.open_group(str(p), mode="r") for p in (dest, expected))
    np.testing.assert_array_equal(got["0"][:], want["0"][:])


def test_closing_iter_deblur_to_zarr_leaves_a_store_that_resumes(tmp_path, rng):
    image = rng.integers(0, 256, (2, 64, 80), dtype=np.uint8)
    opts = DeblurOptions(model=tiny_srn(1), tile_size=32, overlap=16)
    gen = iter_deblur_to_zarr(image, tmp_path / "c.zarr", options=opts, axes="tyx", batch_size=1)
    for _ in range(3):
        next(gen)
    gen.close()  # cancel: the lock is released, the store stays unfinished
    status = zarr.open_group(str(tmp_path / "c.zarr"), mode="r").attrs["napari_srn"]["status"]
    assert status == "incomplete"
    resumed = deblur_to_zarr(image, tmp_path / "c.zarr", options=opts, axes="tyx")
    fresh = deblur_to_zarr(image, tmp_path / "f.zarr", options=opts, axes="tyx")
    got, want = (zarr.open_group(str(p), mode="r") for p in (resumed, fresh))
    np.testing.assert_array_equal(got["0"][:], want["0"][:])


def test_bad_arguments_to_iter_deblur_to_zarr_raise_before_iteration(tmp_path):
    with pytest.raises(ValueError, match="dimensions"):
        iter_deblur_to_zarr(np.zeros((8,), np.uint8), tmp_path / "x.zarr")


def _imports(module: Path) -> set[str]:
    """The sibling modules of inference/ that ``module`` imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_inference_imports_one_way():
    """options -> plan -> (eager | lazy) -> (api | to_zarr): no module imports one after it,
    not even inside a function (issue 23: the old loop plan -> lazy -> eager -> plan)."""
    order = {"options": 0, "plan": 1, "eager": 2, "lazy": 2, "api": 3, "to_zarr": 3}
    for name, rank in order.items():
        for dep in _imports(INFERENCE / f"{name}.py"):
            assert order.get(dep, -1) < rank, f"inference/{name}.py imports .{dep}"
    leaves = ("validate", "intensity", "precision", "memory")
    for name in leaves:
        assert _imports(INFERENCE / f"{name}.py") <= {"options", *leaves}, name


def test_dask_tasks_run_the_plans_precision_without_resolving_it_again(monkeypatch, rng):
    """The precision is resolved once, by the plan; tasks move it to their device (a store
    records what ran, not what a worker might have chosen)."""
    import dask.array as da

    import napari_srn.inference.plan as plan_module
    import napari_srn.inference.precision as precision_module

    image = da.from_array(rng.random((2, 48, 64), dtype=np.float32), chunks=(1, 48, 64))
    lazy = deblur(image, model=tiny_srn(1), tile_size=32, overlap=8, in_range=(0, 1))

    def again(*args, **kwargs):
        pytest.fail("a task resolved the precision again")

    monkeypatch.setattr(precision_module, "resolve_precision", again)
    monkeypatch.setattr(plan_module, "resolve_precision", again)
    assert lazy.compute().shape == image.shape
