"""The ``napari-srn`` command: argument parsing only; the work is done by the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
        type=_positive_int,
        default=None,
        help="tile side in pixels, a multiple of 16 (default: from free memory)",
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


def _deblur_file(args: argparse.Namespace) -> int:
    import numpy as np

    from ._deblur import deblur
    from .io import open_image, write_image

    if not args.input or not args.output:
        raise ValueError("give INPUT and OUTPUT files, or --sample OUTPUT_DIR")
    out = Path(args.output)
    alpha, file_axes = False, None
    if _is_zarr(args.input):
        image, axis = args.input, None  # a path: read lazily
    else:
        info = open_image(args.input)
        image, axis, alpha, file_axes = info.data, info.channel_axis, info.alpha, info.axes
    if args.channel_axis != "auto":
        axis, alpha = args.channel_axis, False
    if out.suffix.lower() == ".zarr":
        from ._to_zarr import deblur_to_zarr

        deblur_to_zarr(
            image,
            out,
            model=args.model,
            channel_axis=axis,
            tile_size=args.tile_size,
            overlap=args.overlap,
            device=args.device,
            precision=args.precision,
            axes=args.axes or _ngff_letters(file_axes, np.ndim(image), axis),
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
        print(f"wrote {out}")
        return 0
    from .io.files import check_output

    dtype = getattr(image, "dtype", None)
    shape = getattr(image, "shape", None)
    if dtype is None:  # a zarr path: its dtype without reading data
        from .io.zarr import open_lazy

        lazy = open_lazy(image)
        dtype, shape = lazy.dtype, lazy.shape
    # before the work, not after it
    check_output(out, dtype, overwrite=args.overwrite, shape=shape, channel_axis=axis)
    grey_alpha = alpha and axis is not None and image.shape[axis] == 2
    source = np.take(image, 0, axis=axis) if grey_alpha else image
    result = deblur(
        source,
        model=args.model,
        channel_axis=None if grey_alpha else axis,
        tile_size=args.tile_size,
        overlap=args.overlap,
        device=args.device,
        precision=args.precision,
        progress=not args.no_progress,
    )
    if hasattr(result, "compute"):  # a zarr input: compute the lazy result
        from dask.diagnostics import ProgressBar

        if args.no_progress:
            result = result.compute()
        else:
            with ProgressBar(out=sys.stderr):
                result = result.compute()
    if grey_alpha and axis is not None:  # the transparency comes back as it was
        result = np.stack([result, np.take(image, 1, axis=axis)], axis=axis)
    write_image(
        out, result, channel_axis=axis, overwrite=args.overwrite, axes=file_axes, alpha=alpha
    )
    print(f"wrote {out}")
    return 0


def _deblur_sample(args: argparse.Namespace) -> int:
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio

    from ._deblur import deblur
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
    sharp = deblur(
        blurred,
        model=model,
        channel_axis=-1,
        tile_size=args.tile_size,
        overlap=args.overlap,
        precision=args.precision,
        progress=not args.no_progress,
    )
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
    from .model.weights import list_models, model_card

    for name in list_models():
        card = model_card(name)
        flag = " [PROVISIONAL]" if card.provisional else ""
        print(f"{name}: {card.name}{flag}\n    {card.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "models":
            return _models()
        if args.command == "train":
            from .training.cli import run_train

            return run_train(args)
        if args.sample:
            if args.input or args.output:
                raise ValueError("--sample OUTPUT_DIR takes no INPUT/OUTPUT arguments")
            return _deblur_sample(args)
        return _deblur_file(args)
    except (ValueError, TypeError, OSError) as err:
        if getattr(args, "debug", False):
            raise
        print(f"napari-srn: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # unexpected: still one line, the traceback on request
        if getattr(args, "debug", False):
            raise
        print(
            f"napari-srn: error: {type(err).__name__}: {err} (run again with --debug to see "
            "where it happened)",
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
