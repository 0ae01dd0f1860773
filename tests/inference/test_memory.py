"""Memory limits: the cgroup (v1 and v2) allowance lowers the automatic tile, and an explicit
tile that cannot fit is refused before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_srn import auto_tile_size, deblur
from napari_srn.inference import plan
from napari_srn.inference.memory import cgroup_available

from ..helpers import ROOT, tiny_srn

GIB = 1 << 30


def _v2(tmp_path, limit="max", current=0, parent_limit="max", inactive=0):
    root = tmp_path / "cgroup"
    (root / "job" / "step").mkdir(parents=True)
    (root / "cgroup.controllers").write_text("memory cpu\n")
    (root / "job" / "memory.max").write_text(f"{parent_limit}\n")
    (root / "job" / "step" / "memory.max").write_text(f"{limit}\n")
    (root / "job" / "step" / "memory.current").write_text(f"{current}\n")
    (root / "job" / "step" / "memory.stat").write_text(f"anon 5\ninactive_file {inactive}\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/job/step\n")
    return proc, root


def test_cgroup_v2_limit_minus_the_working_set(tmp_path):
    proc, root = _v2(tmp_path, limit=GIB, current=GIB // 2, inactive=GIB // 4)
    assert cgroup_available(proc, root) == GIB - GIB // 2 + GIB // 4
    proc, root = _v2(tmp_path / "b", parent_limit=GIB // 8)  # a parent's limit is tighter
    assert cgroup_available(proc, root) == GIB // 8
    proc, root = _v2(tmp_path / "c")  # "max" everywhere: no limit
    assert cgroup_available(proc, root) is None


def test_cgroup_v1_limit_and_its_no_limit_value(tmp_path):
    root = tmp_path / "cgroup"
    (root / "memory").mkdir(parents=True)
    proc = tmp_path / "proc_cgroup"
    proc.write_text("12:pids:/\n4:memory:/slurm/job_1\n0::/\n")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_available(proc, root) is None
    (root / "memory" / "memory.limit_in_bytes").write_text(f"{2 * GIB}\n")
    (root / "memory" / "memory.usage_in_bytes").write_text(f"{GIB}\n")
    (root / "memory" / "memory.stat").write_text(f"total_inactive_file {GIB // 2}\n")
    assert cgroup_available(proc, root) == GIB + GIB // 2
    assert cgroup_available(tmp_path / "missing", root) is None


def test_the_automatic_tile_follows_the_memory_a_container_allows(monkeypatch):
    net = torch.nn.Module()
    net.config = type("C", (), {"width": 32})()
    monkeypatch.setattr(plan, "last_level_cache_bytes", lambda: None)
    monkeypatch.setattr(plan, "memory_limits", lambda: {"RAM": 24 * GIB})
    big = auto_tile_size(net, torch.device("cpu"), precision="float32")
    monkeypatch.setattr(plan, "memory_limits", lambda: {"RAM": 24 * GIB, "cgroup": GIB})
    small = auto_tile_size(net, torch.device("cpu"), precision="float32")
    assert big == plan.CPU_TILE_CAP
    assert small == 720  # sqrt(0.5 GiB / (32 B x width 32)) = 724, to a multiple of 8


def test_an_explicit_tile_that_cannot_fit_is_refused_before_any_work(monkeypatch):
    net = tiny_srn()
    monkeypatch.setattr(plan, "memory_limits", lambda: {"RAM": GIB // 4})
    image = np.zeros((4000, 4000), np.uint8)  # only its shape is looked at
    ran = []
    monkeypatch.setattr(net, "forward", lambda *a, **k: ran.append(1))
    with pytest.raises(ValueError, match=r"tile_size=4000 needs about .* GB .* use tile_size="):
        deblur(image, model=net, tile_size=4000)
    assert not ran
    message = ""
    try:
        deblur(image, model=net, tile_size=4000)
    except ValueError as err:
        message = str(err)
    fits = int(message.split("use tile_size=")[1].split()[0])
    plan.check_tile_fits(
        plan.NetFacts.of(net),
        fits,
        image.shape,
        1,
        plan.resolve_precision("float32", torch.device("cpu")),
    )
    # a tile larger than the image costs only the image: not refused
    deblur(np.zeros((16, 16), np.uint8), model=tiny_srn(), tile_size=4000)


def test_the_cpu_tile_stays_near_the_last_level_cache(monkeypatch, tmp_path):
    from napari_srn.inference.memory import last_level_cache_bytes

    for i, (kind, size) in enumerate([("Data", "48K"), ("Instruction", "32K"), ("Unified", "48M")]):
        (tmp_path / f"index{i}").mkdir()
        (tmp_path / f"index{i}" / "type").write_text(kind + "\n")
        (tmp_path / f"index{i}" / "size").write_text(size + "\n")
    assert last_level_cache_bytes(tmp_path) == 48 << 20
    assert last_level_cache_bytes(tmp_path / "none") is None
    net = torch.nn.Module()
    net.config = type("C", (), {"width": 16})()
    monkeypatch.setattr(plan, "memory_limits", lambda: {"RAM": 24 * GIB})
    monkeypatch.setattr(plan, "last_level_cache_bytes", lambda: 48 << 20)
    cpu = torch.device("cpu")
    # float32, width 16: sqrt(1.25 x 48 MiB / 64 B) = 991 -> 896; bfloat16 halves the bytes
    assert auto_tile_size(net, cpu, precision="float32") == 896
    if plan.resolve_precision("bfloat16", cpu).activation_bytes == 2:
        assert auto_tile_size(net, cpu, precision="bfloat16") == plan.CPU_TILE_CAP
    monkeypatch.setattr(plan, "last_level_cache_bytes", lambda: 1 << 20)  # a tiny cache
    assert auto_tile_size(net, cpu, precision="float32") == plan.CPU_TILE_MIN


def test_the_machine_is_described_for_benchmarks_and_notes():
    import importlib.util

    path = ROOT / "benchmarks" / "machine.py"  # a benchmarks' helper
    spec = importlib.util.spec_from_file_location("machine", path)
    machine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(machine)
    cpu_peak_tflops, describe_machine = machine.cpu_peak_tflops, machine.describe_machine
    text = describe_machine()
    assert "cores" in text and f"torch {torch.__version__}" in text
    peak = cpu_peak_tflops()
    assert peak is None or 0 < peak["float32"] <= peak["bfloat16"]


# --------------------------------------------------------------------------- issue 22, item 20


def _v1_group(root, rel, limit=None, usage=0, stat=""):
    d = root / "memory" / rel
    d.mkdir(parents=True, exist_ok=True)
    (d / "memory.limit_in_bytes").write_text(f"{limit or 9223372036854771712}\n")
    (d / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (d / "memory.stat").write_text(stat)


def test_cgroup_v1_counts_every_ancestor(tmp_path):
    # a SLURM job (4 GiB) inside a parent slice of 1 GiB: the parent's limit is what holds
    root, proc = tmp_path / "cgroup", tmp_path / "proc_cgroup"
    proc.write_text("12:pids:/\n4:memory:/slurm/uid_1/job_1\n0::/\n")
    _v1_group(root, "")
    _v1_group(root, "slurm", limit=GIB, usage=GIB // 4)
    _v1_group(root, "slurm/uid_1")  # no limit of its own
    _v1_group(root, "slurm/uid_1/job_1", limit=4 * GIB, usage=GIB // 8)
    assert cgroup_available(proc, root) == GIB - GIB // 4
    # inside a container only its own group is mounted (at the root); the kernel's
    # hierarchical_memory_limit still says what the ancestors allow
    root, proc = tmp_path / "container", tmp_path / "proc_container"
    proc.write_text("4:memory:/docker/abc\n")
    _v1_group(root, "", usage=GIB // 8, stat=f"hierarchical_memory_limit {GIB // 2}\n")
    assert cgroup_available(proc, root) == GIB // 2 - GIB // 8


# --------------------------------------------------------------------------- issue 22, item 19


def test_the_address_space_and_data_limits_count(monkeypatch, tmp_path):
    import resource

    from napari_srn.inference import memory

    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmSize:\t  700000 kB\nVmData:\t  250000 kB\n")
    limits = {resource.RLIMIT_AS: 1_200_000_000, resource.RLIMIT_DATA: 800_000_000}
    monkeypatch.setattr(
        resource, "getrlimit", lambda kind: (limits.get(kind, resource.RLIM_INFINITY),) * 2
    )
    left = memory.rlimit_available(status)
    assert left == {
        memory.ADDRESS_SPACE: 1_200_000_000 - 700_000 * 1024,
        memory.DATA_SEGMENT: 800_000_000 - 250_000 * 1024,
    }
    assert memory.rlimit_available(tmp_path / "no-proc") == {}  # not Linux: cannot say
    limits.clear()  # unlimited: nothing to say
    assert memory.rlimit_available(status) == {}
    monkeypatch.setattr(memory, "rlimit_available", lambda: left)
    assert memory.memory_limits()[memory.ADDRESS_SPACE] == 1_200_000_000 - 700_000 * 1024
    assert memory.available_bytes() <= 1_200_000_000 - 700_000 * 1024


def test_an_explicit_tile_names_the_limit_it_cannot_fit_under(monkeypatch):
    from napari_srn.inference import memory

    left = {memory.AVAILABLE_RAM: 24 * GIB, memory.ADDRESS_SPACE: GIB // 4}
    monkeypatch.setattr(plan, "memory_limits", lambda: left)
    with pytest.raises(ValueError, match=r"tile_size=4000 .* address-space limit .*tile_size="):
        deblur(np.zeros((4000, 4000), np.uint8), model=tiny_srn(), tile_size=4000)
