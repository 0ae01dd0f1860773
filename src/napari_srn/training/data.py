"""Training data: GoPro-style pairs, sharp images with synthetic shake, zarr pairs.

Three sources, one interface (a list of :class:`Item`):

* **pairs** in the GOPRO layout: any folder ``SEQ`` below ``data`` holding ``SEQ/sharp/*`` and
  ``SEQ/<blur_dir>/*`` (``blur`` or ``blur_gamma``) with the same file names; your own pairs can
  use the same layout with a single ``SEQ`` (``data/blur``, ``data/sharp``);
* **sharp** images (png, jpg, tif; 8 or 16 bit; gray or RGB) anywhere below ``data``, blurred on
  the fly by :mod:`napari_srn.synthesis`;
* **zarr**: a group with arrays ``sharp`` and ``<blur_dir>`` of shape ``(N, H, W)`` or
  ``(N, H, W, C)``, or ``sharp`` alone (then blurred on the fly).

Every random choice of a training sample (which image, where to crop, the kernel, noise,
flips) is a pure function of ``(seed, global sample index)``, and sample ``g`` belongs to
step ``g // batch_size``. So the data stream does not depend on the number of workers, and a
resumed run sees exactly the samples an uninterrupted one would.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..inference.intensity import IntensityRange, intensity_range
from ..synthesis.params import MotionParams, ShakeParams
from ..synthesis.shake import random_kernel, reflect_take, shake

__all__ = [
    "IMAGE_SUFFIXES",
    "DataSource",
    "Item",
    "StepBatches",
    "TrainSet",
    "ValSet",
    "augment",
    "find_data",
    "loader_throughput",
    "make_loader",
    "pairs_to_zarr",
    "split",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_GRAY = np.array([0.2125, 0.7154, 0.0721], np.float32)  # as skimage.color.rgb2gray
# sub-seeds that keep the random streams of different purposes apart
_SPLIT, _ORDER, _SAMPLE, _VAL, _REUSE = 1, 2, 3, 4, 5
#: Samples between two uses of one pair when pairs are reused (``reuse`` > 1).
REUSE_SPAN = 32


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


# ------------------------------------------------------------------------------ discovery


def _is_zarr(path: Path) -> bool:
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


def _listing(names: list[str], limit: int = 8) -> str:
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
            f"{_listing([str(s) for s in no_blur])}"
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
                f"{_listing([sharp[k].name for k in only_sharp])}"
            )
        if only_blur:
            problems.append(
                f"no sharp partner in {str(seq / 'sharp')!r} for "
                f"{_listing([blurred[k].name for k in only_blur])}"
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
        if root.is_dir() and _is_zarr(root):
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
    rng = np.random.default_rng([seed, _SPLIT])
    n_val = min(len(units) - 1, max(1, round(fraction * len(units))))
    held = set(np.asarray(units, dtype=object)[rng.permutation(len(units))[:n_val]])
    train = tuple(i for i in items if key(i) not in held)
    val = tuple(i for i in items if key(i) in held)
    return train, val


# ------------------------------------------------------------------------------ reading


_ZARR_ARRAYS: dict[tuple[int, str, str], Any] = {}  # (pid, store, array): opened once a process


def _zarr_frame(ref: str) -> tuple[Any, int]:
    """The zarr array and frame index of a ``zarr:<store>::<array>::<index>`` reference."""
    store, name, index = ref[5:].split("::")
    key = (os.getpid(), store, name)
    if key not in _ZARR_ARRAYS:
        import zarr

        _ZARR_ARRAYS[key] = zarr.open_group(store, mode="r")[name]
    return _ZARR_ARRAYS[key], int(index)


def _hwc(arr: np.ndarray, axis: int | None, ref: str) -> np.ndarray:
    """``(H, W, C)`` with C = 1 or 3 (alpha dropped), or a clear error naming ``ref``."""
    if axis is not None and axis != arr.ndim - 1:
        arr = np.moveaxis(arr, axis, -1)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4) or (axis is None and arr.shape[-1] != 1):
        raise ValueError(
            f"{ref!r} has shape {arr.shape}; training images must be 2-D gray "
            "or RGB(A) (stacks and multichannel images: save the planes as "
            "separate files)"
        )
    if arr.dtype.kind not in "uif" or arr.dtype == bool:
        raise ValueError(f"{ref!r} has dtype {arr.dtype}; expected integer or float pixels")
    return arr[:, :, :3]


def _read_raw(ref: str) -> np.ndarray:
    """An image as stored, shaped ``(H, W, C)`` with C = 1 or 3 (alpha dropped)."""
    if ref.startswith("zarr:"):
        array, index = _zarr_frame(ref)
        arr = np.asarray(array[index])
        return _hwc(arr, arr.ndim - 1 if arr.ndim == 3 else None, ref)
    from ..io.files import read_image

    arr, axis = read_image(ref)
    return _hwc(arr, axis, ref)


def _read_window(ref: str, top: int, left: int, height: int, width: int) -> np.ndarray:
    """Only the crop of a zarr frame (a chunked array reads only the chunks it touches)."""
    array, index = _zarr_frame(ref)
    arr = np.asarray(array[index, top : top + height, left : left + width])
    return _hwc(arr, arr.ndim - 1 if arr.ndim == 3 else None, ref)


class _Cache:
    """A small LRU of decoded images with their intensity range (one per worker)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[str, tuple[np.ndarray, float, float]] = OrderedDict()

    def get(self, ref: str, range_of: str | None = None) -> tuple[np.ndarray, float, float]:
        if ref in self.data:
            self.data.move_to_end(ref)
            return self.data[ref]
        arr = _read_raw(ref)
        if range_of is not None and range_of != ref:
            _, lo, hi = self.get(range_of)
        else:
            r = intensity_range(arr)
            lo, hi = r.low, r.high
        value = (arr, lo, hi)
        if self.size:
            self.data[ref] = value
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


def _to_unit(arr: np.ndarray, lo: float, hi: float, channels: int) -> np.ndarray:
    """Raw pixels to float32 in [0, 1] (the map deblur uses) with ``channels`` channels."""
    x = IntensityRange(lo, hi, arr.dtype).to_model(arr)
    if channels == 1 and x.shape[-1] == 3:
        x = (x @ _GRAY)[:, :, None]
    elif channels == 3 and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x


def _to_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def augment(rng: np.random.Generator, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Apply one random element of the 8 flips/90-degree rotations to every ``(H, W, ...)``
    array alike."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(0, 1))
        if flip:
            a = a[:, ::-1]
        out.append(np.ascontiguousarray(a))
    return tuple(out)


class _Base(Dataset):
    def __init__(
        self,
        items: tuple[Item, ...],
        *,
        channels: int,
        seed: int,
        shake: ShakeParams | None,
        synthetic: bool,
        cache: int = 0,
        motion: MotionParams | None = None,
    ) -> None:
        self.items = tuple(items)
        self.channels = channels
        self.seed = seed
        self.params = shake or ShakeParams()
        self.motion = motion or MotionParams()
        self.synthetic = synthetic
        self.cache = _Cache(cache)
        self._ranges: dict[str, tuple[float, float]] = {}

    def _zarr_range(self, ref: str) -> tuple[float, float]:
        """The intensity range of a zarr frame: 0..255 for uint8, else from the whole frame
        (read once per worker)."""
        if ref not in self._ranges:
            array, _ = _zarr_frame(ref)
            if array.dtype == np.uint8:
                self._ranges[ref] = (0.0, 255.0)
            else:
                r = intensity_range(_read_raw(ref))
                self._ranges[ref] = (r.low, r.high)
        return self._ranges[ref]

    def _sample(
        self, item: Item, rng: np.random.Generator, top: int, left: int, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(blurred, sharp) float32 (H, W, C) crops at ``top, left``."""
        if self.synthetic:
            raw, lo, hi = self.cache.get(item.sharp)
            # drawn only when asked for, so runs without motion keep their random streams
            if self.motion.motion_fraction > 0 and rng.uniform() < self.motion.motion_fraction:
                return self._motion_sample(raw, lo, hi, rng, top, left, height, width)
            kernel = random_kernel(rng, self.params)
            pad = kernel.shape[0] // 2
            region = _to_unit(
                reflect_take(raw, top - pad, left - pad, height + 2 * pad, width + 2 * pad),
                lo,
                hi,
                self.channels,
            )
            sharp = region[pad : pad + height, pad : pad + width]
            blurred = shake(region, kernel, rng, self.params)
            return blurred, sharp
        assert item.blurred is not None
        # both images of a pair are mapped with the blurred image's range (as deblur would)
        if item.blurred.startswith("zarr:"):
            lo, hi = self._zarr_range(item.blurred)
            window = (top, left, height, width)
            return (
                _to_unit(_read_window(item.blurred, *window), lo, hi, self.channels),
                _to_unit(_read_window(item.sharp, *window), lo, hi, self.channels),
            )
        raw_b, lo, hi = self.cache.get(item.blurred)
        raw_s, _, _ = self.cache.get(item.sharp, range_of=item.blurred)
        if raw_b.shape[:2] != raw_s.shape[:2]:
            raise ValueError(
                f"size mismatch: {item.sharp!r} is {raw_s.shape[:2]} but "
                f"{item.blurred!r} is {raw_b.shape[:2]}"
            )
        win = (slice(top, top + height), slice(left, left + width))
        return (
            _to_unit(raw_b[win], lo, hi, self.channels),
            _to_unit(raw_s[win], lo, hi, self.channels),
        )

    def _motion_sample(
        self,
        raw: np.ndarray,
        lo: float,
        hi: float,
        rng: np.random.Generator,
        top: int,
        left: int,
        height: int,
        width: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A realistic motion-blur pair (:mod:`napari_srn.synthesis.motion`) of the crop at
        ``top, left``, with moving objects cut from other images of the set."""
        from ..synthesis.motion import Scene, render  # torch's grid_sample: only where used

        m = self.motion.margin
        region = reflect_take(raw, top - m, left - m, height + 2 * m, width + 2 * m)
        region = _to_unit(region, lo, hi, self.channels)
        low, high = self.motion.moving_objects
        objects = tuple(
            self._object(rng, height, width) for _ in range(int(rng.integers(low, high + 1)))
        )
        scene = Scene(raw.shape[:2], (top - m, left - m))
        return render(region, scene, rng, self.motion, objects)

    def _object(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A random patch, 20-60 % of the crop's sides, of a random image of the set."""
        item = self.items[int(rng.integers(len(self.items)))]
        raw, lo, hi = self.cache.get(item.sharp)
        h = max(2, int(height * rng.uniform(0.2, 0.6)))
        w = max(2, int(width * rng.uniform(0.2, 0.6)))
        top = int(rng.integers(max(1, raw.shape[0] - h + 1)))
        left = int(rng.integers(max(1, raw.shape[1] - w + 1)))
        return _to_unit(reflect_take(raw, top, left, h, w), lo, hi, self.channels)


class TrainSet(_Base):
    """Random crops; index ``g`` is the global sample number (see the module docstring)."""

    def __init__(
        self,
        items: tuple[Item, ...],
        *,
        crop: int,
        augment: bool = True,
        crop_tries: int = 1,
        gray_fraction: float = 0.0,
        reuse: int = 1,
        **kw: Any,
    ) -> None:
        super().__init__(items, **kw)
        if reuse < 1:
            raise ValueError(f"reuse must be >= 1, got {reuse}")
        self.reuse = reuse
        self._pairs: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        if crop_tries < 1:
            raise ValueError(f"crop_tries must be >= 1, got {crop_tries}")
        if not 0 <= gray_fraction <= 1:
            raise ValueError(f"gray_fraction must be in [0, 1], got {gray_fraction}")
        self.crop_tries = crop_tries
        self.gray_fraction = gray_fraction
        small = [
            f"{i.sharp} ({i.shape[0]}x{i.shape[1]})" for i in self.items if min(i.shape) < crop
        ]
        if small:
            raise ValueError(
                f"{len(small)} training image(s) are smaller than crop={crop}: "
                f"{_listing(small)}. Lower --crop or remove them"
            )
        if not self.items:
            raise ValueError("no training images are left after the validation split")
        self.crop = crop
        self.augment = augment
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def _texture(self, item: Item, top: int, left: int) -> float:
        """Mean absolute gradient of the sharp crop at ``top, left`` (every 2nd pixel of the
        first channel): how much there is to deblur there. Only compared between crops of
        one image, so the image's intensity range does not matter."""
        c = self.crop
        if item.sharp.startswith("zarr:"):
            raw = _read_window(item.sharp, top, left, c, c)
        else:
            raw = self.cache.get(item.sharp, range_of=item.blurred)[0]
            raw = raw[top : top + c, left : left + c]
        x = raw[::2, ::2, 0].astype(np.float32)
        return float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())

    def order(self, epoch: int) -> np.ndarray:
        """The shuffled order of the items in ``epoch`` (a pure function of seed and epoch)."""
        if self._perm is None or self._perm[0] != epoch:
            rng = np.random.default_rng([self.seed, _ORDER, epoch])
            self._perm = (epoch, rng.permutation(len(self.items)))
        return self._perm[1]

    def __getitem__(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.reuse > 1:
            return self._reused(int(g))
        blurred, sharp, rng = self._crop_pair(int(g))
        return self._finish(blurred, sharp, rng)

    def source(self, g: int) -> int:
        """The sample whose pair sample ``g`` uses: itself, or with ``reuse`` R > 1, one of
        :data:`REUSE_SPAN` samples that each serve R samples, ``REUSE_SPAN`` apart."""
        span = REUSE_SPAN * self.reuse
        return g // span * REUSE_SPAN + g % REUSE_SPAN

    def _reused(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``g`` from its source's pair (rendered once, kept while it is reused), with
        its own grey choice and flips (a pure function of the seed and ``g``)."""
        src = self.source(g)
        if src not in self._pairs:
            self._pairs[src] = self._crop_pair(src)[:2]
            while len(self._pairs) > REUSE_SPAN:
                self._pairs.popitem(last=False)
        blurred, sharp = self._pairs[src]
        return self._finish(blurred, sharp, np.random.default_rng([self.seed, _REUSE, g]))

    def _crop_pair(self, g: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """Sample ``g``'s (blurred, sharp) crops before grey and flips, and its generator."""
        epoch, pos = divmod(g, len(self.items))
        item = self.items[self.order(epoch)[pos]]
        rng = np.random.default_rng([self.seed, _SAMPLE, g])
        height, width = item.shape
        top = int(rng.integers(height - self.crop + 1))
        left = int(rng.integers(width - self.crop + 1))
        if self.crop_tries > 1:
            tops = [top, *rng.integers(height - self.crop + 1, size=self.crop_tries - 1)]
            lefts = [left, *rng.integers(width - self.crop + 1, size=self.crop_tries - 1)]
            scores = [self._texture(item, t, c) for t, c in zip(tops, lefts, strict=True)]
            best = int(np.argmax(scores))
            top, left = int(tops[best]), int(lefts[best])
        blurred, sharp = self._sample(item, rng, top, left, self.crop, self.crop)
        return blurred, sharp, rng

    def _finish(
        self, blurred: np.ndarray, sharp: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Grey (a ``gray_fraction`` share) and flips, drawn from ``rng``; then tensors."""
        # the draw happens only when asked for, so runs without it keep their random streams
        if self.gray_fraction > 0 and sharp.shape[-1] == 3 and rng.uniform() < self.gray_fraction:
            # blurring is linear and acts on each channel alike: grey of the blurred crop is
            # the blurred grey crop (noise aside, which becomes grey noise of lower sigma)
            blurred, sharp = (
                np.repeat((x @ _GRAY)[:, :, None], 3, axis=-1) for x in (blurred, sharp)
            )
        if self.augment:
            blurred, sharp = augment(rng, blurred, sharp)
        return _to_tensor(blurred), _to_tensor(sharp)


class ValSet(_Base):
    """Central crops (``crop`` 0: the whole image cut to a multiple of ``divisor``), with
    kernels fixed by ``(seed, index)`` so every validation sees the same inputs."""

    def __init__(
        self, items: tuple[Item, ...], *, crop: int, divisor: int, limit: int = 0, **kw: Any
    ) -> None:
        if limit and len(items) > limit:  # evenly spread over the (sorted) held-out items
            picks = np.linspace(0, len(items) - 1, limit).round().astype(int)
            items = tuple(items[i] for i in picks)
        super().__init__(items, **kw)
        self.crop = crop
        self.divisor = divisor
        small = [i.sharp for i in self.items if min(i.shape) < divisor]
        if small:
            raise ValueError(
                f"validation image(s) smaller than {divisor} pixels: {_listing(small)}"
            )

    def __len__(self) -> int:
        return len(self.items)

    def window(self, item: Item) -> tuple[int, int, int, int]:
        height, width = item.shape
        d = self.divisor
        h, w = height // d * d, width // d * d
        if self.crop:
            h, w = min(h, self.crop), min(w, self.crop)
        return (height - h) // 2, (width - w) // 2, h, w

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.items[index]
        rng = np.random.default_rng([self.seed, _VAL, int(index)])
        blurred, sharp = self._sample(item, rng, *self.window(item))
        return _to_tensor(blurred), _to_tensor(sharp)


# ------------------------------------------------------------------------------ loading


class StepBatches:
    """Batch sampler: step ``s`` (0-based) gets samples ``s * batch .. (s + 1) * batch - 1``."""

    def __init__(self, start: int, stop: int, batch_size: int) -> None:
        self.start, self.stop, self.batch_size = start, stop, batch_size

    def __iter__(self) -> Iterator[list[int]]:
        b = self.batch_size
        for step in range(self.start, self.stop):
            yield list(range(step * b, (step + 1) * b))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def default_workers() -> int:
    """CPU cores minus one (the training process), at least 1 and at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def make_loader(
    dataset: TrainSet,
    start: int,
    stop: int,
    batch_size: int,
    num_workers: int | None,
    pin_memory: bool = False,
) -> DataLoader:
    workers = default_workers() if num_workers is None else num_workers
    return DataLoader(
        dataset,
        batch_sampler=StepBatches(start, stop, batch_size),
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers else None,
    )


def loader_throughput(
    dataset: TrainSet,
    batch_size: int,
    num_workers: int | None,
    batches: int = 20,
    warmup: int | None = None,
) -> dict[str, float]:
    """Samples per second the loader delivers on its own (no model), in steady state.

    ``warmup`` batches are drawn first and not timed (default: one epoch, so that each
    worker's image cache is as warm as it gets in a long run). Compare the result with the
    model's steps/s x batch size: the loader keeps up when it is larger.
    """
    if warmup is None:
        warmup = -(-len(dataset) // batch_size)
    loader = make_loader(dataset, 0, warmup + batches, batch_size, num_workers)
    it = iter(loader)
    for _ in range(max(1, warmup)):
        next(it)
    t0 = time.perf_counter()
    n = sum(len(b[0]) for b in it)
    seconds = time.perf_counter() - t0
    workers = default_workers() if num_workers is None else num_workers
    return {"samples_per_s": n / seconds, "workers": float(workers), "samples": float(n)}


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
    first = _read_raw(items[0].sharp)
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
        arrays["sharp"][index] = _read_raw(item.sharp)
        arrays[blur_dir][index] = _read_raw(item.blurred or "")
    return len(items)
