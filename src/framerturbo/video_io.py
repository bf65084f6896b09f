"""Reading endpoint images and writing results (.mp4 via PyAV/libx264, .gif, or a PNG folder).

Every writer goes through a temporary name and an atomic rename, so an interrupted run never
leaves a half-written output behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

VIDEO_SUFFIXES = {".mp4", ".gif"}


class InputError(ValueError):
    """A user-facing problem with an input file; the message names the file and the fix."""


def load_image(path: str | Path) -> Image.Image:
    """An RGB PIL image (EXIF rotation applied; grey, RGBA, CMYK or 16-bit converted)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found — check the path")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                img = Image.fromarray((arr / max(arr.max(), 1) * 255).astype(np.uint8))
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"{path}: not a readable image ({e.__class__.__name__}) — give a "
                         "PNG or JPEG file") from None


def to_uint8(frames) -> np.ndarray:
    """(F, H, W, 3) float in [0, 1] or uint8 → uint8."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    return frames


def atomic_path(path: Path) -> Path:
    """A temporary file beside ``path``; write it, then ``os.replace`` it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_mp4(frames: np.ndarray, path: Path, fps: float, crf: int = 18) -> None:
    import av
    from fractions import Fraction

    frames = to_uint8(frames)
    h, w = frames.shape[1:3]
    pad_h, pad_w = h % 2, w % 2  # yuv420p needs even sides
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    tmp = atomic_path(path)
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf)}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    images = [Image.fromarray(f) for f in to_uint8(frames)]
    tmp = atomic_path(path)
    try:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(int(round(1000 / fps)), 20), loop=0)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_png_folder(frames: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for i, frame in enumerate(to_uint8(frames)):
            Image.fromarray(frame).save(tmp / f"frame_{i:04d}.png")
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_frames(frames, path: str | Path, fps: float = 7.0) -> Path:
    """Write (F, H, W, 3) frames by the output's suffix: .mp4, .gif, or anything else = folder."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        write_mp4(frames, path, fps)
    elif suffix == ".gif":
        write_gif(frames, path, fps)
    elif suffix:
        raise InputError(f"{path}: unknown output type {suffix!r} — use .mp4, .gif, or a "
                         "folder name (PNG frames)")
    else:
        write_png_folder(frames, path)
    return path


def read_video_frames(path: str | Path) -> np.ndarray:
    """All frames of a (short) video as (F, H, W, 3) uint8 — for tests and small outputs."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
