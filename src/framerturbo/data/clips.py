"""Clip sampling: which timestamps a training clip reads from a source.

Modes: ``random`` (one clip per source and epoch, random start), ``uniform`` (the F frames spread
evenly over the whole source — word-level sign clips), ``every-window`` (every window is its own
sample; consecutive windows share ``window_overlap`` frames, none by default). Spacing is
``stride`` source frames, or 1/``target_fps`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sources import ClipSource
from ..media.video import VideoInfo


@dataclass
class Span:
    start: float  # seconds
    end: float
    fps: float


def source_span(src: ClipSource, info: VideoInfo) -> Span:
    fps = float(src.fps or info.fps)
    start, end = 0.0, info.num_frames / fps
    if src.start_frame is not None:
        start = src.start_frame / fps
    if src.end_frame is not None:
        end = min(end, (src.end_frame + 1) / fps)
    if src.start_time is not None:
        start = float(src.start_time)
    if src.end_time is not None:
        end = min(end, float(src.end_time))
    return Span(start, end, fps)


def frame_step(span: Span, num_frames: int, stride: int, target_fps: float, mode: str) -> float:
    """Seconds between sampled frames."""
    if mode == "uniform":
        usable = span.end - span.start - 1.0 / span.fps
        return max(usable, 0.0) / (num_frames - 1)
    return 1.0 / target_fps if target_fps > 0 else stride / span.fps


def available_frames(span: Span) -> int:
    return int(round((span.end - span.start) * span.fps))


def window_hop(num_frames: int, step: float, overlap: int = 0) -> float:
    """Seconds between the starts of consecutive windows that share ``overlap`` frames."""
    return (num_frames - overlap) * step


def num_windows(span: Span, num_frames: int, step: float, overlap: int = 0) -> int:
    """How many clips of ``num_frames`` spaced ``step`` fit (0 = too short)."""
    length = (num_frames - 1) * step
    room = span.end - span.start - 1.0 / span.fps - length
    if room < -1e-6 or step * span.fps < 1 - 1e-6:
        return 0
    return int(room / window_hop(num_frames, step, overlap) + 1e-6) + 1


def clip_times(span: Span, num_frames: int, step: float, mode: str, window: int,
               rng: np.random.Generator, overlap: int = 0) -> list[float]:
    """Timestamps (seconds from the file start) of one clip; ``every-window`` windows share
    ``overlap`` frames with their neighbours."""
    length = (num_frames - 1) * step
    room = max(span.end - span.start - 1.0 / span.fps - length, 0.0)
    if mode == "random":
        first = span.start + rng.uniform(0.0, room)
    elif mode == "uniform":
        first = span.start
    else:
        first = span.start + window * window_hop(num_frames, step, overlap)
    return [first + k * step for k in range(num_frames)]


def effective_fps(step: float) -> float:
    """The frame rate of a sampled clip — what the fps micro-conditioning should describe."""
    return 1.0 / step
