"""The checks of a training config's values (no torch).

* :class:`Check`, a predicate with its message, and the builders (:func:`integer`,
  :func:`number`, :func:`pair`, ...) that each :class:`~.config.TrainConfig` field uses in its
  declaration;
* the rules that involve several fields, :data:`CROSS_CHECKS`: crops against the network's
  divisor, an odd shake size, the sizes that drive memory (:data:`LIMITS`), the architecture
  (SRNConfig's own checks), resume against overwrite;
* :func:`check_fields`, which runs both on a config's values.

Every rule returns messages ``"<field>: <text>, got <value>"``; :mod:`.config` reports them all
in one ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..model.config import SRNConfig

__all__ = [
    "AT_LEAST_ONE",
    "BOOL",
    "CROSS_CHECKS",
    "LIMITS",
    "MAX_BATCH_PIXELS",
    "MODEL_FIELDS",
    "PERIOD",
    "SHAKE_SIZE",
    "SHARE",
    "Check",
    "check_fields",
    "choice",
    "divisor_for",
    "integer",
    "number",
    "optional",
    "pair",
    "string",
]

#: Architecture fields: None means "from init_weights when given, else SRNConfig's default".
MODEL_FIELDS = (
    "channels",
    "width",
    "scales",
    "res_blocks",
    "kernel_size",
    "recurrent",
    "global_residual",
    "block",
    "up_slope",
    "pyramid",
)

# ------------------------------------------------------------------------- field rules


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:  # a finite number (YAML's .inf and .nan are not)
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class Check:
    """The rule for one field's value: ``ok(value)``, and what to say when it is broken.

    The message is ``"<field>: <text>, got <value>"``; ``ok`` must accept values of any type
    (a config built from keywords is checked before anything converts it).
    """

    ok: Callable[[Any], bool]
    text: str

    def problem(self, name: str, value: Any) -> str | None:
        """The message for field ``name`` holding ``value``, or None when it is valid."""
        return None if self.ok(value) else f"{name}: {self.text}, got {value!r}"


def integer(low: int, text: str, high: int | None = None) -> Check:
    """An integer (not a bool) >= ``low`` (and <= ``high``)."""
    return Check(lambda x: _is_int(x) and x >= low and (high is None or x <= high), text)


def number(test: Callable[[float], bool], text: str) -> Check:
    """A finite number (not a bool) that passes ``test``."""
    return Check(lambda x: _is_num(x) and test(x), text)


def optional(check: Check, text: str) -> Check:
    """None, or a value that passes ``check``."""
    return Check(lambda x: x is None or check.ok(x), text)


def choice(kind: Any, text: str) -> Check:
    """One of the values of the ``Literal`` type ``kind``."""
    values = typing.get_args(kind)
    return Check(lambda x: isinstance(x, str) and x in values, text)


def string(text: str, *refused: str) -> Check:
    """A non-empty string other than ``refused``."""
    return Check(lambda x: isinstance(x, str) and x not in ("", *refused), text)


def pair(low: float, high: float | None, integer: bool = False) -> Check:
    """A range ``(low, high)`` of two numbers (or integers) within ``[low, high]``."""
    item = _is_int if integer else _is_num

    def ok(x: Any) -> bool:
        return (
            isinstance(x, tuple)
            and len(x) == 2
            and all(item(a) for a in x)
            and low <= x[0] <= x[1]
            and (high is None or x[1] <= high)
        )

    upper = "" if high is None else f" and <= {high}"
    kind = "integers" if integer else "numbers"
    return Check(ok, f"must be two {kind} (low, high) with {low} <= low <= high{upper}")


BOOL = Check(lambda x: isinstance(x, bool), "must be true or false")
SHAKE_SIZE = pair(1, None, integer=True)  # also read by _shake_has_an_odd_size
SHARE = number(lambda x: 0 <= x <= 1, "must be in [0, 1]")
PERIOD = integer(0, "must be an integer >= 0 (0: only at the end)")
AT_LEAST_ONE = integer(1, "must be an integer >= 1")

# ------------------------------------------------------------------ cross-field checks


def divisor_for(scales: Any) -> int:
    """What crop sides must be a multiple of for a network of ``scales`` levels (None: the
    default network's; 16 for a value that is not a valid number of scales)."""
    if scales is None:
        scales = SRNConfig().scales
    return 4 * 2 ** (scales - 1) if _is_int(scales) and 1 <= scales <= 6 else 16


def _crops_suit_the_network(v: dict[str, Any]) -> list[str]:
    """Training and validation crops are multiples of the network's divisor."""
    out = []
    divisor = divisor_for(v["scales"])
    val_crop, crop = v["val_crop"], v["crop"]
    if not (_is_int(val_crop) and val_crop >= 0 and val_crop % divisor == 0):
        out.append(f"val_crop: must be 0 or a positive multiple of {divisor}, got {val_crop!r}")
    if not (_is_int(crop) and crop >= divisor and crop % divisor == 0):
        low = max(divisor, crop // divisor * divisor) if _is_int(crop) else 256
        out.append(
            f"crop: must be a positive multiple of {divisor} (the network's divisor), "
            f"got {crop!r}; try {low} or {low + divisor}"
        )
    return out


def _shake_has_an_odd_size(v: dict[str, Any]) -> list[str]:
    """Kernels have odd sides: a range of sizes must contain one."""
    low, high = v["shake_size"] if SHAKE_SIZE.ok(v["shake_size"]) else (1, 1)
    if low % 2 == 0 and low == high:
        return [f"shake_size: must contain an odd size, got {v['shake_size']!r}"]
    return []


#: Upper limits of the fields whose size drives memory (or processes), far above any sensible
#: run (the paper: width 32, 3 blocks, batch 16, 256 px crops): a few hundred bytes of YAML
#: must never ask for gigabytes. A pair's limit is on its high end.
LIMITS: dict[str, int] = {
    "width": 256,
    "res_blocks": 64,
    "kernel_size": 31,
    "batch_size": 1024,
    "crop": 4096,
    "val_crop": 8192,
    "num_workers": 64,
    "image_cache": 4096,
    "shake_size": 511,
    "moving_objects": 64,
}
#: The most pixels in one batch (``batch_size x crop x crop``): 16 crops of 4096 x 4096.
MAX_BATCH_PIXELS = 2**28


def _beyond(name: str, value: Any) -> bool:
    """Whether ``value`` (a number, or a pair's high end) exceeds ``LIMITS[name]``."""
    high = value[-1] if isinstance(value, tuple) and value else value
    return _is_num(high) and high > LIMITS[name]


def _within_limits(v: dict[str, Any]) -> list[str]:
    """The fields that size memory stay under :data:`LIMITS` (checked before anything is
    allocated), and a batch under :data:`MAX_BATCH_PIXELS`."""
    out = [
        f"{name}: must be at most {limit} (more would not fit in memory), got {v[name]!r}"
        for name, limit in LIMITS.items()
        if _beyond(name, v[name])
    ]
    batch, crop = v["batch_size"], v["crop"]
    if _is_int(batch) and _is_int(crop) and batch * crop * crop > MAX_BATCH_PIXELS:
        out.append(
            f"batch_size x crop x crop: must be at most {MAX_BATCH_PIXELS} pixels per batch "
            f"(16 crops of 4096 x 4096), got {batch} x {crop} x {crop}"
        )
    return out


def _architecture(v: dict[str, Any]) -> list[str]:
    """The model fields that are set pass SRNConfig's own checks (one message per field;
    those beyond :data:`LIMITS` are reported there)."""
    try:
        SRNConfig(
            **{
                k: v[k]
                for k in MODEL_FIELDS
                if v[k] is not None and not (k in LIMITS and _beyond(k, v[k]))
            }
        )
    except ValueError as err:
        lines = [line.strip(" -") for line in str(err).splitlines()[1:]]
        return [f"{text.split(' ')[0]}: {text}" for text in lines]
    return []


def _resume_or_overwrite(v: dict[str, Any]) -> list[str]:
    """A run is either continued or started again, not both."""
    if v["resume"] is True and v["overwrite"] is True:
        return [
            "resume: resume and overwrite exclude each other (resume continues the "
            "run in out, overwrite starts it again), got both"
        ]
    return []


#: The rules that involve several fields, run after each field's own check.
CROSS_CHECKS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    _crops_suit_the_network,
    _shake_has_an_odd_size,
    _within_limits,
    _architecture,
    _resume_or_overwrite,
)


def check_fields(fields: Iterable[dataclasses.Field], v: dict[str, Any]) -> list[str]:
    """Every invalid value of ``v`` (of the right types, or wrong ones) as messages: each
    field's own :class:`Check` (``metadata["check"]``, None for none), then
    :data:`CROSS_CHECKS`."""
    out = []
    for f in fields:
        check: Check | None = f.metadata["check"]
        problem = check.problem(f.name, v[f.name]) if check is not None else None
        if problem is not None:
            out.append(problem)
    for rule in CROSS_CHECKS:
        out += rule(v)
    return out
