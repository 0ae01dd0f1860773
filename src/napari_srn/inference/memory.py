"""How much memory this process may use: the smaller of the machine's available RAM and what
its control group (containers, SLURM jobs, systemd slices; cgroup v1 and v2) still allows.
``psutil`` alone reports the host's RAM inside a 1 GiB container."""

from __future__ import annotations

from pathlib import Path

__all__ = ["available_bytes", "cgroup_available", "last_level_cache_bytes"]

#: cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages): anything above this
#: is taken as unlimited.
_UNLIMITED = 1 << 60


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, ValueError):
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _UNLIMITED else value


def _inactive_file(stat: Path, key: str) -> int:
    """Page cache the kernel can reclaim (counted in a cgroup's usage, but not in use)."""
    try:
        for line in stat.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def cgroup_available(
    proc_cgroup: str | Path = "/proc/self/cgroup", root: str | Path = "/sys/fs/cgroup"
) -> int | None:
    """Bytes this process's memory cgroup still allows (limit minus the working set, i.e. usage
    less reclaimable page cache, the tightest over the group and its ancestors), or None when
    no limit applies or none can be read."""
    root = Path(root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    best: int | None = None

    def consider(limit: int | None, usage: int | None) -> None:
        nonlocal best
        if limit is not None:
            free = max(0, limit - (usage or 0))
            best = free if best is None else min(best, free)

    for line in lines:
        hid, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        rel = rel.lstrip("/")
        if hid == "0" and controllers == "":  # cgroup v2: one unified hierarchy
            base = root if (root / "cgroup.controllers").exists() else root / "unified"
            parts = Path(rel).parts
            for k in range(len(parts), -1, -1):  # the group and each ancestor
                d = base.joinpath(*parts[:k])
                usage = _read_int(d / "memory.current")
                if usage is not None:
                    usage -= _inactive_file(d / "memory.stat", "inactive_file")
                consider(_read_int(d / "memory.max"), usage)
        elif "memory" in controllers.split(","):  # cgroup v1
            base = root / "memory"
            for d in {base / rel, base}:  # inside a container the group is often the root
                usage = _read_int(d / "memory.usage_in_bytes")
                if usage is not None:
                    usage -= _inactive_file(d / "memory.stat", "total_inactive_file")
                consider(_read_int(d / "memory.limit_in_bytes"), usage)
    return best


def available_bytes() -> int:
    """Memory this process can still use: available RAM, lowered to the cgroup's allowance."""
    import psutil

    free = int(psutil.virtual_memory().available)
    group = cgroup_available()
    return free if group is None else min(free, group)


def last_level_cache_bytes(root: str | Path = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """Size of the CPU's largest cache (L3 on servers) from sysfs, or None where unknown."""
    best = None
    for index in Path(root).glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            size = int(text.rstrip("KMG")) * scale
        except ValueError:
            continue
        best = size if best is None else max(best, size)
    return best
