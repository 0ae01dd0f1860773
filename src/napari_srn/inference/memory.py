"""How much memory this process may use: the smaller of the machine's available RAM, what its
control group (containers, SLURM jobs, systemd slices; cgroup v1 and v2, the group and every
ancestor) still allows, and what its own limits leave (``ulimit -v`` / ``RLIMIT_AS`` less the
address space in use, ``ulimit -d`` / ``RLIMIT_DATA`` less the data segment). ``psutil`` alone
reports the host's RAM inside a 1 GiB container, and nothing of a ulimit."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ADDRESS_SPACE",
    "AVAILABLE_RAM",
    "CGROUP",
    "DATA_SEGMENT",
    "available_bytes",
    "cgroup_available",
    "last_level_cache_bytes",
    "memory_limits",
    "rlimit_available",
]

#: cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages): anything above this
#: is taken as unlimited.
_UNLIMITED = 1 << 60

#: The names of :func:`memory_limits`, worded to follow "only 0.4 GB are ...".
AVAILABLE_RAM = "available in RAM"
CGROUP = "left under this process's cgroup memory limit"
ADDRESS_SPACE = "left under this process's address-space limit (ulimit -v)"
DATA_SEGMENT = "left under this process's data-segment limit (ulimit -d)"

#: Per cgroup version: the limit file, the usage file, and the reclaimable page cache in
#: ``memory.stat`` (counted in the usage, but not in use).
_CGROUP_FILES = {
    "v2": ("memory.max", "memory.current", "inactive_file"),
    "v1": ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
}


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


def _stat_value(stat: Path, key: str) -> int | None:
    """The value of ``key`` in a ``memory.stat`` file, or None."""
    try:
        for line in stat.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def _group_free(d: Path, version: str) -> int | None:
    """Bytes the cgroup at ``d`` still allows (its limit less its working set), or None when it
    sets no limit. In v1, ``hierarchical_memory_limit`` also brings in the limits of ancestors
    that are not mounted (inside a container only its own group is)."""
    limit_file, usage_file, inactive = _CGROUP_FILES[version]
    limits = [_read_int(d / limit_file)]
    if version == "v1":
        hierarchical = _stat_value(d / "memory.stat", "hierarchical_memory_limit")
        limits.append(None if hierarchical is None or hierarchical >= _UNLIMITED else hierarchical)
    set_limits = [v for v in limits if v is not None]
    if not set_limits:
        return None
    usage = _read_int(d / usage_file)
    if usage is not None:
        usage -= _stat_value(d / "memory.stat", inactive) or 0
    return max(0, min(set_limits) - (usage or 0))


def cgroup_available(
    proc_cgroup: str | Path = "/proc/self/cgroup", root: str | Path = "/sys/fs/cgroup"
) -> int | None:
    """Bytes this process's memory cgroup still allows (limit minus the working set, i.e. usage
    less reclaimable page cache, the tightest over the group and every ancestor up to the
    root, in cgroup v1 and v2), or None when no limit applies or none can be read."""
    root = Path(root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    free: list[int] = []
    for line in lines:
        hid, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        if hid == "0" and controllers == "":  # cgroup v2: one unified hierarchy
            base = root if (root / "cgroup.controllers").exists() else root / "unified"
            version = "v2"
        elif "memory" in controllers.split(","):  # cgroup v1: the memory hierarchy
            base, version = root / "memory", "v1"
        else:
            continue
        parts = Path(rel.lstrip("/")).parts
        # the group, each ancestor, the root (inside a container: its own group)
        for k in range(len(parts), -1, -1):
            left = _group_free(base.joinpath(*parts[:k]), version)
            if left is not None:
                free.append(left)
    return min(free, default=None)


def _status_bytes(status: Path) -> dict[str, int]:
    """``VmSize`` and the other ``kB`` fields of ``/proc/self/status``, in bytes ({} if absent)."""
    try:
        lines = status.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, _, value = line.partition(":")
        words = value.split()
        if len(words) == 2 and words[1] == "kB" and words[0].isdigit():
            out[name] = int(words[0]) * 1024
    return out


def rlimit_available(status: str | Path = "/proc/self/status") -> dict[str, int]:
    """What this process's own limits still leave, by name (:data:`ADDRESS_SPACE`,
    :data:`DATA_SEGMENT`): ``RLIMIT_AS`` less the address space it maps now (``VmSize``),
    ``RLIMIT_DATA`` less its data segment (``VmData``); only the limits that are set, and none
    where ``/proc`` is not there to say what is in use (not Linux)."""
    try:
        import resource
    except ImportError:  # Windows
        return {}
    used = _status_bytes(Path(status))
    out = {}
    for name, kind, field in (
        (ADDRESS_SPACE, "RLIMIT_AS", "VmSize"),
        (DATA_SEGMENT, "RLIMIT_DATA", "VmData"),
    ):
        soft, _ = resource.getrlimit(getattr(resource, kind))
        if soft != resource.RLIM_INFINITY and soft >= 0 and field in used:
            out[name] = max(0, soft - used[field])
    return out


def memory_limits() -> dict[str, int]:
    """Each bound on the memory this process can still use, in bytes, by what sets it:
    :data:`AVAILABLE_RAM` always, :data:`CGROUP`, :data:`ADDRESS_SPACE` and
    :data:`DATA_SEGMENT` where they are set."""
    import psutil

    limits = {AVAILABLE_RAM: int(psutil.virtual_memory().available)}
    group = cgroup_available()
    if group is not None:
        limits[CGROUP] = group
    limits.update(rlimit_available())
    return limits


def available_bytes() -> int:
    """Memory this process can still use: the smallest of :func:`memory_limits`."""
    return min(memory_limits().values())


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
