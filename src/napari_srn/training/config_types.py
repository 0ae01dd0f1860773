"""A training config's values from text, and its types as text (no torch).

YAML files and the command line give strings (``"16"``, ``"true"``, ``"9,31"``, ``"none"``);
:func:`convert_fields` turns a mapping of them into each :class:`~.config.TrainConfig` field's
type, with one message per unknown key or value it cannot convert. :func:`parameters_section`
writes the class's numpydoc ``Parameters`` from the same type hints and the fields' help.

Hand-written rather than pydantic or cattrs: docs/dependencies.md says why.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import textwrap
import types
import typing
from typing import Any, Literal, Union

__all__ = ["convert_fields", "convert_value", "parameters_section", "type_text"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def convert_fields(data: dict[str, Any], hints: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``data``'s values converted to the types in ``hints``, and the problems: a message per
    unknown key (naming the closest field) and per value that cannot be converted."""
    problems, values = [], {}
    for key, value in data.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), list(hints), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{key}: unknown field{hint}")
            continue
        try:
            values[key] = convert_value(key, value, hints[key])
        except ValueError as err:
            problems.append(f"{key}: {err}")
    return values, problems


def convert_value(name: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` (possibly a string) to the type ``hint``; ValueError if it cannot."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if typing.get_origin(inner[0]) is Literal and value in typing.get_args(inner[0]):
            return value  # e.g. recurrent: "none" is a value, not a missing one
        if value is None or (
            isinstance(value, str) and value.strip().lower() in ("none", "null", "~", "")
        ):
            return None
        return convert_value(name, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ValueError(f"must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        items = value
        if isinstance(value, str):
            items = [s for s in value.strip().strip("[]()").replace(",", " ").split() if s]
        if not isinstance(items, (list, tuple)) or len(items) != len(args):
            raise ValueError(f"must be {len(args)} values like '{_example(args)}', got {value!r}")
        return tuple(convert_value(name, v, a) for v, a in zip(items, args, strict=True))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ValueError(f"must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            pass
        try:
            number = float(str(value).strip())
        except ValueError:
            number = float("nan")
        if number.is_integer():
            return int(number)
        raise ValueError(f"must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, bool):
            raise ValueError(f"must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, (str, os.PathLike)):
            return str(value)
        raise ValueError(f"must be a string, got {value!r}")
    raise ValueError(f"cannot convert {value!r} to {hint}")  # pragma: no cover


def _example(args: tuple[Any, ...]) -> str:
    return ",".join("1" if a is int else "0.5" for a in args)


def type_text(hint: Any) -> str:
    """A type as numpydoc writes it: ``{'a', 'b'}``, ``(int, int)``, ``float or None``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "{" + ", ".join(repr(a) for a in args) + "}"
    if origin in (Union, types.UnionType):
        return " or ".join(type_text(a) for a in args if a is not type(None)) + " or None"
    if origin is tuple:
        return "(" + ", ".join(type_text(a) for a in args) + ")"
    return getattr(hint, "__name__", str(hint))


def parameters_section(cls: Any, hints: dict[str, Any]) -> str:
    """The numpydoc ``Parameters`` section of dataclass ``cls``: each field's type (from
    ``hints``), default and ``help`` (from its metadata)."""
    lines = ["", "", "Parameters", "----------"]
    for f in dataclasses.fields(cls):
        lines.append(f"{f.name} : {type_text(hints[f.name])}, optional")
        text = f"Default ``{f.default!r}``; {f.metadata['help']}."
        lines += textwrap.wrap(text, 88, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)
