"""How long napari's main thread stops responding while the Deblur (SRN) widget works.

A QTimer ticks every 50 ms on the main thread; the longest interval between two ticks, less the
50 ms, is the longest freeze. Measured in a real viewer (run under ``xvfb-run -a`` without a
display) for "compute now" on a 512 x 512 RGB photo and for stepping through a lazy stack of
512 x 512 frames with the default model::

    xvfb-run -a python benchmarks/bench_widget_gaps.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _process_until(app, cond, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the widget did not finish in time")
        app.processEvents()
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="lazy stack length")
    args = parser.parse_args()

    import napari

    # a Qt timer for this benchmark only: a module beside it (Qt, so not in the package)
    from gap_meter import GapMeter
    from qtpy.QtWidgets import QApplication
    from skimage import data

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    # the widget as a user opens it (through the plugin's manifest); its controls are its API
    _, widget = viewer.window.add_plugin_dock_widget("napari-srn", "Deblur (SRN)")
    photo = data.astronaut()[:512, :512]
    layer = viewer.add_image(photo, name="photo", rgb=True)
    widget.layer.value = layer
    widget.mode.value = "compute now"
    with GapMeter() as meter:
        widget.run()
        _process_until(app, lambda: not widget.running, 600)
    print(
        "compute now, 512 x 512 RGB, first run (imports torch, loads the model): longest "
        f"main-thread gap {meter.longest_ms:.0f} ms"
    )
    with GapMeter() as computing:
        widget.run()
        _process_until(
            app,
            lambda: widget.progress.max and widget.progress.value == widget.progress.max,
            600,
        )
    with GapMeter() as adding:
        _process_until(app, lambda: not widget.running, 600)
    print(
        "compute now, 512 x 512 RGB, second run: longest main-thread gap "
        f"{computing.longest_ms:.0f} ms while computing, {adding.longest_ms:.0f} ms adding the "
        "result layer (napari's own cost)"
    )

    grey = data.camera()[:512, :512]
    stack = np.stack([np.roll(grey, 7 * t, axis=1) for t in range(args.frames)])
    layer = viewer.add_image(stack, name="stack")
    widget.layer.value = layer
    widget.mode.value = "lazy"
    with GapMeter() as meter:
        widget.run()
        _process_until(app, lambda: not widget.running, 600)
        result = viewer.layers["stack (deblurred)"]
        frames = result.data
        first = viewer.dims.current_step[0]
        _process_until(app, lambda: frames.ready((first,)), 600)
    print(
        "lazy, preparing and showing the first frame: longest main-thread gap "
        f"{meter.longest_ms:.0f} ms"
    )
    with GapMeter() as meter:
        for t in range(args.frames):
            viewer.dims.set_current_step(0, t)
            _process_until(app, lambda t=t: frames.ready((t,)), 600)
            app.processEvents()
    print(
        f"lazy, stepping through {args.frames} frames of 512 x 512: longest main-thread gap "
        f"{meter.longest_ms:.0f} ms"
    )
    viewer.close()


if __name__ == "__main__":
    main()
