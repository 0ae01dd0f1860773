"""Make a training run's weights the bundled default model (run from the repo root).

    python scripts/release/ship_default.py runs/default_v2 --name srn-color-w16k3  # finished run
    python scripts/release/ship_default.py runs/default_v2 --name srn-color-w16k3 --interim

(``--interim``: the run's latest checkpoint instead of its final weights.) A run that continues
a chain of fine-tunes names the starting weights of the stages before its own ``init_weights``,
oldest first, so that the card counts every stage's steps and hours:

    python scripts/release/ship_default.py runs/default_v6 --name srn-color-w24k3 \
        --earlier runs/default_v2_step39552.safetensors \
        runs/default_v3_step10171_4scales.safetensors \
        runs/default_v4_step8276_revived_w24.safetensors

Scores the weights on the held-out benchmark (``napari_srn.evaluation``, which
scripts/evaluate/eval_deblur.py runs) next to the blurred input and the non-blind Wiener baseline,
and on the second held-out set (``--set mate``), the 12-bit grey stack and the unblurred
photos, each against the currently bundled default; and on real blur (``--real``, by default
``../shared/realblur``: evaluation only, never in the repository). A model that is not better
than the bundled default on the real pairs (when that folder is there) and on both held-out
sets, that makes the grey stack worse than its input, or that scores under 40 dB on unblurred
photos, is refused (``--force`` ships anyway). Then it writes them as float16 safetensors
into the package with a model card that carries the data, kernel model, steps, wall time,
hardware, validation, benchmark and real-blur tables, makes them the registry's
``default``, and writes the benchmark's before/after grid (docs/images/eval_grid.png) and table
(docs/images/eval_default.json). Other bundled files are removed from the registry and the
package. Nothing is written before the benchmark has run, and a model that does not beat the
blurred input is refused.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import yaml

from napari_srn import evaluation as ev
from napari_srn import load_model
from napari_srn.model.weights import ModelCard, save_model
from napari_srn.training.export import export_checkpoint

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "src" / "napari_srn" / "model" / "weights"
IMAGES = ROOT / "docs" / "images"
#: How the card names each kind of stage block.
BLOCK_NAMES = {"resblock": "ResBlocks", "nafblock": "NAFBlocks", "gateblock": "GateBlocks"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="training run directory")
    p.add_argument("--name", required=True, help="name of the bundled model, e.g. srn-color-w16k3")
    p.add_argument("--interim", action="store_true", help="ship the run's latest checkpoint")
    p.add_argument("--force", action="store_true", help="ship even if not better than the default")
    p.add_argument(
        "--earlier",
        nargs="+",
        type=Path,
        default=[],
        help="the starting weights of the stages before the run's init_weights, oldest first",
    )
    p.add_argument(
        "--real",
        type=Path,
        default=ROOT.parent / "shared" / "realblur",
        help="folder of real blurred/sharp pairs to judge on (evaluation only; skipped with a "
        "warning when absent)",
    )
    p.add_argument(
        "--data-text",
        default=(
            "30 scenes: the photographs among the wallpapers of Debian's "
            "plasma-workspace-wallpapers (13), lomiri-wallpapers-16.04 (13) and -20.04 (1), at "
            "1280 and 640 px on the long side, and scikit-image's grey moon, coins and cell "
            "(scripts/data/prepare_photos.py)"
        ),
        help="what the training photos were (the card's training_data starts with it)",
    )
    p.add_argument(
        "--init-hardware",
        default="CPU Intel Xeon (AMX), 2 threads, torch 2.13.0, float32",
        help="hardware of the run that made init_weights, when its card does not say",
    )
    p.add_argument(
        "--hardware",
        default=(
            "2-core CPUs, torch 2.13.0: AMD EPYC (Zen 4, AVX512-BF16) in bfloat16 autocast and "
            "Intel Xeon (Ice Lake, no bfloat16) in float32"
        ),
        help="what the run trained on, when the weights' card does not say (an interim "
        "checkpoint's card does not)",
    )
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.interim:
            source = export_checkpoint(
                args.run / "checkpoint.pt", Path(tmp) / "interim.safetensors"
            )
        else:
            source = args.run / "model.safetensors"
        model = load_model(source, device="cpu")
    run_cfg = yaml.safe_load((args.run / "config.yaml").read_text())

    pairs = ev.make_benchmark()
    rows, best, wiener_out = ev.baselines(pairs)
    blurred, wiener = rows["blurred input"], rows[f"Wiener, true kernel (balance {best})"]
    outputs = ev.restore(model, pairs)
    ours = ev.score(outputs, pairs)
    on_sharp = ev.on_sharp_input(model, pairs)
    table = {
        "benchmark": (
            f"scripts/evaluate/eval_deblur.py: {len(pairs)} pairs from {len(ev.PHOTOS)} "
            "scikit-image colour photos (never trained on), central crops up to 384 px, seeded "
            "camera-shake kernels 13-25 px, Gaussian noise sigma 0.5-1 %, uint8"
        ),
        "blurred_input": {"psnr": round(blurred[0], 3), "ssim": round(blurred[1], 4)},
        f"wiener_true_kernel_balance_{best}": {
            "psnr": round(wiener[0], 3),
            "ssim": round(wiener[1], 4),
        },
        "model_blind": {"psnr": round(ours[0], 3), "ssim": round(ours[1], 4)},
        "model_on_sharp_photos": {"psnr": round(on_sharp[0], 3), "ssim": round(on_sharp[1], 4)},
        "gain_over_input_db": round(ours[0] - blurred[0], 3),
        "gain_over_wiener_db": round(ours[0] - wiener[0], 3),
    }
    mate = ev.make_benchmark(ROOT / ev.HELDOUT_MATE)
    mate_rows, _, _ = ev.baselines(mate)
    mate_ours = ev.score(ev.restore(model, mate), mate)
    gray_in, gray_ours = ev.gray16_scores(model, pairs)
    table["heldout_mate"] = {
        "blurred_input": {"psnr": round(mate_rows["blurred input"][0], 3)},
        "model_blind": {"psnr": round(mate_ours[0], 3), "ssim": round(mate_ours[1], 4)},
    }
    table["gray16_stack"] = {
        "blurred_input": {"psnr": round(gray_in[0], 3)},
        "model_blind": {"psnr": round(gray_ours[0], 3), "ssim": round(gray_ours[1], 4)},
    }
    current = load_model("default", device="cpu")
    cur_main = ev.score(ev.restore(current, pairs), pairs)
    cur_mate = ev.score(ev.restore(current, mate), mate)
    table["bundled_before"] = {
        "name": current.card.name,
        "psnr": round(cur_main[0], 3),
        "heldout_mate_psnr": round(cur_mate[0], 3),
    }
    real = real_blur(model, current, args.real)
    if real:
        table["real_blur"] = real
    print(json.dumps(table, indent=1))
    if ours[0] <= blurred[0]:
        raise SystemExit("refused: the model does not beat the blurred input on the benchmark")
    worse = []
    if ours[0] <= cur_main[0]:
        worse.append(f"benchmark {ours[0]:.2f} dB <= bundled {cur_main[0]:.2f}")
    if mate_ours[0] <= cur_mate[0]:
        worse.append(f"mate held-out {mate_ours[0]:.2f} dB <= bundled {cur_mate[0]:.2f}")
    if gray_ours[0] < gray_in[0]:
        worse.append(f"grey stack {gray_ours[0]:.2f} dB < its input {gray_in[0]:.2f}")
    if on_sharp[0] < 40:
        worse.append(f"unblurred photos {on_sharp[0]:.2f} dB < 40")
    if real and real["model_gain_db"] <= real["bundled_gain_db"]:
        worse.append(
            f"real pairs +{real['model_gain_db']:.2f} dB <= bundled +{real['bundled_gain_db']:.2f}"
        )
    if worse and not args.force:
        raise SystemExit("refused (--force ships anyway): " + "; ".join(worse))

    card = model.card
    cfg = model.config
    # a fine-tuned run: the card counts the steps, hours and hardware of both stages
    steps, hours, hardware = (
        card.training_steps,
        card.wall_time_hours,
        card.hardware or args.hardware,
    )
    stages = ""
    if args.earlier:  # a chain: every stage's card counts
        chain = [*args.earlier, Path(run_cfg["init_weights"])]
        cards = [load_model(path, device="cpu").card for path in chain]
        steps += sum(c.training_steps for c in cards)
        hours += sum(c.wall_time_hours for c in cards)
        hardware = args.hardware
        stages = (
            f" {len(chain) + 1} stages, each from the last one's weights: "
            + ", ".join(
                f"{c.training_steps} steps ({c.wall_time_hours:.2f} h; {path.name})"
                for c, path in zip(cards, chain, strict=True)
            )
            + f", then {card.training_steps} steps ({card.wall_time_hours:.2f} h)."
        )
    elif run_cfg.get("init_weights"):
        init = load_model(run_cfg["init_weights"], device="cpu").card
        init_hw = init.hardware or args.init_hardware
        steps += init.training_steps
        hours += init.wall_time_hours
        hardware = f"stage 1: {init_hw}; stage 2: {hardware}"
        stages = (
            f" Two stages: {init.training_steps} steps from scratch ({init.wall_time_hours:.2f} h; "
            f"{run_cfg['init_weights']}), then {card.training_steps} steps fine-tuning "
            f"({card.wall_time_hours:.2f} h)."
        )
    new_card = ModelCard(
        name=args.name,
        description=(
            f"Colour SRN (Tao et al. 2018) at width {cfg.width}, {cfg.scales} scales, "
            f"{cfg.res_blocks} {BLOCK_NAMES[cfg.block]} per "
            f"stage, {cfg.kernel_size}x{cfg.kernel_size} convolutions, predicting a correction "
            f"added to its input (global residual){extras_text(cfg)}, trained by napari-srn "
            "on a 2-core CPU with "
            f"{blur_text(run_cfg)} (run {args.run.name}).{stages} Benchmark "
            f"(blind, held-out photos): {ours[0]:.2f} dB / {ours[1]:.3f} SSIM vs "
            f"{blurred[0]:.2f} dB for the blurred input and {wiener[0]:.2f} dB for non-blind "
            "Wiener given the true kernel; second held-out set (mate-backgrounds): "
            f"{mate_ours[0]:.2f} dB vs {mate_rows['blurred input'][0]:.2f} for its input."
            + real_text(real)
            + limits_text(run_cfg)
        ),
        training_data=(
            args.data_text
            + ": "
            + card.training_data
            + ("" if "textured" in card.training_data else "; most textured of 4 crops")
        ),
        training_steps=steps,
        wall_time_hours=round(hours, 3),
        hardware=hardware,
        metrics={**card.metrics, "benchmark": table},
        provisional=False,
    )
    dest = WEIGHTS / f"{args.name}.safetensors"
    sha = save_model(model, dest, new_card, half=True, overwrite=True)
    registry = {"default": args.name, "models": {args.name: {"file": dest.name, "sha256": sha}}}
    for old in WEIGHTS.glob("*.safetensors"):
        if old != dest:
            old.unlink()
    (WEIGHTS / "registry.json").write_text(json.dumps(registry, indent=2) + "\n")
    (IMAGES / "eval_default.json").write_text(json.dumps(table, indent=1) + "\n")

    import imageio.v3 as iio

    iio.imwrite(IMAGES / "eval_grid.png", ev.grid_image(pairs, wiener_out, outputs))
    print(
        f"shipped {dest.name} ({dest.stat().st_size / 1e6:.1f} MB) sha256={sha}; wrote docs/images"
    )


def real_blur(model, current, root: Path) -> dict:
    """The real-pair figures of ``model`` and the bundled ``current`` ({} without the folder)."""
    if not root.is_dir():
        print(f"WARNING: {root} not found: the model is not judged on real blur")
        return {}
    sets = {k: v for k, v in ev.real_sets(root).items() if k in ev.REAL_PAIRS}
    scores = ev.real_baselines(sets) + ev.real_scores(model, sets) + ev.real_scores(current, sets)
    gains = ev.real_gains(scores)
    table = ev.real_table(scores)
    mine, theirs = ev.model_name(model), ev.model_name(current)
    if mine == theirs:
        raise SystemExit(f"the new model has the bundled model's name {mine!r}: rename it")
    inputs = [v for k, v in table.items() if k.startswith("real pairs") and "blurred input" in k]
    return {
        "set": f"{root.name}: {sum(len(v) for v in sets.values())} real pairs (GoPro frames, "
        "RSBlur/RB2V/REDS crops); evaluation only",
        "blurred_input_psnr": round(inputs[0][0], 3),
        "model_gain_db": round(gains[mine], 3),
        "bundled_gain_db": round(gains[theirs], 3),
        "rows": {k: [round(v[0], 3), round(v[1], 4)] for k, v in table.items()},
    }


def blur_text(run_cfg: dict) -> str:
    """What the run's training blur was, for the card."""
    if run_cfg.get("motion_fraction"):
        return (
            "synthetic camera shake and realistic motion blur (a moving camera and moving "
            f"objects through random tone curves, {run_cfg['motion_fraction']:.0%} of samples)"
        )
    return "synthetic camera shake"


def extras_text(cfg) -> str:
    """The architecture's departures from the paper beyond width, scales and blocks."""
    extras = []
    if cfg.up_slope:
        extras.append(f"LeakyReLUs of slope {cfg.up_slope:g} after the decoder's upsamplings")
    if cfg.pyramid == "area":
        extras.append("coarser scales shrunk by the mean of the pixels covered")
    return "".join(f", {e}" for e in extras)


def real_text(real: dict) -> str:
    if not real:
        return ""
    return (
        f" Real blur ({real['set']}): +{real['model_gain_db']:.2f} dB over the blurred input "
        f"({real['blurred_input_psnr']:.2f} dB)."
    )


def limits_text(run_cfg: dict) -> str:
    if run_cfg.get("motion_fraction"):
        top = run_cfg.get("motion_length", [0, 64])[1]
        return (
            f" Blur up to about {top:.0f} px; far from published models trained on GoPro "
            "pairs with GPUs; defocus and noise-dominated images are outside what it has seen."
        )
    return (
        " Trained on uniform (spatially invariant) synthetic shake up to 27 px: strong "
        "non-uniform blur, defocus and noise-dominated images are outside what it has seen."
    )


if __name__ == "__main__":
    main()
