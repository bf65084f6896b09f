"""Procedural video worlds with ground-truth point tracks, deterministic from a seed.

* ``shapes`` — textured discs, squares and triangles moving on smooth paths (translating,
  rotating, scaling, occluding each other in depth order) over a textured background.
* ``signer`` — an articulated figure on a plain background: torso, head, two two-segment arms
  with hands and fingers, moving with smooth gesture motions (the sign-language domain).
* ``signer-close`` — the same figure filmed closer, on a dark backdrop, signing faster: the
  demo's adaptation target, kept out of the micro model's training.
* ``photos`` — a camera panning, zooming and turning over a real photograph (scikit-image's
  bundled ones) with moving, occluding cut-outs of other photos (``data/photos.py``).
* ``camera`` — a plain camera move over a photo no world uses (``HELD_OUT_PHOTOS``): stand-in
  real footage for checks, never for training.

Frames are rendered at 2× and box-filtered down (antialiasing). Every clip comes with tracks
(F, K, 2) in pixels and a visibility mask (F, K); ``masks`` (F, H, W) give, per pixel, the id of
the moving part that covers it (0 = background) for testing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..media.files import to_uint8, write_mp4
from .photos import render_camera, render_photos
from .scene import SyntheticClip, bezier_path, visibility

DOMAINS = ("shapes", "signer", "signer-close", "photos", "camera")


def _smooth_texture(rng, h, w, colors=3, blobs=24) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32) + rng.uniform(0.2, 0.8, 3)
    for _ in range(blobs):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.05, 0.2) * max(h, w)
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        img += g * rng.uniform(-0.35, 0.35, colors)
    return np.clip(img, 0, 1)


def _downsample(img: np.ndarray, factor: int) -> np.ndarray:
    h, w = img.shape[0] // factor, img.shape[1] // factor
    return img[:h * factor, :w * factor].reshape(h, factor, w, factor, -1).mean(axis=(1, 3))


# ------------------------------------------------------------------------------------- shapes
def _shape_inside(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test in the shape's unit frame (u, v in [-1, 1])."""
    if kind == "disc":
        return u**2 + v**2 <= 1
    if kind == "square":
        return (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    return (v <= 0.8) & (v >= -0.9 + 1.7 * np.abs(u))  # triangle


def _shape_texture(rng):
    c1, c2 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    freq, angle = rng.uniform(2, 5), rng.uniform(0, np.pi)
    checker = rng.random() < 0.5

    def colour(u, v):
        a = u * np.cos(angle) + v * np.sin(angle)
        if checker:
            pat = (np.floor(u * freq) + np.floor(v * freq)) % 2
        else:
            pat = (np.sin(a * freq * np.pi) > 0).astype(np.float32)
        return c1 * pat[..., None] + c2 * (1 - pat[..., None])
    return colour


def render_shapes(seed: int, num_frames: int = 9, size: int = 64, num_shapes: int = 3,
                  points_per_shape: int = 6, ss: int = 2) -> SyntheticClip:
    rng = np.random.default_rng([seed, 1])
    big = size * ss
    background = _smooth_texture(rng, big, big)
    yy, xx = (np.mgrid[:big, :big].astype(np.float32) + 0.5) / ss  # pixel centres, out units
    shapes = []
    for i in range(num_shapes):
        radius = rng.uniform(0.12, 0.22) * size
        shapes.append(dict(
            kind=rng.choice(["disc", "square", "triangle"]), colour=_shape_texture(rng),
            x=bezier_path(rng, num_frames, 0.2 * size, 0.8 * size),
            y=bezier_path(rng, num_frames, 0.2 * size, 0.8 * size),
            angle=bezier_path(rng, num_frames, -1.2, 1.2),
            scale=radius * bezier_path(rng, num_frames, 0.8, 1.25),
            anchors=_sample_inside(rng, points_per_shape)))
    frames, masks = [], []
    tracks = np.zeros((num_frames, num_shapes * points_per_shape, 2))
    owner = np.repeat(np.arange(1, num_shapes + 1), points_per_shape)
    for t in range(num_frames):
        img, mask = background.copy(), np.zeros((big, big), np.int32)
        for i, s in enumerate(shapes):  # later shapes are in front
            c, sn = np.cos(s["angle"][t]), np.sin(s["angle"][t])
            dx, dy = (xx - s["x"][t]) / s["scale"][t], (yy - s["y"][t]) / s["scale"][t]
            u, v = c * dx + sn * dy, -sn * dx + c * dy
            inside = _shape_inside(s["kind"], u, v)
            img[inside] = s["colour"](u, v)[inside]
            mask[inside] = i + 1
            au, av = s["anchors"][:, 0], s["anchors"][:, 1]
            k = slice(i * points_per_shape, (i + 1) * points_per_shape)
            tracks[t, k, 0] = s["x"][t] + s["scale"][t] * (c * au - sn * av)
            tracks[t, k, 1] = s["y"][t] + s["scale"][t] * (sn * au + c * av)
        frames.append(_downsample(img, ss))
        masks.append(mask[ss // 2::ss, ss // 2::ss])
    masks = np.stack(masks)
    visible = visibility(tracks, owner, masks, size)
    return SyntheticClip(to_uint8(np.stack(frames)), tracks, visible, masks)


def _sample_inside(rng, n):
    """Anchor points in the core that lies inside every shape kind (|u| ≤ 0.4, v ∈ [−0.1, 0.7])."""
    return np.stack([rng.uniform(-0.4, 0.4, n), rng.uniform(-0.1, 0.7, n)], axis=1)


# ------------------------------------------------------------------------------------- signer
def _capsule(xx, yy, a, b, radius):
    """Pixels within ``radius`` of the segment a→b."""
    ab = b - a
    t = np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / max(ab @ ab, 1e-9), 0, 1)
    return (xx - a[0] - t * ab[0]) ** 2 + (yy - a[1] - t * ab[1]) ** 2 <= radius**2


def _angles(rng, num_frames, base, amp, speed=1.0):
    t = np.linspace(0, 1, num_frames)
    freq, phase = speed * rng.uniform(0.4, 1.2), rng.uniform(0, 2 * np.pi)
    return base + amp * np.sin(2 * np.pi * freq * t + phase)


@dataclass(frozen=True)
class SignerStyle:
    """How a ``signer`` world films its figure. The default is the base model's ``signer``;
    :data:`CLOSE` is ``signer-close``, the demo's adaptation target: framed closer (zoom), on a
    dark backdrop, signing faster — larger motion between the endpoints."""

    background: tuple[float, float] = (0.75, 0.95)
    zoom: float = 1.0
    drop: float = 0.0  # how far the figure sits lower in the frame, in body units
    speed: float = 1.0  # gesture frequency multiplier


CLOSE = SignerStyle(background=(0.05, 0.3), zoom=1.35, drop=-8.0, speed=1.8)


def render_signer(seed: int, num_frames: int = 9, size: int = 64, ss: int = 2,
                  style: SignerStyle = SignerStyle()) -> SyntheticClip:
    rng = np.random.default_rng([seed, 2])
    big = size * ss
    yy, xx = (np.mgrid[:big, :big].astype(np.float32) + 0.5) / ss
    bg = rng.uniform(*style.background, 3)
    skin = rng.uniform([0.55, 0.35, 0.25], [0.95, 0.75, 0.6])
    shirt = rng.uniform(0.05, 0.6, 3)
    u = size / 64.0 * style.zoom  # body proportions scale with the frame
    centre = np.array([size / 2 + rng.uniform(-3, 3) * u, style.drop * u])
    shoulder_y = 34 * u
    arms = []
    for side in (-1, 1):  # angles from straight down; side = -1 left arm, +1 right arm
        arms.append(dict(side=side,
                         upper=_angles(rng, num_frames, 0.7, rng.uniform(0.3, 0.6), style.speed),
                         fore=_angles(rng, num_frames, 1.9, rng.uniform(0.4, 0.8), style.speed),
                         wrist=_angles(rng, num_frames, 0.0, rng.uniform(0.2, 0.5),
                                       style.speed)))
    frames, masks, tracks = [], [], []
    for t in range(num_frames):
        img = np.zeros((big, big, 3), np.float32) + bg
        img *= (0.92 + 0.08 * (yy / size))[..., None]  # soft vertical gradient
        mask = np.zeros((big, big), np.int32)
        torso = _capsule(xx, yy, centre + [0, shoulder_y + 4 * u], centre + [0, size + 8 * u],
                         13 * u)
        img[torso], mask[torso] = shirt, 1
        head_c = centre + [0, 20 * u]
        head = (xx - head_c[0]) ** 2 + (yy - head_c[1]) ** 2 <= (8 * u) ** 2
        img[head], mask[head] = skin, 2
        pts = [head_c]
        for a_i, arm in enumerate(arms):
            side = arm["side"]
            shoulder = centre + [side * 11 * u, shoulder_y]
            a1 = arm["upper"][t]
            elbow = shoulder + 13 * u * np.array([side * np.sin(a1), np.cos(a1)])
            a2 = a1 + arm["fore"][t]  # the elbow bends the forearm up and inwards
            wrist = elbow + 12 * u * np.array([side * np.sin(a2), np.cos(a2)])
            a3 = a2 + arm["wrist"][t]
            direction = np.array([side * np.sin(a3), np.cos(a3)])
            palm = wrist + 3.5 * u * direction
            part = 3 + a_i
            for (a, b), r, colour in (((shoulder, elbow), 3.6 * u, shirt * 0.85),
                                      ((elbow, wrist), 3.0 * u, skin * 0.95)):
                m = _capsule(xx, yy, a, b, r)
                img[m], mask[m] = colour, part
            hand = (xx - palm[0]) ** 2 + (yy - palm[1]) ** 2 <= (3.6 * u) ** 2
            img[hand], mask[hand] = skin, part
            normal = np.array([-direction[1], direction[0]])
            tips = []
            for k_f, spread in enumerate(np.linspace(-0.9, 0.9, 4)):
                d = direction * np.cos(spread * 0.6) + normal * np.sin(spread * 0.6)
                base = palm + 2.0 * u * d
                tip = base + (3.5 + (k_f % 2)) * u * d
                m = _capsule(xx, yy, base, tip, 0.9 * u)
                img[m], mask[m] = skin * 0.9, part
                tips.append(tip)
            pts += [elbow, wrist, palm, tips[0], tips[-1]]
        frames.append(_downsample(img, ss))
        masks.append(mask[ss // 2::ss, ss // 2::ss])
        tracks.append(np.array(pts))
    tracks = np.stack(tracks)
    masks = np.stack(masks)
    owner = np.array([2] + [3] * 5 + [4] * 5)
    visible = visibility(tracks, owner, masks, size)
    return SyntheticClip(to_uint8(np.stack(frames)), tracks, visible, masks)


def render(domain: str, seed: int, num_frames: int = 9, size: int = 64) -> SyntheticClip:
    if domain == "shapes":
        return render_shapes(seed, num_frames, size)
    if domain == "signer":
        return render_signer(seed, num_frames, size)
    if domain == "signer-close":
        return render_signer(seed, num_frames, size, style=CLOSE)
    if domain == "photos":
        return render_photos(seed, num_frames, size)
    if domain == "camera":
        return render_camera(seed, num_frames, size)
    raise ValueError(f"unknown domain {domain!r}; choose one of: {', '.join(DOMAINS)}")


def write_dataset(domain: str, n: int, out: str | Path, num_frames: int = 9, size: int = 64,
                  fps: float = 8.0, seed: int = 0, progress: bool = True) -> list[Path]:
    """``n`` clips as ``clip_NNNN.mp4`` (lossless-ish H.264) with ``.tracks.npz`` (training) and
    ``.tracks.json`` (the ``--tracks`` format, all frames as anchors)."""
    from tqdm.auto import tqdm


    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in tqdm(range(n), desc=f"synth {domain}", unit="clip", disable=not progress):
        clip = render(domain, seed * 1_000_003 + i, num_frames, size)
        path = out / f"clip_{i:04d}.mp4"
        write_mp4(clip.frames, path, fps, crf=4)
        times = np.arange(num_frames) / fps
        np.savez_compressed(path.with_name(path.name + ".tracks.npz"),
                            points=clip.tracks.astype(np.float32),
                            visible=clip.visible, times=times)
        keep = clip.visible.all(axis=0)
        doc = {"image_size": [size, size],
               "tracks": [{"points": clip.tracks[:, k].round(2).tolist()}
                          for k in np.flatnonzero(keep)]}
        path.with_name(path.name + ".tracks.json").write_text(json.dumps(doc))
        paths.append(path)
    return paths
