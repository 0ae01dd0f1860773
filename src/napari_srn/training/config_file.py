"""A training config's YAML file: read with limits, written atomically (no torch).

A config file is a few hundred bytes of ``field: value``. :func:`read_config_mapping` refuses,
before anything is built, files over :data:`MAX_CONFIG_BYTES`, nested too deeply, or whose YAML
anchors and aliases expand to more than :data:`MAX_YAML_VALUES` values ("billion laughs", a
recursive alias). :func:`write_config` writes the resolved config of a run beside its
checkpoint, with a header saying how to reuse it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["MAX_CONFIG_BYTES", "MAX_YAML_VALUES", "read_config_mapping", "write_config"]

#: A config file is a few hundred bytes: larger ones are refused unread.
MAX_CONFIG_BYTES = 1 << 20
#: Values a config file may hold once its YAML aliases are expanded (a config has about 80).
MAX_YAML_VALUES = 10_000


def read_config_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The ``field: value`` mapping of a YAML config file (an empty file: ``{}``).

    Raises FileNotFoundError for a missing file and ValueError for one that is not a mapping,
    not valid YAML or over the limits.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {str(p)!r} does not exist")
    loaded = _read_yaml(p)
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ValueError(
            f"config file {str(p)!r} must hold a mapping of field: value, "
            f"got a {type(loaded).__name__}"
        )
    return loaded


def _read_yaml(p: Path) -> Any:
    """``yaml.safe_load`` of a config file, refused (ValueError) before anything is built when
    it is over :data:`MAX_CONFIG_BYTES`, nested too deeply, or its anchors and aliases expand
    to more than :data:`MAX_YAML_VALUES` values ("billion laughs", a recursive alias)."""
    import yaml

    with p.open("rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValueError(f"config file {str(p)!r} is larger than 1 MiB; is it a config?")
    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded(node, {}, set()) > MAX_YAML_VALUES:
            raise ValueError(
                f"config file {str(p)!r} expands to more than {MAX_YAML_VALUES} values through "
                "its YAML anchors and aliases; write the fields out"
            )
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ValueError(f"config file {str(p)!r} is not valid YAML: {err}") from err
    except RecursionError:
        raise ValueError(f"config file {str(p)!r} is nested too deeply") from None
    finally:
        loader.dispose()


def _expanded(node: Any, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values YAML ``node`` holds with every alias expanded (each shared node is
    counted once per use, computed once); a node inside itself (a recursive alias) expands
    without end: over the limit."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        return MAX_YAML_VALUES + 1
    open_.add(key)
    children = node.value if isinstance(node.value, list) else []
    items = [c for pair in children for c in (pair if isinstance(pair, tuple) else (pair,))]
    sizes[key] = 1 + sum(_expanded(c, sizes, open_) for c in items)
    open_.discard(key)
    return sizes[key]


def write_config(values: dict[str, Any], path: str | os.PathLike) -> None:
    """Write a config's ``{field: value}`` (plain types) as YAML, atomically, with a header
    saying how to reuse it."""
    import yaml

    p = Path(path)
    text = (
        "# Resolved napari-srn training config (every field); reuse it with\n"
        "#   napari-srn train --config THIS_FILE [--field value ...]\n"
        + yaml.safe_dump(values, sort_keys=False)
    )
    tmp = p.with_name(p.name + ".partial")
    tmp.write_text(text)
    os.replace(tmp, p)
