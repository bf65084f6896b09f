"""`framerturbo check-data`: which sources are usable for training, and why the others are not."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .clips import frame_step, num_windows, source_span
from .dataset import motion_score
from .sources import ClipSource
from ..media.video import TooShortError, UnreadableError, decodable_frames, probe, read_frames_at

STATUSES = ("usable", "too_short", "unreadable", "static", "tiny", "truncated")


@dataclass
class SourceReport:
    path: str
    status: str
    reason: str = ""
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    motion: float | None = None


def check_source(src: ClipSource, num_frames: int, stride: int, target_fps: float,
                 sampling: str, min_side: int = 64, static_threshold: float = 0.5) -> SourceReport:
    rep = SourceReport(str(src.path), "usable")
    try:
        info = probe(src.path)
    except UnreadableError as e:
        rep.status, rep.reason = "unreadable", str(e).split(": ", 1)[-1]
        return rep
    rep.frames, rep.fps, rep.width, rep.height = info.num_frames, round(info.fps, 3), info.width, info.height
    if min(info.width, info.height) < min_side:
        rep.status, rep.reason = "tiny", f"{info.width}x{info.height} is below {min_side} px"
        return rep
    real = decodable_frames(src.path, info)  # the container's count may be a promise
    if real < info.num_frames - max(2, info.num_frames // 50):
        rep.frames, rep.status = real, "truncated"
        rep.reason = (f"the container says {info.num_frames} frames but only {real} decode "
                      f"(the file is cut short) — re-encode it, or use its first {real} frames "
                      f"with a manifest line {{\"path\": ..., \"end\": {max(real - 1, 0)}}}")
        return rep
    info = replace(info, num_frames=real)
    rep.frames = real
    span = source_span(src, info)
    step = frame_step(span, num_frames, stride, target_fps, sampling)
    if num_windows(span, num_frames, step) == 0:
        rep.status = "too_short"
        rep.reason = f"{info.num_frames} frames; a clip needs {num_frames} spaced {stride}"
        return rep
    times = [span.start + k * step for k in range(num_frames)]
    try:
        frames = read_frames_at(src.path, times, span.fps)
    except TooShortError as e:
        rep.status, rep.reason = "too_short", str(e).split(": ", 1)[-1]
        return rep
    except UnreadableError as e:
        rep.status, rep.reason = "unreadable", str(e).split(": ", 1)[-1]
        return rep
    rep.motion = round(motion_score(frames), 3)
    if rep.motion < static_threshold:
        rep.status = "static"
        rep.reason = f"mean frame change {rep.motion} < {static_threshold} (little motion)"
    return rep


def summarise(reports: list[SourceReport]) -> dict:
    counts = {s: sum(r.status == s for r in reports) for s in STATUSES}
    return {"counts": counts, "total": len(reports), "sources": [asdict(r) for r in reports]}


def format_table(reports: list[SourceReport]) -> str:
    rows = [("status", "frames", "fps", "size", "motion", "path / reason")]
    for r in reports:
        rows.append((r.status, str(r.frames), f"{r.fps:g}", f"{r.width}x{r.height}",
                     "" if r.motion is None else f"{r.motion:g}",
                     r.path + (f"  ({r.reason})" if r.reason else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5]
                     for row in rows)
