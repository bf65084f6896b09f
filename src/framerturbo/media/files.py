"""Reading endpoint images and writing results (.mp4 via PyAV/libx264, .gif, or a PNG folder).

Every writer goes through ``atomic.py`` (temporary name + atomic rename), so an interrupted run
never leaves a half-written output behind.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.atomic import ReplaceRefused, atomic_dir, atomic_file, check_replaceable

VIDEO_SUFFIXES = {".mp4", ".gif"}


class InputError(ValueError):
    """A user-facing problem with an input file; the message names the file and the fix."""


MAX_PIXELS = 64_000_000  # larger endpoints are downscaled while decoding (JPEG) or rejected
MIN_SIDE = 16  # smaller endpoints carry no usable picture (and break the resizers)


def load_image(path: str | Path) -> Image.Image:
    """An RGB PIL image (EXIF rotation applied; grey, RGBA, CMYK or 16-bit converted). Huge
    images never reach memory whole: JPEGs are decoded at a reduced scale, others rejected;
    images with a side below ``MIN_SIDE`` pixels are rejected."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found — check the path")
    try:
        with Image.open(path) as img:
            w, h = img.size
            if min(w, h) < MIN_SIDE:
                raise InputError(f"{path}: {w}x{h} is too small (a side below {MIN_SIDE} "
                                 "px) — give the full-size frame")
            if w * h > MAX_PIXELS:
                if img.format != "JPEG":
                    raise InputError(f"{path}: {w}x{h} is too large (over "
                                     f"{MAX_PIXELS // 1_000_000} megapixels) — downscale it first")
                scale = int(np.ceil(np.sqrt(w * h / MAX_PIXELS)))
                img.draft("RGB", (w // scale, h // scale))
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit: full scale is 65535
                arr = np.clip(np.asarray(img, dtype=np.float64), 0, 65535)
                img = Image.fromarray((arr / 65535 * 255).round().astype(np.uint8))
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            return img.convert("RGB")
    except Image.DecompressionBombError:
        raise InputError(f"{path}: the image is too large to decode safely — downscale it "
                         "first") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"{path}: not a readable image ({e.__class__.__name__}) — give a "
                         "PNG or JPEG file") from None


def to_uint8(frames, peak: float = 1.0) -> np.ndarray:
    """Float frames in [0, peak] (or uint8) → uint8, clipped and rounded: the one float→uint8
    conversion of the package (``peak`` = 255 for frames already on the 0–255 scale)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0, peak) * (255 / peak)).round().astype(np.uint8)
    return frames


def as_rate(fps: float | Fraction | str) -> Fraction:
    """An exact frame rate: Fractions (and "30000/1001" strings) as they are; a float is read as
    the simplest rate within 1/1001 denominators, so float(30000/1001) gives 30000/1001 back
    (NTSC rates survive a float round trip) and 12.5 gives 25/2."""
    if isinstance(fps, (Fraction, int, str)):
        rate = Fraction(fps)
    else:
        rate = Fraction(float(fps)).limit_denominator(1001)
    if rate <= 0:
        raise InputError(f"frame rate {fps} must be positive")
    return rate


def write_mp4(frames: np.ndarray, path: Path, fps: float | Fraction, crf: int = 18) -> None:
    import av

    frames = to_uint8(frames)
    h, w = frames.shape[1:3]
    pad_h, pad_w = h % 2, w % 2  # yuv420p needs even sides
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with atomic_file(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=as_rate(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_gif(frames: np.ndarray, path: Path, fps: float | Fraction) -> None:
    images = [Image.fromarray(f) for f in to_uint8(frames)]
    with atomic_file(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(int(round(1000 / float(as_rate(fps)))), 20), loop=0)


def holds_only_frames(folder: Path) -> bool:
    """A PNG-frames output of an earlier run (what a new one may replace)."""
    return all(re.fullmatch(r"frame_\d{4,}\.png", p.name) for p in folder.iterdir())


def write_png_folder(frames: np.ndarray, path: Path) -> None:
    with atomic_dir(path, replace_if=holds_only_frames) as tmp:
        for i, frame in enumerate(to_uint8(frames)):
            Image.fromarray(frame).save(tmp / f"frame_{i:04d}.png")


def check_writable(path: str | Path) -> None:
    """Fail early (before any long job) when the output's folder cannot be made or written."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{path}: cannot write the output ({e.strerror or e}) — choose a "
                         "writable folder") from None
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: the folder is not writable — choose a writable folder")
    if Path(path).suffix == "":  # PNG frames: the folder is replaced whole
        check_replaceable(path, holds_only_frames)


def write_frames(frames, path: str | Path, fps: float | Fraction = 7.0) -> Path:
    """Write (F, H, W, 3) frames by the output's suffix: .mp4, .gif, or anything else = folder.
    ``fps`` may be an exact Fraction (e.g. a probed clip's ``VideoInfo.rate``); see ``as_rate``."""
    path = Path(path)
    suffix = path.suffix.lower()
    writers = {".mp4": lambda: write_mp4(frames, path, fps), ".gif": lambda: write_gif(
        frames, path, fps), "": lambda: write_png_folder(frames, path)}
    if suffix not in writers:
        raise InputError(f"{path}: unknown output type {suffix!r} — use .mp4, .gif, or a "
                         "folder name (PNG frames)")
    try:
        writers[suffix]()
    except ReplaceRefused:
        raise
    except OSError as e:
        raise InputError(f"{path}: cannot write the output ({e.strerror or e}) — choose a "
                         "writable folder with free space") from None
    return path


def read_video_frames(path: str | Path) -> np.ndarray:
    """All frames of a (short) video as (F, H, W, 3) uint8 — for tests and small outputs."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
