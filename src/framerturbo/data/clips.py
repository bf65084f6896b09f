"""Clip sampling: which timestamps a training clip reads from a source.

Modes: ``random`` (one clip per source and epoch, random start), ``uniform`` (the F frames spread
evenly over the whole source — word-level sign clips), ``every-window`` (every window is its own
sample; consecutive windows share ``window_overlap`` frames, none by default). Spacing is
``stride`` source frames, or 1/``target_fps`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..media.video import UnreadableError, VideoInfo, probe
from .sources import ClipSource


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


def hold_out(sources: list[ClipSource], clips: int, num_frames: int, stride: int,
             target_fps: float, sampling: str) -> tuple[list[ClipSource], list[ClipSource], str]:
    """(training sources, held-out sources, a note for the log) when no validation sources are
    given. With at least twice as many sources as held-out clips, the last ``clips`` whole
    sources are held out. With fewer, whole files would starve training (or leave nothing to
    validate on), so each held-out clip is cut by *time* from the tail of a source — the last
    sources first, round robin, each giving up at most half its length — and training keeps the
    rest of that source: no held-out frame is ever trained on. ``uniform`` sampling spans whole
    sources, so there only whole sources (at most half of them) can be held out."""
    if clips <= 0:
        return sources, [], ""
    if len(sources) >= 2 * clips:
        return sources[:-clips], sources[-clips:], ""
    if sampling == "uniform":
        k = min(clips, len(sources) // 2)
        note = (f"validation: {len(sources)} source(s) for data.validation_clips = {clips} and "
                "uniform sampling (each sample spans a whole source, so none can be cut "
                "by time): ")
        if k == 0:
            return sources, [], note + ("NO validation — give data.validation_sources, or more "
                                        "sources")
        return sources[:-k], sources[-k:], note + f"holding out the last {k} whole source(s)"
    spans: dict[int, tuple[Span, float]] = {}
    for i, src in enumerate(sources):
        try:
            span = source_span(src, probe(src.path))
        except UnreadableError:
            continue  # stays in training, where it is skipped and counted
        step = frame_step(span, num_frames, stride, target_fps, sampling)
        spans[i] = (span, (num_frames - 1) * step + 1.0 / span.fps)  # one clip's duration
    taken = dict.fromkeys(spans, 0)
    while sum(taken.values()) < clips:
        grew = False
        for i in sorted(spans, reverse=True):
            span, window = spans[i]
            if sum(taken.values()) < clips and 2 * (taken[i] + 1) * window <= (
                    span.end - span.start) + 1e-9:
                taken[i] += 1
                grew = True
        if not grew:
            break
    train, held = [], []
    for i, src in enumerate(sources):
        if not taken.get(i):
            train.append(src)
            continue
        span, window = spans[i]
        cut = span.end - taken[i] * window
        train.append(replace(src, start_time=span.start, end_time=cut))
        held += [replace(src, start_time=cut + j * window, end_time=cut + (j + 1) * window)
                 for j in range(taken[i])]
    total = len(held)
    note = (f"validation: only {len(sources)} source(s) for data.validation_clips = {clips}, so "
            f"{total} clip(s) are cut by time from the end of {sum(map(bool, taken.values()))} "
            "source(s) and not trained on")
    if total == 0:
        note = (f"validation: {len(sources)} source(s) too short to hold out "
                f"data.validation_clips = {clips} — NO validation; give data.validation_sources")
    return train, held, note
