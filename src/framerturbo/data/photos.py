"""The ``photos`` world: clips cut from real photographs that ship inside scikit-image.

A virtual camera pans, zooms and turns a little over one photo while 1–3 cut-outs (discs,
ellipses or convex polygons with hard or soft edges, textured with patches of another photo)
move on smooth paths in front of it, in depth order, under a smooth global brightness/contrast
change. Procedural worlds never show the micro model natural-image statistics; this one does,
with ground-truth tracks on the background (camera motion) and on every cut-out.

Two colour photos, ``HELD_OUT_PHOTOS``, are never used here: they are kept for an "unseen real
footage" check, which ``camera_clip`` makes (a plain camera move over any image).

Coordinates: a pixel's centre in a frame is (i + 0.5); photo coordinates follow the same rule
in the working copy of the photo (short side ``PHOTO_SIDE × size``). Frames are rendered at 2×
with bilinear sampling and box-filtered down, like the other worlds.
"""

from __future__ import annotations

from functools import cache, lru_cache

import cv2
import numpy as np

from ..media.files import to_uint8
from .scene import SyntheticClip, bezier_path, visibility

# Licences from each function's docstring in skimage/data/_fetchers.py (scikit-image 0.26);
# moon (no licence stated) and horse (clip-art silhouette, not a photograph) are not used.
COLOUR_PHOTOS = ("astronaut", "chelsea", "hubble_deep_field", "immunohistochemistry")
GREY_PHOTOS = ("camera", "grass", "gravel", "brick", "coins", "clock")
PHOTOS = COLOUR_PHOTOS + GREY_PHOTOS  # what the photos world draws from
HELD_OUT_PHOTOS = ("rocket", "coffee")  # never used by the photos world: unseen real footage
PHOTO_SIDE = 4  # a photo's working copy has short side PHOTO_SIDE × frame size
BG_POINTS, CUTOUT_POINTS = 8, 6  # tracks per clip: background, each cut-out


def _need_skimage():
    try:
        import skimage.data
    except ImportError as e:  # an optional dependency: only this world needs it
        raise ImportError("the 'photos' world needs scikit-image: pip install "
                          "'framerturbo[photos]' (or scikit-image>=0.22)") from e
    return skimage.data


@cache
def load_photo(name: str) -> np.ndarray:
    """The photo as float32 RGB in [0, 1] (grey ones repeated to three channels), read-only."""
    data = _need_skimage()
    if name not in PHOTOS + HELD_OUT_PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of: "
                         f"{', '.join(PHOTOS + HELD_OUT_PHOTOS)}")
    img = np.asarray(getattr(data, name)()).astype(np.float32) / 255.0
    img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
    img.flags.writeable = False
    return img


def _working_copy(img: np.ndarray, short: int) -> np.ndarray:
    """``img`` resized (area interpolation) so that its short side is ``short`` pixels."""
    h, w = img.shape[:2]
    f = short / min(h, w)
    size = (max(short, round(w * f)), max(short, round(h * f)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)


@lru_cache(maxsize=64)
def _working_photo(name: str, short: int) -> np.ndarray:
    img = _working_copy(load_photo(name), short)
    img.flags.writeable = False
    return img


def _as_rgb_float(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or min(img.shape[:2]) < 2:
        raise ValueError(f"camera_clip needs an (H, W), (H, W, 3) or (H, W, 4) image, "
                         f"got shape {img.shape}")
    img = img[..., :3] if img.shape[2] != 1 else np.repeat(img, 3, axis=2)
    return img.astype(np.float32) / (255.0 if img.dtype.kind in "ui" else 1.0)


# ------------------------------------------------------------------------------------- camera
def _rot(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s], [s, c]])


class _Camera:
    """Frame point q ↦ photo point C(t) + z(t)·R(θ(t))·(q − size/2): a smooth pan, zoom and
    small rotation that keeps the whole frame inside the photo."""

    def __init__(self, rng, num_frames: int, size: int, photo_hw: tuple[int, int]):
        u = size / 64.0
        self.size = size
        zoom = rng.uniform(1.5, 2.2)  # photo pixels per frame pixel (working copy)
        self.z = zoom * np.exp(bezier_path(rng, num_frames, -0.12, 0.12))
        self.theta = rng.uniform(-0.08, 0.08) + bezier_path(rng, num_frames, -0.06, 0.06)
        pan = np.stack([bezier_path(rng, num_frames, -6 * u, 6 * u),
                        bezier_path(rng, num_frames, -6 * u, 6 * u)], axis=1) * zoom
        half = size / 2
        corners = np.array([[-half, -half], [half, -half], [-half, half], [half, half]])
        reach = np.stack([pan[t] + self.z[t] * corners @ _rot(self.theta[t]).T
                          for t in range(num_frames)])  # (F, 4, 2) relative to C0
        lo, hi = reach.min(axis=(0, 1)), reach.max(axis=(0, 1))
        room_hi = np.array([photo_hw[1], photo_hw[0]]) - hi
        c0 = np.array([rng.uniform(-lo[i] + 1, room_hi[i] - 1) if room_hi[i] - 1 > -lo[i] + 1
                       else (room_hi[i] - lo[i]) / 2 for i in range(2)])
        self.centre = c0 + pan  # (F, 2)

    def to_photo(self, t: int, q: np.ndarray) -> np.ndarray:
        return self.centre[t] + self.z[t] * (q - self.size / 2) @ _rot(self.theta[t]).T

    def to_frame(self, t: int, p: np.ndarray) -> np.ndarray:
        return self.size / 2 + ((p - self.centre[t]) / self.z[t]) @ _rot(self.theta[t])

    def affine(self, t: int) -> np.ndarray:
        """2×3 map [A | b] from a frame point q to the photo point A·q + b (for _sample)."""
        m = self.z[t] * _rot(self.theta[t])
        return np.concatenate([m, (self.centre[t] - m @ np.full(2, self.size / 2))[:, None]], axis=1)


def _sample(photo: np.ndarray, affine: np.ndarray, big: int, ss: int) -> np.ndarray:
    """The (big, big, 3) 2× canvas whose frame point q shows photo point A·q + b (bilinear)."""
    a = affine[:, :2] / ss  # canvas pixel x ↦ q = (x + 0.5) / ss
    b = affine[:, 2] + affine[:, :2] @ [0.5 / ss, 0.5 / ss] - 0.5  # photo centres at j + 0.5
    m = np.concatenate([a, b[:, None]], axis=1).astype(np.float64)
    return cv2.warpAffine(photo, m, (big, big), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)


def _downsample(img: np.ndarray, size: int) -> np.ndarray:
    """The 2× canvas box-filtered to the frame: synthetic._downsample's mean, ~15× faster."""
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def _lighting(rng, num_frames):
    """Per-frame contrast and brightness: a smooth global exposure change."""
    return bezier_path(rng, num_frames, 0.8, 1.15), bezier_path(rng, num_frames, -0.07, 0.07)


# ------------------------------------------------------------------------------------- cut-outs
def _outline(rng):
    """A signed distance-like function of unit-frame points (< 0 inside) for a disc, an ellipse
    or a convex polygon."""
    kind = rng.choice(["disc", "ellipse", "polygon"])
    if kind == "disc":
        return lambda u, v: np.sqrt(u * u + v * v) - 1.0
    if kind == "ellipse":
        ax, ay = rng.uniform(0.65, 1.0, 2)
        return lambda u, v: np.sqrt((u / ax) ** 2 + (v / ay) ** 2) - 1.0
    n = int(rng.integers(5, 8))
    angles = np.sort(np.linspace(0, 2 * np.pi, n, endpoint=False)
                     + rng.uniform(-0.3, 0.3, n) * np.pi / n) + rng.uniform(0, 2 * np.pi)
    verts = np.stack([np.cos(angles), np.sin(angles)], 1) * rng.uniform(0.8, 1.0, n)[:, None]
    edges = np.roll(verts, -1, axis=0) - verts
    normals = np.stack([edges[:, 1], -edges[:, 0]], 1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    normals *= np.sign((normals * verts).sum(1, keepdims=True))  # outward
    offsets = (normals * verts).sum(1)

    def sd(u, v):
        return np.max([nx * u + ny * v - h for (nx, ny), h in zip(normals, offsets)], axis=0)
    return sd


class _Cutout:
    """A patch of another photo inside an outline, moving on a smooth path; the texture turns
    and scales with it. Frame point q ↦ unit point R(−a)(q − X)/(r·s) ↦ photo point."""

    def __init__(self, rng, num_frames: int, size: int, photo: np.ndarray):
        u = size / 64.0
        self.photo = photo
        self.radius = rng.uniform(0.14, 0.24) * size
        self.sd = _outline(rng)
        self.soft = rng.uniform(0.08, 0.3) if rng.random() < 0.5 else 0.0
        start = rng.uniform(0.25 * size, 0.75 * size, 2)
        self.xy = start + np.stack([bezier_path(rng, num_frames, -9 * u, 9 * u),
                                    bezier_path(rng, num_frames, -9 * u, 9 * u)], axis=1)
        self.angle = rng.uniform(-np.pi, np.pi) + bezier_path(rng, num_frames, -0.5, 0.5)
        self.scale = self.radius * bezier_path(rng, num_frames, 0.85, 1.15)
        k = self.radius * rng.uniform(1.2, 2.0)  # photo pixels per unit of the outline
        self.tex = k * _rot(rng.uniform(-np.pi, np.pi))
        h, w = photo.shape[:2]
        m = 1.5 * k
        self.tex_centre = rng.uniform([m, m], [max(m, w - m), max(m, h - m)])
        anchors = []
        while len(anchors) < CUTOUT_POINTS:  # well inside: sd below the soft edge
            p = rng.uniform(-0.8, 0.8, 2)
            if self.sd(p[0], p[1]) < -(self.soft + 0.12):
                anchors.append(p)
        self.anchors = np.array(anchors)

    def unit_to_frame(self, t: int, p: np.ndarray) -> np.ndarray:
        return self.xy[t] + self.scale[t] * p @ _rot(self.angle[t]).T

    def affine(self, t: int) -> np.ndarray:
        """2×3 map from the frame to the cut-out's photo."""
        m = self.tex @ _rot(-self.angle[t]) / self.scale[t]
        return np.concatenate([m, (self.tex_centre - m @ self.xy[t])[:, None]], axis=1)

    def alpha(self, t: int, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.angle[t]), np.sin(self.angle[t])
        dx, dy = (xx - self.xy[t, 0]) / self.scale[t], (yy - self.xy[t, 1]) / self.scale[t]
        d = self.sd(c * dx + s * dy, -s * dx + c * dy)
        if self.soft:
            return np.clip(-d / self.soft, 0.0, 1.0)
        return (d <= 0).astype(np.float32)


# ------------------------------------------------------------------------------------- render
def _tint(rng, grey: bool) -> np.ndarray:
    return rng.uniform(0.75, 1.0, 3).astype(np.float32) if grey else np.ones(3, np.float32)


def pick_photos(seed: int) -> tuple[str, list[str]]:
    """The background photo and the cut-outs' photos that ``render_photos(seed)`` uses."""
    rng = np.random.default_rng([seed, 3])
    return _pick(rng)


def _pick(rng) -> tuple[str, list[str]]:
    background = str(rng.choice(PHOTOS))
    others = [p for p in PHOTOS if p != background]
    n = int(rng.integers(1, 4))
    return background, [str(rng.choice(others)) for _ in range(n)]


def render_photos(seed: int, num_frames: int = 9, size: int = 64, ss: int = 2,
                  lighting: bool = True) -> SyntheticClip:
    """A ``photos`` clip; ``lighting=False`` drops the exposure change (the tests compare
    colours along tracks)."""
    rng = np.random.default_rng([seed, 3])
    big = size * ss
    background, sources = _pick(rng)
    photo = _working_photo(background, PHOTO_SIDE * size)
    camera = _Camera(rng, num_frames, size, photo.shape[:2])
    bg_tint = _tint(rng, background in GREY_PHOTOS)
    cutouts = [_Cutout(rng, num_frames, size, _working_photo(name, PHOTO_SIDE * size))
               for name in sources]
    tints = [_tint(rng, name in GREY_PHOTOS) for name in sources]
    contrast, brightness = _lighting(rng, num_frames)
    bg_anchor = camera.to_photo(0, rng.uniform(2, size - 2, (BG_POINTS, 2)))
    yy, xx = (np.mgrid[:big, :big].astype(np.float32) + 0.5) / ss
    frames, masks = [], []
    tracks = np.zeros((num_frames, BG_POINTS + CUTOUT_POINTS * len(cutouts), 2))
    owner = np.concatenate([np.zeros(BG_POINTS, int),
                            np.repeat(np.arange(1, len(cutouts) + 1), CUTOUT_POINTS)])
    for t in range(num_frames):
        img = _sample(photo, camera.affine(t), big, ss) * bg_tint
        mask = np.zeros((big, big), np.int32)
        tracks[t, :BG_POINTS] = camera.to_frame(t, bg_anchor)
        for i, (cut, tint) in enumerate(zip(cutouts, tints)):  # later cut-outs in front
            a = cut.alpha(t, xx, yy)
            img += a[..., None] * (_sample(cut.photo, cut.affine(t), big, ss) * tint - img)
            mask[a >= 0.5] = i + 1
            k = BG_POINTS + i * CUTOUT_POINTS
            tracks[t, k:k + CUTOUT_POINTS] = cut.unit_to_frame(t, cut.anchors)
        frame = _downsample(img, size)
        if lighting:
            frame = (frame - 0.5) * contrast[t] + 0.5 + brightness[t]
        frames.append(frame)
        masks.append(mask[ss // 2::ss, ss // 2::ss])
    masks = np.stack(masks)
    visible = visibility(tracks, owner, masks, size)
    return SyntheticClip(to_uint8(np.stack(frames)), tracks, visible, masks)


def camera_clip(image: np.ndarray, seed: int, num_frames: int = 9, size: int = 64,
                ss: int = 2) -> SyntheticClip:
    """A plain camera pan/zoom/turn over ``image`` ((H, W[, 3|4]) uint8 or float in [0, 1]) — the
    photos world's camera without cut-outs or exposure change: "real camera footage" from any
    picture (e.g. the ``HELD_OUT_PHOTOS``). Tracks follow background points; masks are all 0."""
    rng = np.random.default_rng([seed, 4])
    big = size * ss
    photo = _working_copy(_as_rgb_float(image), PHOTO_SIDE * size)
    camera = _Camera(rng, num_frames, size, photo.shape[:2])
    anchor = camera.to_photo(0, rng.uniform(2, size - 2, (BG_POINTS, 2)))
    frames = [_downsample(_sample(photo, camera.affine(t), big, ss), size)
              for t in range(num_frames)]
    tracks = np.stack([camera.to_frame(t, anchor) for t in range(num_frames)])
    masks = np.zeros((num_frames, size, size), np.int32)
    visible = visibility(tracks, np.zeros(BG_POINTS, int), masks, size)
    return SyntheticClip(to_uint8(np.stack(frames)), tracks, visible, masks)


def render_camera(seed: int, num_frames: int = 9, size: int = 64) -> SyntheticClip:
    """The ``camera`` world: :func:`camera_clip` over one of the ``HELD_OUT_PHOTOS`` by seed."""
    photo = load_photo(HELD_OUT_PHOTOS[seed % len(HELD_OUT_PHOTOS)])
    return camera_clip(photo, seed, num_frames, size)
