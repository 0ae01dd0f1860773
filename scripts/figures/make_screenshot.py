"""Screenshot of napari with the Deblur (SRN) widget: docs/images/napari_widget.png.

Opens napari, loads the sample (File > Open Sample > Blurred photo (napari-srn)), docks the
widget through the plugin manifest, runs it (compute now, on the CPU, with the bundled default
model) and saves the whole window with the input and the result side by side (grid mode).

    xvfb-run -a .venv/bin/python scripts/figures/make_screenshot.py [output.png]

A provisional model (an untrained identity, say) is flagged in the text overlay and in the
widget's model label.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "images" / "napari_widget.png"


def main(out: Path = OUT) -> Path:
    # keep the user's remembered widget settings out of it, in both directions
    os.environ["NAPARI_SRN_SETTINGS"] = str(Path(tempfile.mkdtemp()) / "widget.json")
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="napari-srn", show=True)
    viewer.window.resize(1500, 960)
    (sample,) = viewer.open_sample("napari-srn", "blurred_photo")
    _, widget = viewer.window.add_plugin_dock_widget("napari-srn", "Deblur (SRN)")
    widget.device.value = "cpu"
    widget.layer.value = sample
    widget.run()
    app = QApplication.instance()
    start = time.monotonic()
    while widget.running:
        if time.monotonic() - start > 600:
            raise TimeoutError("the deblur run did not finish in 10 minutes")
        app.processEvents()
        time.sleep(0.02)
    if widget.last_outcome != "added":
        raise RuntimeError(f"the widget run ended with {widget.last_outcome!r}")
    result = viewer.layers[-1]
    card = result.metadata["napari_srn"]
    text = viewer.canvas.overlays["text"]
    text.visible, text.font_size, text.position = True, 10, "top_center"
    text.text = f"left: input, right: output of model {card['model']}" + (
        "\n(PROVISIONAL model: do not trust its output)" if card["provisional"] else ""
    )
    viewer.canvas.grid.enabled = True
    viewer.layers.selection.active = result
    viewer.reset_view()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False, flash=False)
    viewer.close()
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
