"""`framerturbo check-data`: which sources are usable for training, and why the others are not."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..media.video import TooShortError, UnreadableError, decodable_frames, probe, read_frames_at
from .buckets import Bucketing, bucket_counts, shape_name
from .clips import frame_step, num_windows, source_span
from .dataset import motion_score
from .sources import ClipSource

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
    bucket: str = ""  # WxHxF the clip trains at, with buckets on


def check_source(src: ClipSource, num_frames: int, stride: int, target_fps: float,
                 sampling: str, min_side: int = 64, static_threshold: float = 0.5,
                 bucketing: Bucketing | None = None) -> SourceReport:
    """One source's status; with ``bucketing``, also the bucket it falls in (its length is the
    longest bucket length that fits)."""
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
    if bucketing is not None:
        shortest, num_frames = min(bucketing.frames), bucketing.frames_for(span, stride,
                                                                           target_fps)
    step = frame_step(span, max(num_frames, 3), stride, target_fps, sampling)
    if num_frames == 0 or num_windows(span, num_frames, step) == 0:
        rep.status = "too_short"
        need = shortest if bucketing is not None else num_frames
        rep.reason = f"{info.num_frames} frames; a clip needs {need} spaced {stride}"
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
    if bucketing is not None:
        rep.bucket = shape_name((*bucketing.size_for(info.width, info.height), num_frames))
    rep.motion = round(motion_score(frames), 3)
    if rep.motion < static_threshold:
        rep.status = "static"
        rep.reason = f"mean frame change {rep.motion} < {static_threshold} (little motion)"
    return rep


def summarise(reports: list[SourceReport]) -> dict:
    counts = {s: sum(r.status == s for r in reports) for s in STATUSES}
    out = {"counts": counts, "total": len(reports), "sources": [asdict(r) for r in reports]}
    if any(r.bucket for r in reports):  # clips that train (usable or static) per bucket
        out["buckets"] = bucket_counts(_shape(r.bucket) for r in reports if r.bucket)
    return out


def _shape(name: str) -> tuple[int, int, int]:
    w, h, f = (int(x) for x in name.split("x"))
    return (h, w, f)


def format_table(reports: list[SourceReport]) -> str:
    buckets = any(r.bucket for r in reports)
    rows = [("status", "frames", "fps", "size", "motion") + (("bucket",) if buckets else ())
            + ("path / reason",)]
    for r in reports:
        rows.append((r.status, str(r.frames), f"{r.fps:g}", f"{r.width}x{r.height}",
                     "" if r.motion is None else f"{r.motion:g}")
                    + ((r.bucket,) if buckets else ())
                    + (r.path + (f"  ({r.reason})" if r.reason else ""),))
    n = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(n)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:n], widths)) + "  " + row[n]
                     for row in rows)
