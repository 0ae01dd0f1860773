"""The ``napari-srn`` command: argument parsing only; the work is done by the library."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _channel_axis(text: str) -> int | str | None:
    if text == "auto":
        return "auto"
    if text == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--channel-axis must be 'auto', 'none' or an integer, got {text!r}"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _tile_size(text: str) -> int:
    value = _positive_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(
            "--tile-size must be a positive integer (a multiple of 32 for the bundled model), "
            "got 0; leave --tile-size out to choose it from free memory"
        )
    return value


#: The library's words (keyword arguments, None) as the command line's (flags), in order.
_CLI_WORDS = [
    (
        r"\bor None to choose from free memory",
        "or leave --tile-size out to choose from free memory",
    ),
    (r"\bor None to choose automatically", "or leave --device out to choose automatically"),
    (r"\bor device=None\b", "or leave --device out"),
    (r"\bleave tile_size unset\b", "leave --tile-size out"),
    (r", or None for a grayscale image", ", or none for a grayscale image"),
    (r"\boverwrite=True \(--overwrite on the command line\)", "--overwrite"),
    (r"\boverwrite=True\b", "--overwrite"),
    (r"\bchannel_axis=None\b", "--channel-axis none"),
    (r"\b(tile_size|channel_axis|precision|device|overlap)=('?)([^\s',;)]+)\2", r"--\1 \3"),
    (r"(?<![\w/.'-])(tile_size|channel_axis)(?![\w/.'-])", r"--\1"),
    (r"\. Pass in_range=.*$", "."),  # no --in-range flag
]


def cli_words(message: str) -> str:
    """A library message in the command line's words: ``tile_size=100`` as ``--tile-size
    100``, ``None`` as leaving a flag out (the CLI cannot take None)."""
    import re

    for pattern, replacement in _CLI_WORDS:
        message = re.sub(pattern, replacement, message)
    return re.sub(r"--(tile|channel)_(size|axis)", r"--\1-\2", message)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-srn",
        description="Remove camera shake and motion blur with the Scale-Recurrent Network.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "deblur",
        help="deblur an image file (tif, png, jpg), or the embedded sample with --sample",
        description=(
            "Deblur INPUT into OUTPUT (format from the suffix: .tif for any dtype, .png for "
            "8/16 bit, .jpg for 8 bit, .zarr for an OME-Zarr image written tile by tile, "
            "resumable: run the same command again after an interruption). INPUT may be an "
            "image file or a zarr store (read lazily). With --sample OUTPUT_DIR, deblur the "
            "embedded blurred photo and write blurred.png, deblurred.png and side_by_side.png."
        ),
    )
    d.add_argument("input", nargs="?", help="image file to deblur")
    d.add_argument(
        "output", nargs="?", help="file to write (never overwritten without --overwrite)"
    )
    d.add_argument(
        "--sample", metavar="OUTPUT_DIR", help="deblur the embedded sample into OUTPUT_DIR"
    )
    d.add_argument(
        "--model",
        default="default",
        help="bundled model name (see `napari-srn models`) or a .safetensors file",
    )
    d.add_argument(
        "--tile-size",
        type=_tile_size,
        default=None,
        help="tile side in pixels, a multiple of 32 for the bundled model (default: from free "
        "memory)",
    )
    d.add_argument(
        "--overlap",
        type=_positive_int,
        default=None,
        help="context pixels on each tile side (default: the model's halo)",
    )
    d.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if available, else CPU)"
    )
    d.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16", "float16"),
        default="auto",
        help="arithmetic of the network: auto (bfloat16 on CPUs and GPUs that compute it "
        "natively, several times faster; float32 elsewhere), float32 (the reference), "
        "bfloat16, float16 (CUDA only)",
    )
    d.add_argument(
        "--channel-axis",
        type=_channel_axis,
        default="auto",
        help="axis of RGB(A) samples: auto (from the file), none, or an integer",
    )
    d.add_argument(
        "--axes",
        default=None,
        help="names of the input's axes for a .zarr output, e.g. tyx or zyxc "
        "(default: yx, preceded by t or tz, with c at the channel axis)",
    )
    d.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    d.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    d.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub.add_parser("models", help="list the bundled models and what they are")
    from .training.cli import add_train_parser

    add_train_parser(sub)
    return parser


def _is_zarr(path: str) -> bool:
    p = Path(path)
    return p.suffix.lower() == ".zarr" or (
        p.is_dir() and any((p / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))
    )


def _ngff_letters(axes: str | None, ndim: int, cax: int | None) -> str | None:
    """A TIFF's axes (tifffile's letters) as NGFF axis names, when they make valid ones."""
    from .io.ome_zarr import ngff_axes

    if not axes:
        return None
    try:
        return ngff_axes(axes.lower().replace("s", "c"), ndim, cax)
    except ValueError:
        return None  # e.g. tifffile's Q (unknown): the usual guess is made instead


@dataclass
class _Input:
    """What the command line knows of INPUT before any work: a file's data (or a zarr store's
    path, read lazily), its channel axis, alpha and axis names, dtype and shape."""

    image: Any
    axis: int | None
    alpha: bool
    file_axes: str | None
    dtype: Any
    shape: tuple[int, ...]
    is_file: bool


def _read_input(args: argparse.Namespace) -> _Input:
    """INPUT as :class:`_Input`, with ``--channel-axis`` checked against it."""
    import numpy as np

    if _is_zarr(args.input):
        from .io.zarr import open_lazy

        lazy = open_lazy(args.input)  # metadata only
        src = _Input(args.input, None, False, None, lazy.dtype, lazy.shape, False)
    else:
        from .io import open_image

        info = open_image(args.input)
        data = info.data
        src = _Input(data, info.channel_axis, info.alpha, info.axes, data.dtype, data.shape, True)
    if args.channel_axis != "auto":
        src.alpha, src.axis = False, args.channel_axis
        if src.axis is not None:  # out of range, or too few axes: said now, in flags
            from .inference.validate import normalize_channel_axis

            shaped = np.broadcast_to(np.empty((), np.uint8), src.shape)  # no memory
            src.axis = normalize_channel_axis(shaped, src.axis)
    return src


def _deblur_file(args: argparse.Namespace) -> int:
    if not args.input or not args.output:
        raise ValueError("give INPUT and OUTPUT files, or --sample OUTPUT_DIR")
    out = Path(args.output)
    src = _read_input(args)
    if out.suffix.lower() == ".zarr":
        return _deblur_to_zarr(args, src, out)
    from .io.files import check_output

    # before the work, not after it
    check_output(
        out,
        src.dtype,
        overwrite=args.overwrite,
        shape=src.shape,
        channel_axis=src.axis,
        source=args.input if src.is_file else None,
    )
    result = _deblur_image(args, src)
    from .io import write_image

    write_image(
        out,
        result,
        channel_axis=src.axis,
        overwrite=args.overwrite,
        axes=src.file_axes,
        alpha=src.alpha,
    )
    print(f"wrote {out}")
    return 0


def _options(args: argparse.Namespace, **changes: Any) -> Any:
    """The flags' settings as a :class:`~napari_srn.DeblurOptions`."""
    from .inference.options import DeblurOptions

    settings = {
        "model": args.model,
        "tile_size": args.tile_size,
        "overlap": args.overlap,
        "device": args.device,
        "precision": args.precision,
    }
    return DeblurOptions(**{**settings, **changes})


def _deblur_to_zarr(args: argparse.Namespace, src: _Input, out: Path) -> int:
    from .inference.to_zarr import iter_deblur_to_zarr, run_to_zarr

    steps = iter_deblur_to_zarr(
        src.image,
        out,
        options=_options(args, channel_axis=src.axis),
        axes=args.axes or _ngff_letters(src.file_axes, len(src.shape), src.axis),
        overwrite=args.overwrite,
        alpha=True if src.alpha else None,  # None: from the shape, as deblur_to_zarr decides
    )
    run_to_zarr(steps, out, progress=not args.no_progress)
    print(f"wrote {out}")
    return 0


def _deblur_image(args: argparse.Namespace, src: _Input) -> Any:
    """The deblurred image, in memory (a file's alpha channel copied through as it is)."""
    from .inference.api import deblur, deblur_image

    options = _options(args, channel_axis=src.axis)
    progress = not args.no_progress
    if src.is_file:
        alpha = True if src.alpha else None  # None: from the shape, as deblur decides
        return deblur_image(src.image, options, alpha=alpha, progress=progress)
    result = deblur(src.image, options=options)  # a zarr store: lazy
    from dask.diagnostics import ProgressBar

    if args.no_progress:
        return result.compute()
    with ProgressBar(out=sys.stderr):
        return result.compute()


def _deblur_sample(args: argparse.Namespace) -> int:
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio

    from .inference.api import deblur
    from .io import write_image
    from .model.weights import load_model
    from .sample import blurred_sample, sharp_sample

    folder = Path(args.sample)
    names = ("blurred.png", "deblurred.png", "side_by_side.png")
    existing = [n for n in names if (folder / n).exists()]
    if existing and not args.overwrite:
        raise FileExistsError(f"{existing} already exist in {str(folder)!r}; pass --overwrite")
    model = load_model(args.model, device=args.device)
    blurred = blurred_sample()
    options = _options(args, model=model, channel_axis=-1, device=None)  # model: on its device
    sharp = deblur(blurred, options=options, progress=not args.no_progress)
    folder.mkdir(parents=True, exist_ok=True)
    gap = np.full((blurred.shape[0], 8, 3), 255, np.uint8)
    for name, img in zip(
        names, (blurred, sharp, np.concatenate([blurred, gap, sharp], 1)), strict=True
    ):
        write_image(folder / name, img, channel_axis=-1, overwrite=args.overwrite)
    truth = sharp_sample()
    card = model.card
    flag = " [PROVISIONAL]" if card.provisional else ""
    print(f"model {card.name} (sha256 {(model.sha256 or '')[:12]}){flag}")
    print(
        f"PSNR vs the sharp photo: blurred {peak_signal_noise_ratio(truth, blurred):.2f} dB, "
        f"deblurred {peak_signal_noise_ratio(truth, sharp):.2f} dB"
    )
    print(f"wrote {', '.join(str(folder / n) for n in names)}")
    return 0


def _models() -> int:
    """Each bundled model once, the default marked (``default`` is an alias of one)."""
    from .model.registry import registry
    from .model.weights import model_card

    reg = registry()
    for name in sorted(reg["models"]):
        card = model_card(name)
        marks = " (default)" if name == reg["default"] else ""
        marks += f" [card: {card.name}]" if card.name != name else ""
        marks += " [PROVISIONAL]" if card.provisional else ""
        print(f"{name}{marks}\n    {card.description}")
    print("use one with --model NAME; --model default is the one marked (default)")
    return 0


@contextlib.contextmanager
def _warnings_in(words: Callable[[str], str]) -> Iterator[None]:
    """Warnings shown as one line on stderr, ``napari-srn: warning: ...``, in ``words``."""

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        print(f"napari-srn: warning: {words(str(message))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    words = cli_words if args.command == "deblur" else str
    try:
        if args.command == "models":
            return _models()
        if args.command == "train":
            from .training.cli import run_train

            return run_train(args)
        with _warnings_in(words):
            if args.sample:
                if args.input or args.output:
                    raise ValueError("--sample OUTPUT_DIR takes no INPUT/OUTPUT arguments")
                return _deblur_sample(args)
            return _deblur_file(args)
    except (ValueError, TypeError, OSError) as err:
        if getattr(args, "debug", False):
            raise
        print(f"napari-srn: error: {words(str(err))}", file=sys.stderr)
        return 1
    except Exception as err:  # unexpected: still one line, the traceback on request
        if getattr(args, "debug", False):
            raise
        print(
            f"napari-srn: error: {type(err).__name__}: {words(str(err))} (run again with "
            "--debug to see where it happened)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(
            "napari-srn: interrupted; image files are not written until complete, and a "
            ".zarr output resumes if you run the same command again",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
