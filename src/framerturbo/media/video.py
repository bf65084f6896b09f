"""Reading only the frames a clip needs.

Videos are read with PyAV by *time*: seek to the keyframe before the clip's first timestamp and
decode forward until the last one — O(GOP + clip) per sample, never the whole file. Frames are
picked by timestamp, so variable-frame-rate files give the frames nearest the wanted times.
Frame-sequence folders (sorted image files) are read by index.
"""

from __future__ import annotations

import os
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
    except FileNotFoundError:
        raise UnreadableError(f"{path}: file not found — check the path") from None
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
    half = 0.5 / fps
    reader = _reader_for(path, times[0] - half)
    picked: list = []
    try:
        want = 0
        for frame, t in reader.frames():
            while want < len(times) and t >= times[want] - half:
                picked.append(frame)
                want += 1
            if want == len(times):
                break
        else:
            reader.close()  # decoded to the end: nothing left to continue from
        arrays = [f.to_ndarray(format="rgb24") for f in picked]
        rotation = reader.rotation
        if picked and getattr(picked[0], "rotation", 0):  # display matrix (PyAV >= 13)
            rotation = int(round(picked[0].rotation)) % 360
    except Exception as e:  # noqa: BLE001
        reader.close()
        raise UnreadableError(f"{path}: decoding failed ({e.__class__.__name__})") from None
    if len(arrays) < len(times):
        raise TooShortError(f"{path}: decoded {len(arrays)} of {len(times)} needed frames")
    frames = np.stack(arrays)
    if rotation:  # counter-clockwise degrees, as the display matrix gives them
        frames = np.rot90(frames, k=(rotation // 90) % 4, axes=(1, 2)).copy()
    return frames


RESIZE_MODES = ("crop", "squash", "pad")


class _Reader:
    """One open video, positioned after the last frame handed out. When the next clip of the same
    file starts later and no keyframe is expected in between, decoding simply continues — several
    clips from one file (cache building, every-window, evaluation windows) then cost one pass
    instead of one seek-and-decode-from-the-keyframe each, which for a file with a single
    keyframe is the difference between O(file) and O(file²)."""

    decoded_total = 0  # frames decoded by all readers of this process (benchmarks)

    def __init__(self, path: Path, stamp):
        import av

        self.path, self.stamp, self.pid = path, stamp, os.getpid()
        try:
            self.container = av.open(str(path))
            self.stream = self.container.streams.video[0]
        except Exception as e:  # noqa: BLE001
            raise UnreadableError(f"{path}: decoding failed ({e.__class__.__name__})") from None
        self.stream.thread_type = "AUTO"
        self.rotation = _rotation(self.stream)
        self.tb = float(self.stream.time_base)
        st = self.stream.start_time
        self.start = float(st * self.stream.time_base) if st else 0.0
        self.last_t: float | None = None  # time of the last frame handed out
        self.last_key: float | None = None  # the last keyframe seen while decoding
        self.gop = 0.0  # longest keyframe interval seen (a lower bound on the file's)
        self._iter = None
        self.decoded = 0  # frames decoded (for tests and benchmarks)

    def can_continue(self, first: float) -> bool:
        """True when continuing to ``first`` decodes no more than a seek would (no keyframe is
        expected between the current position and ``first``)."""
        if self._iter is None or self.last_t is None or first <= self.last_t:
            return False
        since_key = self.last_t - (self.last_key if self.last_key is not None else 0.0)
        return first - self.last_t <= max(self.gop, since_key)

    def seek(self, first: float) -> None:
        if first > 1.0:
            self.container.seek(int((first + self.start) / self.tb), stream=self.stream,
                                backward=True, any_frame=False)
        elif self._iter is not None:
            self.container.seek(0, stream=self.stream, backward=True, any_frame=False)
        self._iter = self.container.decode(self.stream)
        self.last_t = self.last_key = None

    def frames(self):
        for frame in self._iter:
            if frame.pts is None:
                continue
            self.decoded += 1
            _Reader.decoded_total += 1
            t = frame.pts * self.tb - self.start
            if frame.key_frame:
                if self.last_key is not None:
                    self.gop = max(self.gop, t - self.last_key)
                self.last_key = t
            self.last_t = t
            yield frame, t

    def close(self) -> None:
        if _READERS.get("open") is self:
            del _READERS["open"]
        self._iter = None
        try:
            self.container.close()
        except Exception:  # noqa: BLE001
            pass


_READERS: dict[str, _Reader] = {}  # the one open reader of this process


def _reader_for(path: Path, first: float) -> _Reader:
    """The open reader for ``path`` positioned before ``first`` (continued or sought)."""
    try:
        st = path.stat()
    except OSError as e:
        raise UnreadableError(f"{path}: cannot open ({e.strerror or e})") from None
    stamp = (st.st_size, st.st_mtime_ns)
    reader = _READERS.get("open")
    if reader is not None and reader.pid != os.getpid():  # inherited through fork: not ours
        _READERS.pop("open")
        reader = None
    if reader is not None and (reader.path != path or reader.stamp != stamp):
        reader.close()
        reader = None
    if reader is not None and reader.can_continue(first):
        return reader
    if reader is None:
        reader = _Reader(path, stamp)
        _READERS["open"] = reader
    try:
        reader.seek(first)
    except Exception as e:  # noqa: BLE001
        reader.close()
        raise UnreadableError(f"{path}: decoding failed ({e.__class__.__name__})") from None
    return reader


@dataclass
class Fit:
    """How a (h, w) picture maps onto a (height, width) canvas: scaled to (nh, nw), then placed
    with its top-left corner at (-top, -left) — positive offsets crop, negative ones pad."""

    nh: int
    nw: int
    top: int
    left: int


def fit(h: int, w: int, height: int, width: int, mode: str = "crop") -> Fit:
    """The one crop geometry: ``crop`` = aspect-preserving cover + centre crop, ``pad`` =
    aspect-preserving fit + centre pad (letterbox), ``squash`` = plain resize."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r} — use {', '.join(RESIZE_MODES)}")
    if mode == "squash":
        return Fit(height, width, 0, 0)
    if mode == "crop":
        scale = max(height / h, width / w)
        nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    else:
        scale = min(height / h, width / w)
        nh, nw = min(height, round(h * scale)), min(width, round(w * scale))
    return Fit(nh, nw, (nh - height) // 2, (nw - width) // 2)


@dataclass
class Canvas:
    """A picture placed on a canvas of the frame's aspect at the picture's own resolution (so a
    plain resize to the frame scales it evenly): ``pad`` puts the picture at (top, left) of a
    larger canvas, ``crop`` cuts the canvas from the picture at (top, left); ``squash`` is the
    picture itself."""

    picture_hw: tuple[int, int]
    canvas_hw: tuple[int, int]
    top: int
    left: int
    mode: str

    @property
    def shift(self) -> tuple[int, int]:
        """(dx, dy) to add to a picture pixel position to get its canvas position."""
        sign = 1 if self.mode == "pad" else -1
        return sign * self.left, sign * self.top

    def place(self, picture: np.ndarray) -> np.ndarray:
        """(h, w, 3) picture → (canvas h, canvas w, 3): padded with black or cropped."""
        (ch, cw), (h, w) = self.canvas_hw, self.picture_hw
        if self.mode == "pad":
            canvas = np.zeros((ch, cw, *picture.shape[2:]), picture.dtype)
            canvas[self.top:self.top + h, self.left:self.left + w] = picture
            return canvas
        return np.ascontiguousarray(picture[self.top:self.top + ch, self.left:self.left + cw])

    def content_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the picture in a (height, width) frame made from the canvas:
        ``pad``: inside the bars; otherwise the whole frame."""
        if self.mode != "pad":
            return 0, 0, height, width
        (ch, cw), (h, w) = self.canvas_hw, self.picture_hw
        return (round(self.top * height / ch), round(self.left * width / cw),
                max(1, round(h * height / ch)), max(1, round(w * width / cw)))

    def content(self, frames: np.ndarray) -> np.ndarray:
        """(F, height, width, 3) frames made from the canvas → the part that shows the picture
        (``pad``: the padding cut off; otherwise the frames as they are)."""
        top, left, nh, nw = self.content_box(*frames.shape[1:3])
        return np.ascontiguousarray(frames[:, top:top + nh, left:left + nw])


def canvas_for(h: int, w: int, height: int, width: int, mode: str = "pad") -> Canvas:
    """The :class:`Canvas` that maps a (h, w) picture onto a (height, width) frame by ``mode``
    without squashing it (``squash``: the picture as it is)."""
    fit(h, w, height, width, mode)  # the mode check
    if mode == "squash":
        return Canvas((h, w), (h, w), 0, 0, mode)
    scale = (min if mode == "pad" else max)(height / h, width / w)
    ch, cw = round(height / scale), round(width / scale)
    ch, cw = (max(ch, h), max(cw, w)) if mode == "pad" else (min(ch, h), min(cw, w))
    return Canvas((h, w), (ch, cw), abs(ch - h) // 2, abs(cw - w) // 2, mode)


def _resize(frames: np.ndarray, nh: int, nw: int) -> np.ndarray:
    import cv2

    h, w = frames.shape[1:3]
    if (nh, nw) == (h, w):
        return frames
    interp = cv2.INTER_AREA if nh * nw < h * w else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (nw, nh), interpolation=interp) for f in frames])


def resize_frames(frames: np.ndarray, height: int, width: int, mode: str = "crop") -> np.ndarray:
    """(F, h, w, 3) → (F, height, width, 3) by :func:`fit` (``pad`` fills with black)."""
    g = fit(*frames.shape[1:3], height, width, mode)
    out = _resize(frames, g.nh, g.nw)
    if g.top < 0 or g.left < 0:
        canvas = np.zeros((len(frames), height, width, 3), frames.dtype)
        canvas[:, -g.top:-g.top + g.nh, -g.left:-g.left + g.nw] = out
        return canvas
    return np.ascontiguousarray(out[:, g.top:g.top + height, g.left:g.left + width])


def unfit_frames(frames: np.ndarray, h: int, w: int, mode: str = "pad") -> np.ndarray:
    """The inverse of :func:`resize_frames` for ``pad`` and ``squash``: (F, height, width, 3)
    frames made at the canvas size → the (h, w) picture (padding dropped, no squash)."""
    height, width = frames.shape[1:3]
    g = fit(h, w, height, width, mode)
    if g.top > 0 or g.left > 0:
        raise ValueError("a cropped picture cannot be restored — use pad")
    inner = frames[:, -g.top:-g.top + g.nh, -g.left:-g.left + g.nw]
    return np.ascontiguousarray(_resize(inner, h, w))


def crop_transform(h: int, w: int, height: int, width: int, mode: str = "crop"):
    """(scale_x, scale_y, offset_x, offset_y) mapping source pixels to output pixels, matching
    :func:`resize_frames` (for tracks)."""
    g = fit(h, w, height, width, mode)
    return g.nw / w, g.nh / h, g.left, g.top
