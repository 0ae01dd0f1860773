"""Issue 21's curves: the synthetic validation and the real-blur scores of the runs that
fine-tune the default on realistic motion blur, against the hours each run trained, laid end
to end in the order each continues the last (default_v3, v4, v5, then v6's two arms from
v5's last checkpoint; the dropped starts between them are left out).

    python scripts/evaluate/plot_real_blur_runs.py    # -> docs/images/real_blur_runs.png

Reads each run's val.csv and train.csv (step -> its wall-clock seconds) in training_runs/ and
the measured real-blur scores in training_runs/real_blur_scores.csv.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from napari_srn.training.plot import _H, _W, _panel

REPO = Path(__file__).resolve().parents[2]
RUNS = REPO / "training_runs"
LINEAGE = ("default_v3", "default_v4", "default_v5")  # each continues the last one's end
ARMS = {"default_v6": (214, 39, 40), "default_v6_bilinear": (148, 103, 189)}  # from v5's end
INPUT_REAL, BUNDLED_REAL = 24.17, 24.52  # the 11 real pairs: blurred input, bundled default


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _hours(run: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, hours) of a run's training log."""
    rows = _rows(RUNS / run / "train.csv")
    steps = np.array([0.0] + [float(r["step"]) for r in rows])
    return steps, np.array([0.0] + [float(r["wall_s"]) / 3600 for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "images" / "real_blur_runs.png"))
    args = parser.parse_args()
    scores = _rows(RUNS / "real_blur_scores.csv")
    offset, starts = 0.0, {}
    for run in LINEAGE:
        starts[run] = offset
        offset += _hours(run)[1][-1]
    starts.update(dict.fromkeys(ARMS, offset))
    synthetic, real = [], []
    lineage_x, lineage_val, lineage_rx, lineage_real = [], [], [], []
    for run in (*LINEAGE, *ARMS):
        if not (RUNS / run / "val.csv").exists():
            continue
        steps, hours = _hours(run)
        val = _rows(RUNS / run / "val.csv")
        x = [starts[run] + np.interp(float(r["step"]), steps, hours) for r in val]
        gain = [float(r["psnr"]) - float(r["psnr_input"]) for r in val]
        mine = [r for r in scores if r["run"] == run]
        rx = [starts[run] + np.interp(float(r["step"]), steps, hours) for r in mine]
        rg = [float(r["real_pairs"]) - INPUT_REAL for r in mine]
        if run in LINEAGE:
            lineage_x += x
            lineage_val += gain
            lineage_rx += rx
            lineage_real += rg
        else:
            name = "v6 " + ("area" if run == "default_v6" else "bilinear")
            synthetic.append((name, x, gain, ARMS[run]))
            real.append((name, rx, rg, ARMS[run]))
    blue = (31, 119, 180)
    synthetic.insert(0, ("v3, v4, v5", lineage_x, lineage_val, blue))
    real.insert(0, ("v3, v4, v5", lineage_rx, lineage_real, blue))
    end = max(max(s[1], default=0) for s in synthetic)
    real.append(("", [0, end], [BUNDLED_REAL - INPUT_REAL] * 2, (127, 127, 127)))  # no room
    font = ImageFont.load_default()
    image = Image.new("RGB", (2 * _W, _H + 22), "white")
    draw = ImageDraw.Draw(image)
    heading = "issue 21: fine-tuning on realistic motion blur (v6: two arms side by side)"
    draw.text((_W, 11), heading, fill=(0, 0, 0), font=font, anchor="mm")
    sub = Image.new("RGB", (2 * _W, _H), "white")
    sdraw = ImageDraw.Draw(sub)
    xlabel = "hours of training (2-core EPYC)"
    _panel(sdraw, 0, "synthetic validation gain (dB, 4 textures)", xlabel, synthetic, False, font)
    title = "gain on the 11 real pairs (dB; grey: the bundled default)"
    _panel(sdraw, _W, title, xlabel, real, False, font)
    image.paste(sub, (0, 22))
    out = Path(args.out)
    image.save(out)
    print(out)


if __name__ == "__main__":
    main()
