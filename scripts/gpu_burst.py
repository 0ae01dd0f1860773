"""A short GPU training burst for the default model's run, then back to the CPU.

Takes the CPU run's current checkpoint (its weights only: the GPU stage has its own optimizer
and schedule), trains the same architecture with the same synthetic-shake recipe at batch 16
and 256-px crops in bfloat16 autocast on a CUDA device for ``--minutes`` minutes, and writes a
normal run directory to ``--out`` (``checkpoint.pt``, ``train.csv``, ``val.csv``) plus
``burst.safetensors`` (float16 weights) and ``burst.json`` (steps, steps/s, seconds, device).

    python scripts/gpu_burst.py --config configs/default_v2.yaml \\
        --checkpoint training_runs/default_v2/checkpoint.pt --out runs/gpu_burst --minutes 8

The CPU run then continues from the burst as a new stage (``--init-weights
runs/gpu_burst/burst.safetensors``), see training_runs/README.md. Tested on the CPU with a
tiny config (``tests/scripts/test_gpu_burst.py``: ``--device cpu``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from napari_srn.training.config import config_from_file
from napari_srn.training.export import export_checkpoint
from napari_srn.training.loop import train


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="the CPU run's YAML config (its recipe)")
    p.add_argument("--checkpoint", required=True, help="the CPU run's checkpoint.pt")
    p.add_argument("--out", required=True, help="new folder for the burst's run")
    p.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget (8)")
    p.add_argument("--device", default="cuda", help="torch device (cuda; cpu for a test)")
    p.add_argument("--batch-size", type=int, default=16, help="the paper's 16")
    p.add_argument("--crop", type=int, default=256, help="the paper's 256")
    p.add_argument(
        "--steps", type=int, default=20_000, help="schedule length (the budget stops it earlier)"
    )
    p.add_argument("--lr", type=float, default=None, help="default: the config's")
    p.add_argument(
        "--set",
        nargs=2,
        action="append",
        default=[],
        metavar=("FIELD", "VALUE"),
        help="any other TrainConfig field, e.g. --set num_workers 8",
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"--out {out} exists: give a new folder")
    if args.minutes <= 0:
        raise SystemExit(f"--minutes must be > 0, got {args.minutes}")

    with tempfile.TemporaryDirectory() as tmp:
        init = export_checkpoint(args.checkpoint, Path(tmp) / "init.safetensors")
        overrides = {
            "out": str(out),
            "init_weights": str(init),
            "device": args.device,
            "batch_size": args.batch_size,
            "crop": args.crop,
            "steps": args.steps,
            "amp": True,
            "amp_dtype": "bfloat16",
            "resume": False,
            "progress": False,
            "checkpoint_every": 10**9,
            "val_every": 10**9,
            "name": "gpu-burst",
            **({"lr": args.lr} if args.lr is not None else {}),
            **dict(args.set),
        }
        config = config_from_file(args.config, overrides)
        start = time.perf_counter()
        deadline = start + 60 * args.minutes

        def stop_at_deadline(progress) -> bool:
            return time.perf_counter() < deadline

        result = train(config, callback=stop_at_deadline)
        seconds = time.perf_counter() - start
    weights = export_checkpoint(result.checkpoint, out / "burst.safetensors")
    summary = {
        "steps": result.step,
        "seconds": round(seconds, 1),
        "steps_per_s": round(result.steps_per_s, 3),
        "batch_size": args.batch_size,
        "crop": args.crop,
        "device": args.device,
        "weights": str(weights),
    }
    (out / "burst.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
