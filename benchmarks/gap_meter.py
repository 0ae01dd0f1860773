"""How long the Qt main thread stops responding, for ``bench_widget_gaps.py`` beside it (which
tests/_napari/test_widget.py's responsiveness test runs). It imports Qt, and the widget itself never
needs it, so it is not shipped in the package."""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtCore import QTimer

__all__ = ["GapMeter"]


class GapMeter:
    """Within ``with GapMeter() as m:``, a QTimer ticks every ``interval_ms`` on the main
    thread; ``m.longest_ms`` is the longest interval between two ticks less ``interval_ms``:
    the longest time the main thread could not run its event loop."""

    def __init__(self, interval_ms: int = 50):
        self.interval = interval_ms / 1000
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def __enter__(self) -> GapMeter:
        self.ticks = [time.perf_counter()]
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.stop()
        self.ticks.append(time.perf_counter())

    @property
    def longest_ms(self) -> float:
        gaps = np.diff(self.ticks)
        return float(max(0.0, gaps.max() - self.interval) * 1000) if len(gaps) else 0.0
