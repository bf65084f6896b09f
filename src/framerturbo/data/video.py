"""Reading only the frames a clip needs.

Videos are read with PyAV by *time*: seek to the keyframe before the clip's first timestamp and
decode forward until the last one — O(GOP + clip) per sample, never the whole file. Frames are
picked by timestamp, so variable-frame-rate files give the frames nearest the wanted times.
Frame-sequence folders (sorted image files) are read by index.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


class UnreadableError(ValueError):
    """The file cannot be decoded (corrupt, truncated, not a video)."""


class TooShortError(ValueError):
    """The source has fewer frames than the clip needs."""


@dataclass
class VideoInfo:
    duration: float  # seconds
    fps: float
    num_frames: int  # estimate (containers are not always exact)
    width: int
    height: int
    rate: Fraction | None = None  # the exact container rate (30000/1001 stays 30000/1001)


def _rotation(stream) -> int:
    try:
        matrix = stream.side_data.get("DISPLAYMATRIX") if hasattr(stream, "side_data") else None
        if matrix is not None:
            return int(round(float(matrix))) % 360
    except Exception:  # noqa: BLE001 - metadata is optional
        pass
    try:
        return int(stream.metadata.get("rotate", 0)) % 360
    except (TypeError, ValueError):
        return 0


def probe(path: str | Path) -> VideoInfo:
    """Container metadata without decoding (falls back to decoding when it is missing)."""
    path = Path(path)
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise UnreadableError(f"{path}: no image files in the frame folder")
        with Image.open(files[0]) as img:
            w, h = img.size
        return VideoInfo(duration=len(files) / 25.0, fps=25.0, num_frames=len(files),
                         width=w, height=h, rate=Fraction(25))
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnreadableError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = Fraction(stream.average_rate or stream.guessed_rate or 0) or Fraction(25)
            fps = float(rate)
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1e6
            frames = stream.frames or int(round(duration * fps))
            if frames <= 0:  # no usable metadata: count by decoding
                frames = sum(1 for _ in container.decode(video=0))
                duration = frames / fps
            w, h = stream.codec_context.width, stream.codec_context.height
            if _rotation(stream) in (90, 270):
                w, h = h, w
            return VideoInfo(duration=duration or frames / fps, fps=fps, num_frames=frames,
                             width=w, height=h, rate=rate)
    except UnreadableError:
        raise
    except Exception as e:  # noqa: BLE001 - PyAV raises many error types for bad files
        raise UnreadableError(f"{path}: cannot open as video ({e.__class__.__name__})") from None


def decodable_frames(path: str | Path, info: VideoInfo) -> int:
    """How many frames really decode, by timestamp (the container's count can be wrong: a file
    cut short with its index at the front still claims every frame). Seeks to the keyframe
    before the claimed last frame and decodes to the end — one GOP for a healthy file; when
    nothing decodes there (the data is missing) it decodes from the start."""
    path = Path(path)
    if path.is_dir():
        return info.num_frames
    import av

    def last_time(seek_to: float | None) -> float | None:
        last = None
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                tb = float(stream.time_base)
                start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
                if seek_to:
                    container.seek(int((seek_to + start) / tb), stream=stream, backward=True,
                                   any_frame=False)
                for frame in container.decode(stream):
                    if frame.pts is not None:
                        last = max(last or 0.0, frame.pts * tb - start)
        except Exception:  # noqa: BLE001 - a decode error ends the readable part
            pass
        return last

    claimed_last = (info.num_frames - 1) / info.fps
    last = last_time(claimed_last) if claimed_last > 1.0 else None
    if last is None:
        last = last_time(None)
    return 0 if last is None else int(round(last * info.fps)) + 1


def frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def read_frames_at(path: str | Path, times: list[float], fps: float) -> np.ndarray:
    """Frames nearest the given times (seconds, increasing) as (F, H, W, 3) uint8."""
    path = Path(path)
    if path.is_dir():
        files = frame_files(path)
        idx = [int(round(t * fps)) for t in times]
        if not files or idx[-1] >= len(files):
            raise TooShortError(f"{path}: needs frame {idx[-1]}, has {len(files)}")
        out = []
        for i in idx:
            with Image.open(files[i]) as img:
                out.append(np.asarray(ImageOps.exif_transpose(img).convert("RGB")))
        return np.stack(out)
    import av

    half = 0.5 / fps
    picked: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rotation = _rotation(stream)
            tb = float(stream.time_base)
            start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
            if times[0] > 1.0:
                container.seek(int((times[0] + start) / tb), stream=stream, backward=True,
                               any_frame=False)
            want = 0
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = frame.pts * tb - start
                while want < len(times) and t >= times[want] - half:
                    picked.append(frame)
                    want += 1
                if want == len(times):
                    break
            arrays = [f.to_ndarray(format="rgb24") for f in picked]
            if picked and getattr(picked[0], "rotation", 0):  # display matrix (PyAV >= 13)
                rotation = int(round(picked[0].rotation)) % 360
    except Exception as e:  # noqa: BLE001
        raise UnreadableError(f"{path}: decoding failed ({e.__class__.__name__})") from None
    if len(arrays) < len(times):
        raise TooShortError(f"{path}: decoded {len(arrays)} of {len(times)} needed frames")
    frames = np.stack(arrays)
    if rotation:  # counter-clockwise degrees, as the display matrix gives them
        frames = np.rot90(frames, k=(rotation // 90) % 4, axes=(1, 2)).copy()
    return frames


def resize_frames(frames: np.ndarray, height: int, width: int, mode: str = "crop") -> np.ndarray:
    """(F, h, w, 3) → (F, height, width, 3): aspect-preserving cover-resize + centre crop, or
    ``squash`` (plain resize)."""
    import cv2

    h, w = frames.shape[1:3]
    if mode == "crop":
        scale = max(height / h, width / w)
        nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    else:
        nh, nw = height, width
    interp = cv2.INTER_AREA if nh * nw < h * w else cv2.INTER_CUBIC
    out = np.stack([cv2.resize(f, (nw, nh), interpolation=interp) for f in frames])
    top, left = (nh - height) // 2, (nw - width) // 2
    return np.ascontiguousarray(out[:, top:top + height, left:left + width])


def crop_transform(h: int, w: int, height: int, width: int, mode: str = "crop"):
    """(scale_x, scale_y, offset_x, offset_y) mapping source pixels to output pixels, matching
    :func:`resize_frames` (for tracks)."""
    if mode == "crop":
        scale = max(height / h, width / w)
        nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    else:
        nh, nw = height, width
    return nw / w, nh / h, (nw - width) // 2, (nh - height) // 2
