"""Realistic motion blur: a moving camera and moving objects, exposed in linear light.

Real blurred photographs are not one kernel convolved with the stored pixels (what
:mod:`.shake` does). A camera integrates light while it turns, shifts and zooms, while people
and cars move on their own; the blur is then clipped where lights saturate the sensor, gets
shot and read noise, the camera's tone curve and JPEG. This module renders that, for training
on sharp photographs (after GoPro, Nah et al. 2017, and RSBlur, Rim et al. ECCV 2022):

1. The exposure is ``n`` sub-frames at times ``t`` in [-1/2, 1/2]. The camera's path is a
   rotation (roll, pitch and yaw, as the homography ``K R K^-1`` about the photo's centre with a
   random focal length), a zoom and a translation; pitch and yaw follow a Boracchi-Foi shake
   path (:func:`.kernels.random_trajectory`), the others smooth polynomials. The path is scaled
   so that the longest blur streak in the crop is ``motion_length`` pixels, and sub-frames are
   spaced at most one pixel apart, so the average is a continuous streak. Rotation about the
   photo's centre makes the blur differ across the frame.
2. 0 to ``moving_objects`` objects, soft-edged regions cut from other training photographs,
   are pasted over the scene, each moving on its own path, over the moving background.
3. The photographs are turned into linear light (the inverse of a tone curve between the sRGB
   curve and none, ``linear_light``: real exposures average light, frame-averaged data sets
   such as GoPro's average stored values), saturated pixels are
   made brighter by a random gain (``highlight_gain``), each sub-frame is warped with
   bilinear sub-pixel sampling (:func:`torch.nn.functional.grid_sample`) and the sub-frames
   are averaged, so lights smear into bright streaks.
4. Shot and read noise are added, the sum is clipped to [0, 1] (saturation), the tone curve
   re-applied, the result rounded to 8 bits and, for a ``jpeg_fraction`` share, JPEG-encoded
   at a random quality.

The sharp target is the middle sub-frame (``t = 0``: the camera at rest, the objects in place)
through the same curve, as GoPro's sharp frame is the middle one of those averaged. Every
random choice comes from the ``rng`` passed in, so a pair is a pure function of its seed.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .kernels import random_trajectory
from .params import MotionParams
from .shake import SATURATED

__all__ = ["Scene", "ToneCurve", "linear_to_srgb", "render", "srgb_to_linear"]

#: Most sub-frames rendered for one exposure: a streak of up to 64 px has no gaps, longer ones
#: (a moving object on a moving camera) have gaps of a pixel or two.
MAX_SUBFRAMES = 65
#: Sub-frames warped in one grid_sample call (bounds the memory to ~16 warped crops).
_CHUNK = 16


@dataclass(frozen=True)
class Scene:
    """Where the crop lies: the photo's size and the region's top-left corner in it.

    ``region`` is the crop with ``margin`` pixels of context on each side, so rotation and zoom
    act about the photo's centre (the optical axis), not the crop's.
    """

    image_shape: tuple[int, int]
    region_origin: tuple[int, int]


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The inverse sRGB tone curve (IEC 61966-2-1), for values in [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """The sRGB tone curve, for linear values in [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(
        np.float32
    )


@dataclass(frozen=True)
class ToneCurve:
    """A camera's tone curve: ``stored = (1 - weight) * linear + weight * sRGB(linear)``.

    ``weight`` 1 is the sRGB curve (blur averaged in linear light, as in a real exposure), 0
    stores linear values (blur averaged in the stored values, as GoPro's ``blur`` frames and
    most frame-averaged data sets were made); the mix in between is another monotone curve.
    """

    weight: float

    def encode(self, linear: np.ndarray) -> np.ndarray:
        """Linear light in [0, 1] (clipped: saturation) to stored values."""
        x = np.clip(linear, 0.0, 1.0).astype(np.float32)
        if self.weight == 0:
            return x
        w = np.float32(self.weight)
        return (1 - w) * x + w * linear_to_srgb(x)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        """Stored values in [0, 1] to linear light (the inverse of :meth:`encode`)."""
        if self.weight in (0, 1):
            return srgb_to_linear(stored) if self.weight else np.clip(stored, 0, 1)
        grid = np.linspace(0.0, 1.0, 8193) ** 2  # dense near 0, where sRGB is steep
        table = self.encode(grid)
        return np.interp(np.clip(stored, 0, 1), table, grid).astype(np.float32)


# --------------------------------------------------------------------------- the paths


def _times(n: int) -> np.ndarray:
    return np.linspace(-0.5, 0.5, n)


def _resample(path: np.ndarray, n: int) -> np.ndarray:
    """A ``(m, k)`` path at ``n`` evenly spaced times (odd ``n`` keeps its middle sample)."""
    where = np.linspace(0, len(path) - 1, n)
    return np.stack([np.interp(where, np.arange(len(path)), c) for c in path.T], axis=1)


def _smooth(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """``(n, dims)`` smooth random motion: velocity plus acceleration, zero at ``t = 0``."""
    t = _times(n)[:, None]
    v = rng.normal(size=dims)
    a = rng.normal(size=dims) * rng.uniform(0, 2)
    return v * t + a * t**2


def _camera(rng: np.random.Generator, n: int, focal: float, reach: float) -> np.ndarray:
    """``(n, 6)`` camera path (roll, pitch, yaw [rad], zoom, dx, dy [px]) of unit-ish size.

    Each motion is weighted at random and expressed so that a weight of 1 moves pixels about
    one pixel; :func:`_scaled` then sets the overall size.
    """
    shake = _resample(random_trajectory(64.0, shakiness=rng.uniform(0, 0.8), rng=rng), n)
    shake -= shake[n // 2]  # the camera is at rest (the sharp frame) at t = 0
    shake /= max(np.abs(shake).max(), 1e-9)
    w = rng.uniform(0, 1, size=4) * (rng.uniform(size=4) < [1.0, 0.5, 0.3, 0.5])
    w[0] = max(w[0], 0.2)  # hand shake is always there
    path = np.zeros((n, 6))
    path[:, 1:3] = w[0] * shake / focal  # pitch, yaw: ~w px at the centre
    path[:, 0] = w[1] * _smooth(rng, n, 1)[:, 0] / reach  # roll: ~w px at the crop's far corner
    path[:, 3] = w[2] * _smooth(rng, n, 1)[:, 0] / reach  # zoom
    path[:, 4:6] = w[3] * _smooth(rng, n, 2)  # translation of a near, flat scene
    return path


def _rotation(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = (f(a) for a in (roll, pitch, yaw) for f in (np.cos, np.sin))
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return rz @ rx @ ry


def _homographies(path: np.ndarray, focal: float) -> np.ndarray:
    """``(n, 3, 3)`` maps from centred pixel coordinates (x, y, 1) at ``t = 0`` to those at t."""
    k = np.diag([focal, focal, 1.0])
    k_inv = np.diag([1 / focal, 1 / focal, 1.0])
    out = np.empty((len(path), 3, 3))
    for i, (roll, pitch, yaw, zoom, dx, dy) in enumerate(path):
        move = np.array([[1 + zoom, 0, dx], [0, 1 + zoom, dy], [0, 0, 1]])
        out[i] = move @ k @ _rotation(roll, pitch, yaw) @ k_inv
    return out


def _apply(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Homographies ``(n, 3, 3)`` applied to points ``(m, 2)``: ``(n, m, 2)``."""
    p = np.einsum("nij,mj->nmi", h, np.concatenate([xy, np.ones((len(xy), 1))], 1))
    return p[..., :2] / p[..., 2:3]


def _extent(tracks: np.ndarray) -> float:
    """The longest streak: the largest bounding-box diagonal of any point's ``(n, m, 2)`` track."""
    span = tracks.max(0) - tracks.min(0)
    return float(np.sqrt((span**2).sum(-1)).max())


def _path_length(tracks: np.ndarray) -> float:
    """The longest distance any tracked point travels (sets the number of sub-frames)."""
    return float(np.sqrt((np.diff(tracks, axis=0) ** 2).sum(-1)).sum(0).max())


# --------------------------------------------------------------------------- rendering

#: Time samples of the paths before the sub-frame count is known (odd: t = 0 is one of them).
_FINE = 257


@dataclass
class _Layer:
    """A moving object: premultiplied linear colour and coverage, its corner and its path."""

    rgba: torch.Tensor  # (1, C + 1, h, w): colour x coverage, coverage
    corner: tuple[float, float]  # (row, col) of its top-left in region pixels at t = 0
    path: np.ndarray  # (_FINE, 2) offset in pixels (x, y)
    window: tuple[slice, slice] = (slice(0), slice(0))  # the output pixels it can reach


def _soft_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A random ellipse filling most of ``shape``, its edge feathered over a few pixels."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y, x = (y - (h - 1) / 2) / (h / 2), (x - (w - 1) / 2) / (w / 2)
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    a, b = rng.uniform(0.6, 1.0, size=2)
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    feather = rng.uniform(1.5, 6.0) / (min(h, w) / 2)
    return np.clip((1 - r) / feather, 0, 1).astype(np.float32)


def _to_linear(x: np.ndarray, gain: float, tone: ToneCurve) -> np.ndarray:
    """Stored values to linear light, saturated values ``gain`` times brighter.

    Only the clipped channels are raised: the others were recorded, so the sharp target (the
    still scene clipped again) keeps the photo's colours."""
    lin = tone.decode(x)
    return np.where(x >= SATURATED, lin * np.float32(gain), lin)


def _layer(
    rng: np.random.Generator,
    patch: np.ndarray,
    crop: tuple[int, int],
    margin: int,
    gain: float,
    length: float,
    tone: ToneCurve,
) -> _Layer:
    """A moving object from ``patch`` (stored values), placed so it overlaps the crop."""
    mask = _soft_mask(rng, patch.shape[:2])
    lin = _to_linear(patch, gain, tone) * mask[:, :, None]
    rgba = np.concatenate([lin, mask[:, :, None]], axis=2).transpose(2, 0, 1)
    row = margin + rng.uniform(-0.5, 1) * crop[0] - patch.shape[0] / 2
    col = margin + rng.uniform(-0.5, 1) * crop[1] - patch.shape[1] / 2
    path = _smooth(rng, _FINE, 2)
    path *= length / max(_extent(path[:, None, :]), 1e-9)
    return _Layer(torch.from_numpy(np.ascontiguousarray(rgba))[None], (row, col), path)


def _window(layer: _Layer, margin: int, size: tuple[int, int], shake: float) -> tuple[slice, slice]:
    """The output pixels that ``layer`` can cover when the camera moves ``shake`` px."""
    reach = shake + float(np.abs(layer.path).max())
    bounds = []
    for corner, extent, limit in zip(layer.corner, layer.rgba.shape[2:], size, strict=True):
        low = math.floor(corner - margin - reach)
        high = math.ceil(corner - margin + extent + reach)
        bounds.append(slice(min(max(low, 0), limit), min(max(high, 0), limit)))
    return bounds[0], bounds[1]


def _grid(points: torch.Tensor, origin: tuple[float, float], size: torch.Size) -> torch.Tensor:
    """Pixel coordinates ``(..., 2)`` (x, y) to grid_sample's [-1, 1] for an image of
    ``size`` (height, width) whose pixel (0, 0) is at ``origin`` (row, col)."""
    h, w = size
    x = (2 * (points[..., 0] - origin[1]) + 1) / w - 1
    y = (2 * (points[..., 1] - origin[0]) + 1) / h - 1
    return torch.stack([x, y], dim=-1)


def _exposure(
    background: torch.Tensor,
    layers: list[_Layer],
    inv: torch.Tensor,
    base: torch.Tensor,
    shift: torch.Tensor,
    size: tuple[int, int],
    first: int = 0,
) -> torch.Tensor:
    """The sum over sub-frames of the composited, warped scene: ``(C, h, w)``.

    ``inv`` holds the sub-frames' inverse homographies (sub-frame ``first`` onwards of the
    layers' paths); see :func:`_sources` for ``base`` and ``shift``.
    """
    h, w = size
    total = torch.zeros(background.shape[1], h, w)
    for start in range(0, len(inv), _CHUNK):
        src = _sources(inv[start : start + _CHUNK], base, shift)
        m = len(src)
        grid = _grid(src, (0.0, 0.0), background.shape[2:]).view(m, h, w, 2)
        frame = F.grid_sample(
            background.expand(m, -1, -1, -1), grid, align_corners=False, padding_mode="border"
        )
        for layer in layers:
            rows, cols = layer.window
            offset = torch.from_numpy(layer.path[first + start : first + start + m]).float()
            pts = src.view(m, h, w, 2)[:, rows, cols] - offset[:, None, None, :]
            g = _grid(pts, layer.corner, layer.rgba.shape[2:])
            rgba = F.grid_sample(layer.rgba.expand(m, -1, -1, -1), g, align_corners=False)
            under = frame[:, :, rows, cols]
            frame[:, :, rows, cols] = under * (1 - rgba[:, -1:]) + rgba[:, :-1]
        total += frame.sum(0)
    return total


def _sources(inv: torch.Tensor, base: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Where each output pixel's light came from in each sub-frame: ``(n, h * w, 2)`` region
    pixels (x, y), from inverse homographies ``(n, 3, 3)`` on centred pixels ``(h * w, 3)``."""
    p = torch.einsum("nij,mj->nmi", inv, base)
    return p[..., :2] / p[..., 2:3] + shift


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    """``x`` (float in [0, 1], (H, W, C)) through 8-bit JPEG at ``quality``."""
    from PIL import Image

    u8 = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(u8[:, :, 0] if u8.shape[2] == 1 else u8)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    out = np.asarray(Image.open(buf), dtype=np.float32) / 255
    return out.reshape(x.shape)


def _develop(
    linear: np.ndarray, rng: np.random.Generator, params: MotionParams, tone: ToneCurve
) -> np.ndarray:
    """Exposure to stored image: noise, saturation, tone curve, 8 bits, maybe JPEG."""
    shot = rng.uniform(*params.shot_noise)
    read = rng.uniform(*params.read_noise)
    var = shot**2 * np.clip(linear, 0, None) + read**2
    noisy = linear + np.sqrt(var) * rng.standard_normal(linear.shape)
    out = np.round(tone.encode(noisy) * 255) / 255
    if params.jpeg_fraction > 0 and rng.uniform() < params.jpeg_fraction:
        out = _jpeg(out, int(rng.integers(params.jpeg_quality[0], params.jpeg_quality[1] + 1)))
    return out.astype(np.float32)


def _camera_motion(
    rng: np.random.Generator, scene: Scene, crop: tuple[int, int], margin: int, length: float
) -> tuple[np.ndarray, float, np.ndarray]:
    """The camera's fine path scaled to a longest streak of ``length`` px in the crop; the
    focal length; and the tracks ``(_FINE, 9, 2)`` of 3 x 3 probe pixels."""
    (img_h, img_w), (top, left) = scene.image_shape, scene.region_origin
    focal = rng.uniform(0.5, 1.5) * max(img_h, img_w)
    rows = top + margin + np.array([0, (crop[0] - 1) / 2, crop[0] - 1]) - (img_h - 1) / 2
    cols = left + margin + np.array([0, (crop[1] - 1) / 2, crop[1] - 1]) - (img_w - 1) / 2
    probes = np.stack(np.meshgrid(cols, rows), -1).reshape(-1, 2)
    reach = max(float(np.sqrt((probes**2).sum(1)).max()), 1.0)
    path = _camera(rng, _FINE, focal, reach)
    path *= length / max(_extent(_apply(_homographies(path, focal), probes)), 1e-9)
    return path, focal, _apply(_homographies(path, focal), probes)


def render(
    region: np.ndarray,
    scene: Scene,
    rng: np.random.Generator,
    params: MotionParams,
    objects: tuple[np.ndarray, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """A realistic ``(blurred, sharp)`` pair from a sharp photo's region.

    Parameters
    ----------
    region : ndarray
        ``(h + 2 * margin, w + 2 * margin, C)`` float stored values in [0, 1]: the crop and
        ``params.margin`` pixels of context on each side.
    scene : Scene
        The photo's size and where the region lies in it.
    rng : Generator
        The source of every random choice.
    params : MotionParams
        Blur length, highlights, noise and JPEG settings.
    objects : tuple of ndarray
        ``(h_i, w_i, C)`` stored-value patches from other photos to move over the scene.

    Returns
    -------
    blurred, sharp : ndarray
        ``(h, w, C)`` float32 in [0, 1].
    """
    m = params.margin
    size = (region.shape[0] - 2 * m, region.shape[1] - 2 * m)
    gain = rng.uniform(*params.motion_highlight_gain)
    tone = ToneCurve(rng.uniform(*params.linear_light))
    path, focal, tracks = _camera_motion(rng, scene, size, m, rng.uniform(*params.motion_length))
    layers = [
        _layer(rng, p, size, m, gain, rng.uniform(*params.motion_length), tone) for p in objects
    ]
    travel = _path_length(tracks) + max([_path_length(x.path[:, None]) for x in layers] or [0])
    n = min(MAX_SUBFRAMES, max(9, math.ceil(travel) + 1)) | 1  # odd: t = 0 is a sub-frame
    shake = _extent(tracks) + 2
    layers = [
        dataclasses.replace(x, path=_resample(x.path, n), window=_window(x, m, size, shake))
        for x in layers
    ]
    inv = torch.from_numpy(np.linalg.inv(_homographies(_resample(path, n), focal))).float()
    (img_h, img_w), (top, left) = scene.image_shape, scene.region_origin
    ys, xs = np.mgrid[m : m + size[0], m : m + size[1]].astype(np.float64)
    base = np.stack([xs + left - (img_w - 1) / 2, ys + top - (img_h - 1) / 2, np.ones_like(xs)])
    base_t = torch.from_numpy(base.reshape(3, -1).T.copy()).float()
    shift = torch.tensor([(img_w - 1) / 2 - left, (img_h - 1) / 2 - top])
    background = torch.from_numpy(_to_linear(region, gain, tone).transpose(2, 0, 1).copy())[None]
    total = _exposure(background, layers, inv, base_t, shift, size)
    still = _exposure(background, layers, inv[n // 2 : n // 2 + 1], base_t, shift, size, n // 2)
    blurred = _develop((total / n).permute(1, 2, 0).numpy(), rng, params, tone)
    return blurred, tone.encode(still.permute(1, 2, 0).numpy())
