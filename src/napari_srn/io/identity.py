"""Where an input lives and what it holds now: the local files a source reads (a path, a zarr
array, a memmap, or the stores behind a dask array), the refusal of a destination that is the
input, and the fingerprint that says whether an unfinished output was made from this same input
with these same settings (so it may be resumed)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["check_not_the_input", "fingerprint", "module_hash", "source_paths"]


def module_hash(net: torch.nn.Module) -> str:
    """SHA-256 of a network's parameters and buffers, by name (a module given in memory has no
    file to name it)."""
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _store_path(array: object) -> Path | None:
    """The local file or folder an opened array reads: a zarr array in a local store (zarr's
    LocalStore, or fsspec's local file system as ``da.from_zarr`` opens a path), a memmap."""
    if isinstance(array, np.memmap):
        return Path(array.filename).resolve() if array.filename else None
    store = getattr(array, "store", None)
    root = getattr(store, "root", None)
    protocol = getattr(getattr(store, "fs", None), "protocol", ())
    if root is None and "file" in ((protocol,) if isinstance(protocol, str) else protocol):
        root = getattr(store, "path", None)
    if root is None:
        return None
    return (Path(root) / (getattr(array, "path", "") or "")).resolve()


def _graph_arrays(arr: da.Array) -> list[object]:
    """The arrays a dask array reads, as its graph holds them: the values of materialized
    layers (``from_array``, ``from_zarr``) and the constant arguments of blockwise ones
    (``inline_array=True``). Tasks are not materialized."""
    found: list[object] = []
    for layer in arr.dask.layers.values():
        if hasattr(layer, "indices"):  # Blockwise: (value, None) pairs are constants
            values = [v for v, index in layer.indices if index is None]
        elif isinstance(getattr(layer, "mapping", None), dict):
            values = list(layer.mapping.values())
        else:
            continue
        found += [getattr(v, "value", v) for v in values]  # a DataNode wraps its value
    return found


def source_paths(source: object) -> list[Path]:
    """The local files or folders ``source`` reads: a path, a local zarr array or memmap, or
    those a dask array reads (found in its graph); empty for in-memory or remote data."""
    if isinstance(source, (str, os.PathLike)):
        return [Path(source).expanduser().resolve()]
    own = _store_path(source)
    if own is not None:
        return [own]
    if isinstance(source, da.Array):
        paths = {_store_path(a) for a in _graph_arrays(source)}
        return sorted(p for p in paths if p is not None)
    return []


def _within(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` is ``outer`` or lies inside it, by name or by file identity: a folder
    seen through a bind mount, or under another case on a case-insensitive file system, is
    the same folder."""
    for p in (inner, *inner.parents):
        if p == outer or (p.exists() and outer.exists() and os.path.samefile(p, outer)):
            return True
    return False


def check_not_the_input(source: object, dest: Path) -> None:
    """Refuse a destination that is the input, holds it, or lies inside it: writing (or
    replacing) it would destroy the data being read."""
    out = dest.resolve()
    for src in source_paths(source):
        holds, inside = _within(src, out), _within(out, src)
        if holds or inside:
            what = "is" if holds and inside else "contains" if holds else "is inside"
            raise ValueError(
                f"the destination {str(dest)!r} {what} the input {str(src)!r}; writing there "
                "would destroy the input. Choose a destination outside it"
            )


def _files_state(path: Path) -> str:
    """A digest of what is stored at ``path`` now: every file's name, size, modification and
    change time and inode (for a zarr store: its metadata and every chunk). A source rewritten
    in place gets another digest, so its old partial result is not resumed: even with its
    sizes and modification times set back, since the kernel sets the change time on every
    write and ``utime``, and nobody can set it back."""
    h = hashlib.sha256()
    entries = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in entries:
        st = p.stat()
        h.update(f"{p.relative_to(path) if p != path else p.name}\0{st.st_size}\0".encode())
        h.update(f"{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode())
    return h.hexdigest()


def fingerprint(source: object, arr: da.Array, settings: dict[str, Any]) -> str:
    """A digest of the input (its data, or its stores' current files) and ``settings``."""
    local = [p for p in source_paths(source) if p.exists()]
    ident: object
    if isinstance(source, np.ndarray):
        ident = hashlib.sha256(np.ascontiguousarray(source).data).hexdigest()
    elif local:  # a path, a local zarr array, or a dask array reading local stores
        ident = [arr.name if isinstance(source, da.Array) else None]
        ident += [[str(p), _files_state(p)] for p in local]
    elif hasattr(source, "store_path"):  # a zarr array or group in a remote or memory store
        ident = str(source.store_path)
    else:
        ident = arr.name  # dask's deterministic name (from_zarr: the store; from_array: data)
    text = json.dumps([ident, arr.shape, str(arr.dtype), settings], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
