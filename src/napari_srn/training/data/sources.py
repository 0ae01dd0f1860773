"""Where training images come from: GoPro-style pairs, sharp images, zarr groups.

Three sources, one interface (a tuple of :class:`Item`):

* **pairs** in the GOPRO layout: any folder ``SEQ`` below ``data`` holding ``SEQ/sharp/*`` and
  ``SEQ/<blur_dir>/*`` (``blur`` or ``blur_gamma``) with the same file names; your own pairs can
  use the same layout with a single ``SEQ`` (``data/blur``, ``data/sharp``);
* **sharp** images (png, jpg, tif; 8 or 16 bit; gray or RGB) anywhere below ``data``, blurred on
  the fly by :mod:`napari_srn.synthesis`;
* **zarr**: a group with arrays ``sharp`` and ``<blur_dir>`` of shape ``(N, H, W)`` or
  ``(N, H, W, C)``, or ``sharp`` alone (then blurred on the fly).

Also here: the validation split (:func:`split`, whole sequences held out) and
:func:`pairs_to_zarr`, which copies pairs into a zarr group that training crops read faster.
Only image headers are read (no pixels, no torch), except by :func:`pairs_to_zarr`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from .images import read_raw

__all__ = [
    "IMAGE_SUFFIXES",
    "STREAM_ORDER",
    "STREAM_REUSE",
    "STREAM_SAMPLE",
    "STREAM_SPLIT",
    "STREAM_VAL",
    "DataSource",
    "Item",
    "find_data",
    "find_pairs",
    "find_sharp",
    "find_zarr",
    "listing",
    "pairs_to_zarr",
    "split",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Sub-seeds that keep the random streams of different purposes apart: the validation split
#: (:func:`split`), and in :mod:`.datasets` the epoch order, each training sample, each
#: validation image and each reuse of a pair.
STREAM_SPLIT, STREAM_ORDER, STREAM_SAMPLE, STREAM_VAL, STREAM_REUSE = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Item:
    """One training image: a sharp image and, for pairs, its blurred partner.

    A reference is a file path, or ``"zarr:<store>::<array>::<index>"`` for a zarr frame.
    """

    sharp: str
    blurred: str | None
    group: str  # sequence (pairs) or file: the unit of the validation split
    shape: tuple[int, int]  # height, width


@dataclass(frozen=True)
class DataSource:
    kind: str  # "pairs", "sharp" or "zarr"
    root: str
    items: tuple[Item, ...]
    synthetic: bool  # blur synthesised on the fly

    def describe(self) -> str:
        groups = len({i.group for i in self.items})
        if self.kind == "pairs":
            return f"{len(self.items)} blurred/sharp pairs in {groups} sequence(s) from {self.root}"
        if self.kind == "zarr":
            what = "sharp frames with synthetic camera shake" if self.synthetic else "pairs"
            return f"{len(self.items)} zarr {what} from {self.root}"
        return f"{len(self.items)} sharp images with synthetic camera shake from {self.root}"


def _looks_like_zarr_group(path: Path) -> bool:
    """A folder named ``*.zarr`` (lower case), or one holding a zarr group's metadata
    (``zarr.json`` of zarr 3, ``.zgroup`` of zarr 2): what ``data_kind`` auto takes for zarr."""
    return path.suffix == ".zarr" or (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def _walk(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield Path(folder), dirs, sorted(f for f in files if not f.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _shape_of(path: Path) -> tuple[int, int]:
    """Height and width from the file header (no decoding)."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                axes, shape = series.axes, series.shape
            return shape[axes.index("Y")], shape[axes.index("X")]
        from PIL import Image

        with Image.open(path) as img:
            width, height = img.size
        return height, width
    except Exception as err:  # many libraries, many exception types
        raise ValueError(f"cannot read the image header of {str(path)!r}: {err}") from err


def listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def find_pairs(root: Path, blur_dir: str = "blur") -> list[Item]:
    """Pairs in the GOPRO layout below ``root``; clear errors for missing or mismatched files."""
    sequences = [folder for folder, dirs, _ in _walk(root) if "sharp" in dirs]
    if not sequences:
        raise ValueError(
            f"no 'sharp' folder below {str(root)!r}: pairs need the GoPro layout "
            f"SEQ/{blur_dir}/*.png + SEQ/sharp/*.png"
        )
    no_blur = [s for s in sequences if not (s / blur_dir).is_dir()]
    if no_blur:
        others = sorted(
            {d.name for s in no_blur for d in s.iterdir() if d.is_dir() and d.name != "sharp"}
        )
        raise ValueError(
            f"{len(no_blur)} sequence folder(s) have 'sharp' but no {blur_dir!r} folder: "
            f"{listing([str(s) for s in no_blur])}"
            + (f"; they hold {others}: pass --blur-dir with one of them" if others else "")
        )
    items, problems = [], []
    for seq in sequences:
        sharp = {p.stem: p for p in _images(seq / "sharp")}
        blurred = {p.stem: p for p in _images(seq / blur_dir)}
        only_sharp = sorted(set(sharp) - set(blurred))
        only_blur = sorted(set(blurred) - set(sharp))
        if only_sharp:
            problems.append(
                f"no blurred partner in {str(seq / blur_dir)!r} for "
                f"{listing([sharp[k].name for k in only_sharp])}"
            )
        if only_blur:
            problems.append(
                f"no sharp partner in {str(seq / 'sharp')!r} for "
                f"{listing([blurred[k].name for k in only_blur])}"
            )
        if not sharp and not blurred:
            problems.append(f"{str(seq)!r} has no images (png, jpg, tif) in sharp/ or {blur_dir}/")
        group = str(seq.relative_to(root)) if seq != root else seq.name
        for stem in sorted(set(sharp) & set(blurred)):
            s_shape, b_shape = _shape_of(sharp[stem]), _shape_of(blurred[stem])
            if s_shape != b_shape:
                problems.append(
                    f"size mismatch: {str(sharp[stem])!r} is {s_shape[0]}x"
                    f"{s_shape[1]} but {str(blurred[stem])!r} is {b_shape[0]}x"
                    f"{b_shape[1]}"
                )
                continue
            items.append(Item(str(sharp[stem]), str(blurred[stem]), group, s_shape))
    if problems:
        raise ValueError("the training pairs are not in order:\n  - " + "\n  - ".join(problems))
    return items


def find_sharp(root: Path) -> list[Item]:
    """Every image file below ``root`` (or ``root`` itself when it is a file)."""
    if root.is_file():
        files = [root] if root.suffix.lower() in IMAGE_SUFFIXES else []
        base = root.parent
    else:
        files = [
            folder / f
            for folder, _, names in _walk(root)
            for f in names
            if Path(f).suffix.lower() in IMAGE_SUFFIXES
        ]
        base = root
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {str(root)!r}")
    return [Item(str(p), None, str(p.relative_to(base)), _shape_of(p)) for p in files]


def find_zarr(root: Path, blur_dir: str = "blur") -> tuple[list[Item], bool]:
    """Frames of a zarr group's ``sharp`` (and ``blur_dir``) arrays; returns (items, synthetic)."""
    import zarr

    try:
        group = zarr.open_group(str(root), mode="r")
    except Exception as err:  # zarr raises several types for a missing or broken store
        raise ValueError(f"cannot open {str(root)!r} as a zarr group: {err}") from err
    names = sorted(group.array_keys())
    if "sharp" not in names:
        raise ValueError(
            f"zarr group {str(root)!r} has no 'sharp' array (it has {names}); "
            f"training needs 'sharp' and optionally {blur_dir!r}"
        )
    sharp = cast("zarr.Array", group["sharp"])  # names are the group's arrays
    synthetic = blur_dir not in names
    if not synthetic:
        blurred = cast("zarr.Array", group[blur_dir])
        if blurred.shape != sharp.shape:
            raise ValueError(
                f"zarr arrays {str(root)!r}/{blur_dir} {blurred.shape} and "
                f"{str(root)!r}/sharp {sharp.shape} differ in shape; pairs need "
                "equal shapes"
            )
    if sharp.ndim not in (3, 4) or (sharp.ndim == 4 and sharp.shape[-1] not in (1, 3, 4)):
        raise ValueError(
            f"zarr array {str(root)!r}/sharp has shape {sharp.shape}; expected "
            "(N, H, W) or (N, H, W, C) with C in 1, 3, 4"
        )
    ref = f"zarr:{root}::{{}}::{{}}"
    items = [
        Item(
            ref.format("sharp", i),
            None if synthetic else ref.format(blur_dir, i),
            str(i),
            (sharp.shape[1], sharp.shape[2]),
        )
        for i in range(sharp.shape[0])
    ]
    return items, synthetic


def find_data(path: str | os.PathLike, kind: str = "auto", blur_dir: str = "blur") -> DataSource:
    """Find the training images at ``path`` (``kind``: auto, pairs, sharp or zarr)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"training data {str(root)!r} does not exist")
    if kind == "auto":
        if root.is_dir() and _looks_like_zarr_group(root):
            kind = "zarr"
        elif root.is_dir() and any("sharp" in dirs for _, dirs, _ in _walk(root)):
            kind = "pairs"
        else:
            kind = "sharp"
    if kind == "pairs":
        splits = [d for d in ("train", "test") if (root / d).is_dir()]
        if len(splits) == 2 and any("sharp" in dirs for _, dirs, _ in _walk(root / "test")):
            raise ValueError(
                f"{str(root)!r} holds both train/ and test/ pairs (the GOPRO_Large layout); "
                f"training on it would train on the test set. Pass data={str(root / 'train')!r} "
                f"and val_data={str(root / 'test')!r}"
            )
        return DataSource("pairs", str(root), tuple(find_pairs(root, blur_dir)), False)
    if kind == "zarr":
        items, synthetic = find_zarr(root, blur_dir)
        return DataSource("zarr", str(root), tuple(items), synthetic)
    return DataSource("sharp", str(root), tuple(find_sharp(root)), True)


def split(
    items: tuple[Item, ...], fraction: float, seed: int
) -> tuple[tuple[Item, ...], tuple[Item, ...]]:
    """Hold out ``fraction`` of the groups (sequences; single images for sharp data) for
    validation, chosen by ``seed``. With one group only, single items are held out instead."""
    if fraction <= 0:
        return items, ()
    groups = sorted({i.group for i in items})
    key = (lambda i: i.group) if len(groups) >= 2 else (lambda i: i.sharp)
    units = groups if len(groups) >= 2 else sorted(i.sharp for i in items)
    if len(units) < 2:
        raise ValueError(
            f"cannot hold out validation data from {len(items)} image(s): add images, give "
            "val_data, or set val_fraction 0 (no validation)"
        )
    if len(groups) < 2:
        log.warning(
            "all pairs come from one sequence: holding out single frames, whose "
            "neighbours may be in the training set; give val_data for honest metrics"
        )
    rng = np.random.default_rng([seed, STREAM_SPLIT])
    n_val = min(len(units) - 1, max(1, round(fraction * len(units))))
    held = set(np.asarray(units, dtype=object)[rng.permutation(len(units))[:n_val]])
    train = tuple(i for i in items if key(i) not in held)
    val = tuple(i for i in items if key(i) in held)
    return train, val


def pairs_to_zarr(
    source: str | os.PathLike,
    store: str | os.PathLike,
    *,
    blur_dir: str = "blur",
    chunk: int = 256,
    overwrite: bool = False,
) -> int:
    """Copy GoPro-style pairs into a zarr group (arrays ``sharp`` and ``blur_dir``).

    Training crops then read only the ``chunk`` x ``chunk`` tiles they touch instead of
    decoding two whole PNG files per sample (about 5x more samples per loader worker for
    1280 x 720 frames, see docs/training.md). All pairs must have the same size and dtype.
    Returns the number of pairs written.
    """
    import zarr

    items = find_pairs(Path(source).expanduser(), blur_dir)
    dst = Path(store).expanduser()
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{str(dst)!r} exists; pass overwrite=True to replace it")
    first = read_raw(items[0].sharp)
    shape = (len(items), *first.shape)
    sizes = sorted({i.shape for i in items})
    if len(sizes) > 1:
        raise ValueError(f"pairs_to_zarr needs pairs of one size; {str(source)!r} has {sizes}")
    group = zarr.open_group(str(dst), mode="w")
    arrays = {
        name: group.create_array(
            name, shape=shape, dtype=first.dtype, chunks=(1, chunk, chunk, shape[-1])
        )
        for name in ("sharp", blur_dir)
    }
    for index, item in enumerate(items):
        arrays["sharp"][index] = read_raw(item.sharp)
        arrays[blur_dir][index] = read_raw(item.blurred or "")
    return len(items)
