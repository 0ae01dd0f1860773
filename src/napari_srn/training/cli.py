"""``napari-srn train``: argument parsing only (importing this module does not import torch).

Every :class:`~napari_srn.training.config.TrainConfig` field is an option (``--batch-size 4``
or ``--batch_size 4``); values given on the command line override the YAML file's.
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from pathlib import Path
from typing import Any

from .config import CONFIG_FILE, config_from_file, field_help

__all__ = ["add_train_parser", "run_train"]

_GROUPS = {
    "data": "data",
    "shake": "synthetic camera shake (sharp-only data)",
    "motion": "realistic motion blur (sharp-only data; a share of the synthetic samples)",
    "model": "model (default: the paper's 3-scale color network)",
    "optim": "optimisation (default: the paper's recipe)",
    "run": "run",
}

_EPILOG = """\
examples:
  # GOPRO_Large, the paper's recipe (a GPU is needed for the full run)
  napari-srn train --data GOPRO_Large/train --val-data GOPRO_Large/test --out runs/gopro
  # sharp images only, small model on a CPU, from a YAML file with an override
  napari-srn train --config configs/cpu_small.yaml --steps 2000
  # continue an interrupted run exactly
  napari-srn train --resume --out runs/gopro

The run directory receives config.yaml (the resolved config), checkpoint.pt, train.csv,
val.csv, progress.png and, at the end, model.safetensors (napari-srn deblur --model PATH).
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option once (``--batch-size N``), not with its ``--batch_size`` alias."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        flags = action.option_strings
        if len(flags) == 2 and "_" in flags[1]:
            return f"{flags[0]} {self._format_args(action, action.dest)}"
        return super()._format_action_invocation(action)


def _metavar(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is typing.Literal:
        return "{" + ",".join(args) + "}"
    if origin is tuple:
        return "LOW,HIGH"
    if args:  # Optional[...]
        return _metavar(args[0])
    return {int: "N", float: "X", str: "TEXT", bool: "{true,false}"}.get(hint, "VALUE")


def _is_bool(hint: Any) -> bool:
    return hint is bool or bool in typing.get_args(hint)


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``subparsers`` (from ``parser.add_subparsers``)."""
    p = subparsers.add_parser(
        "train",
        help="train an SRN on GoPro-style pairs, sharp images or zarr (napari_srn.train)",
        description=(
            "Train a Scale-Recurrent Network. Defaults are the paper's recipe (Tao et al. "
            "2018): 256 px crops, batch 16, Adam 1e-4 with polynomial decay (power 0.3) to "
            "zero, multi-scale loss. Options come from --config CONFIG.yaml (a mapping of "
            "field: value) and are overridden by --field value on the command line; every "
            "invalid field is reported at once. Every option also has an underscore spelling "
            "(--batch_size). Bool options accept true/false or no value (true)."
        ),
        epilog=_EPILOG,
        formatter_class=_Formatter,
    )
    p.add_argument(
        "--config",
        metavar="CONFIG.yaml",
        default=None,
        help="YAML file of field: value defaults (with --resume and no --config: "
        f"OUT/{CONFIG_FILE})",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as YAML and exit without training",
    )
    groups = {key: p.add_argument_group(title) for key, title in _GROUPS.items()}
    for name, hint, group, text, default in field_help():
        flags = [f"--{name.replace('_', '-')}"]
        if "_" in name:
            flags.append(f"--{name}")
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        shown = "required" if name == "data" else f"default: {shown}"
        kwargs: dict[str, Any] = {
            "dest": name,
            "default": argparse.SUPPRESS,
            "metavar": _metavar(hint),
            "help": f"{text} ({shown})".replace("%", "%%"),
        }
        if _is_bool(hint):
            kwargs.update(nargs="?", const="true")
        groups[group].add_argument(*flags, **kwargs)
        if default is True:
            groups[group].add_argument(
                f"--no-{name.replace('_', '-')}",
                dest=name,
                action="store_const",
                const="false",
                default=argparse.SUPPRESS,
                help=f"same as --{flags[0][2:]} false",
            )
    return p


def run_train(args: argparse.Namespace) -> int:
    """Run ``napari-srn train`` from parsed arguments; return the exit code."""
    from .config import field_help

    overrides = {name: getattr(args, name) for name, *_ in field_help() if hasattr(args, name)}
    config_path = args.config
    resume = str(overrides.get("resume", "false")).lower() in ("true", "yes", "on", "1")
    if config_path is None and resume:
        if "out" not in overrides:
            raise ValueError("--resume needs --out RUN_DIR (or --config with out: RUN_DIR)")
        config_path = Path(overrides["out"]) / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(
                f"--resume: {str(config_path)!r} does not exist; is "
                f"{overrides['out']!r} a napari-srn run directory?"
            )
    if resume:
        overrides.setdefault("overwrite", "false")  # a resumed run is never overwritten
    config = config_from_file(config_path, overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    logging.basicConfig(level=logging.INFO, format="napari-srn: %(message)s", stream=sys.stderr)
    from .loop import train

    try:
        result = train(config)
    except KeyboardInterrupt:
        print(
            f"napari-srn: interrupted; continue with `napari-srn train --resume --out "
            f"{config.out}`",
            file=sys.stderr,
        )
        return 130
    m = result.metrics
    speed = (
        ""
        if result.steps_per_s != result.steps_per_s
        # NaN: nothing left to do
        else f", {result.steps_per_s:.3g} steps/s, waited for data "
        f"{100 * result.data_wait:.0f}% of the time"
    )
    print(f"step {result.step}: train loss {m.get('train_loss')}{speed}")
    if "val_psnr" in m:
        print(
            f"validation ({m['val_images']} images): PSNR {m['val_psnr']:.2f} dB (blurred "
            f"input {m['val_psnr_input']:.2f}), SSIM {m['val_ssim']:.4f} (input "
            f"{m['val_ssim_input']:.4f})"
        )
    print(f"wrote {result.weights} (logs, plot and checkpoint in {result.run_dir})")
    return 0
