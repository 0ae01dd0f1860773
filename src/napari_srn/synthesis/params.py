"""The settings of the two blur syntheses (plain dataclasses: no numpy work, no torch).

TrainConfig's ``shake`` and ``motion`` field groups take their defaults from these, and a
training run builds one of each from its config (``ShakeParams.from_config(config)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MotionParams", "ShakeParams"]


@dataclass(frozen=True)
class ShakeParams:
    """The synthetic camera shake's settings (the ``shake``-group fields of TrainConfig);
    used by :func:`napari_srn.synthesis.shake.shake`."""

    shake_size: tuple[int, int] = (9, 31)
    shake_length: tuple[float, float] = (0.5, 1.0)
    shakiness: tuple[float, float] = (0.0, 0.1)
    no_blur_fraction: float = 0.0
    gamma: float = 2.2
    highlight_gain: tuple[float, float] = (1.0, 1.0)
    clip: bool = True
    noise: tuple[float, float] = (0.0, 0.01)

    @classmethod
    def from_config(cls, config: object) -> ShakeParams:
        return cls(**{f: getattr(config, f) for f in cls.__dataclass_fields__})

    @property
    def max_size(self) -> int:
        """The largest kernel side that :func:`~napari_srn.synthesis.shake.random_kernel` can
        return."""
        lo, hi = self.shake_size
        return hi if hi % 2 else hi - 1 if hi - 1 >= lo else lo


@dataclass(frozen=True)
class MotionParams:
    """The realistic motion blur's settings (the ``motion``-group fields of TrainConfig);
    rendered by :func:`napari_srn.synthesis.motion.render`."""

    motion_fraction: float = 0.0
    motion_length: tuple[float, float] = (2.0, 64.0)
    moving_objects: tuple[int, int] = (0, 3)
    motion_highlight_gain: tuple[float, float] = (1.0, 3.0)
    linear_light: tuple[float, float] = (0.0, 1.0)
    shot_noise: tuple[float, float] = (0.0, 0.02)
    read_noise: tuple[float, float] = (0.0, 0.004)
    jpeg_fraction: float = 0.5
    jpeg_quality: tuple[int, int] = (70, 95)

    @classmethod
    def from_config(cls, config: object) -> MotionParams:
        return cls(**{f: getattr(config, f) for f in cls.__dataclass_fields__})

    @property
    def margin(self) -> int:
        """Pixels of context needed around a crop: the farthest a pixel's streak reaches."""
        return math.ceil(self.motion_length[1]) + 2
