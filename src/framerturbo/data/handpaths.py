"""Hand-guided transitions: where the hands go between two sign clips, and where signs rest.

* :func:`hand_tracks` — tracks for the wrists, fingertips and elbows from the last frame of clip A
  to the first frame of clip B, matched by handedness, along cubic Hermite paths whose end
  velocities are the ones measured over A's last and B's first frames (so the motion runs on
  through the join instead of stopping). A hand missing on one side falls back to that side's
  pose wrist; with neither, that hand gets no track.
* :func:`trim_hands` — head and tail frames where both hands rest (low and still, or unseen).
* :func:`auto_transition_frames` — the transition's length from the hands' travel distance over
  the signing speed measured in the clips, clamped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.tracks import Track, TrackSet
from .landmarks import HANDS, TIPS, ClipLandmarks


@dataclass
class HandPlan:
    tracks: TrackSet  # points in the clips' pixels, one anchor per output frame
    names: list[str] = field(default_factory=list)  # e.g. "right wrist (hand→pose)"
    #: per track, the joint it follows: (hand index, "wrist" | "elbow" | "tip<landmark index>")
    joints: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def end_velocity(points: np.ndarray, at_end: bool, frames: int = 3) -> np.ndarray:
    """Pixels per frame at the clip's end (``at_end``) or start, averaged over the last/first
    ``frames`` positions; zero when fewer than two of them are known."""
    pts = points[-frames:] if at_end else points[:frames]
    steps = np.diff(pts, axis=0)
    steps = steps[np.isfinite(steps).all(axis=1)]
    return steps.mean(axis=0) if len(steps) else np.zeros(2)


def hermite_path(p0, v0, p1, v1, num_frames: int) -> np.ndarray:
    """(num_frames, 2) positions from p0 (frame 0) to p1 (frame num_frames − 1) on a cubic
    Hermite curve whose velocities (px/frame) at the ends are v0 and v1."""
    from scipy.interpolate import CubicHermiteSpline

    span = num_frames - 1
    spline = CubicHermiteSpline([0.0, span], np.stack([p0, p1]), np.stack([v0, v1]), axis=0)
    return spline(np.arange(num_frames, dtype=np.float64))


def _side(marks: ClipLandmarks, hand: int, at_end: bool):
    """Per point name: (position at the boundary frame, velocity, kind) for one hand."""
    k = len(marks) - 1 if at_end else 0
    found = {}
    wrist, kind = marks.wrist(hand)
    if kind[k]:
        series = np.where((kind == kind[k])[:, None], wrist, np.nan)
        found["wrist"] = (wrist[k], end_velocity(series, at_end), str(kind[k]))
    if marks.hand_conf[k, hand] > 0:
        for tip in TIPS:
            series = np.where((marks.hand_conf[:, hand] > 0)[:, None],
                              marks.hands[:, hand, tip], np.nan)
            if np.isfinite(series[k]).all():
                found[f"tip{tip}"] = (series[k], end_velocity(series, at_end), "hand")
    elbow = marks.pose[:, 2 + hand]
    series = np.where((marks.pose_conf[:, 2 + hand] > 0)[:, None], elbow, np.nan)
    if np.isfinite(series[k]).all():
        found["elbow"] = (series[k], end_velocity(series, at_end), "pose")
    return found


def hand_tracks(a: ClipLandmarks, b: ClipLandmarks, transition_frames: int,
                elbows: bool = True) -> HandPlan:
    """Tracks over the ``transition_frames`` + 2 frames from A's last frame to B's first (both
    included), in A's pixel frame (B's points are scaled into it if its size differs)."""
    num = transition_frames + 2
    scale = np.array(a.image_size, np.float64) / np.array(b.image_size, np.float64)
    tracks, names, joints, notes = [], [], [], []
    times = np.linspace(0.0, 1.0, num)
    for hand, hand_name in enumerate(HANDS):
        start, end = _side(a, hand, at_end=True), _side(b, hand, at_end=False)
        if "wrist" not in start or "wrist" not in end:
            missing = " and ".join(s for s, d in (("A", start), ("B", end)) if "wrist" not in d)
            notes.append(f"no track for the {hand_name} hand: not found in clip {missing}")
            continue
        for key in start:
            if key not in end or (key == "elbow" and not elbows):
                continue
            p0, v0, k0 = start[key]
            p1, v1, k1 = end[key]
            path = hermite_path(p0, v0, p1 * scale, v1 * scale, num)
            tracks.append(Track(path, times.copy()))
            names.append(f"{hand_name} {key}" + (f" ({k0}→{k1})" if key == "wrist" else ""))
            joints.append((hand, key))
    return HandPlan(TrackSet(tracks, tuple(a.image_size)), names, joints, notes)


# ------------------------------------------------------------------------------- rest trimming
def rest_frames(marks: ClipLandmarks, low: float = 0.7, still: float = 0.01) -> np.ndarray:
    """(F,) True where both hands rest: each wrist is unseen, or below ``low`` × height and
    moving less than ``still`` × height per frame."""
    h = marks.image_size[1]
    rest = np.ones(len(marks), bool)
    for hand in range(2):
        wrist, kind = marks.wrist(hand)
        seen = kind != ""
        speed = np.full(len(marks), np.inf)
        if len(marks) > 1:
            step = np.linalg.norm(np.diff(wrist, axis=0), axis=1)
            # a frame's speed: the larger of its steps to the neighbours (unknown counts as still)
            step = np.where(np.isfinite(step), step, 0.0)
            speed = np.maximum(np.r_[step[:1], step], np.r_[step, step[-1:]])
        else:
            speed[:] = 0.0
        lowered = wrist[:, 1] >= low * h
        rest &= ~seen | (lowered & (speed < still * h))
    return rest


def trim_hands(marks: ClipLandmarks, low: float = 0.7, still: float = 0.01) -> tuple[int, int]:
    """(head, tail) frames to cut: the leading and trailing runs of rest frames. Keeps ≥ 1
    frame; a clip that rests throughout is left whole."""
    rest = rest_frames(marks, low, still)
    if rest.all():
        return 0, 0
    head = int(np.argmin(rest))
    tail = int(np.argmin(rest[::-1]))
    return head, tail


# ----------------------------------------------------------------------- transition length
def signing_speed(marks: list[ClipLandmarks], still: float = 0.01) -> float | None:
    """Median wrist speed (px/frame) over the frames where a wrist moves, across clips."""
    speeds = []
    for m in marks:
        for hand in range(2):
            wrist, _ = m.wrist(hand)
            step = np.linalg.norm(np.diff(wrist, axis=0), axis=1)
            speeds += [s for s in step[np.isfinite(step)] if s >= still * m.image_size[1]]
    return float(np.median(speeds)) if speeds else None


def auto_transition_frames(a: ClipLandmarks, b: ClipLandmarks, speed: float | None,
                           lo: int = 4, hi: int = 24, default: int = 12) -> tuple[int, str]:
    """New frames for the join: the largest wrist travel (A's last → B's first) over the signing
    ``speed``, minus the one step the endpoints take, clamped to [lo, hi]; ``default`` when
    nothing can be measured. Returns (frames, how it was found)."""
    scale = np.array(a.image_size, np.float64) / np.array(b.image_size, np.float64)
    travel = []
    for hand in range(2):
        wa, _ = a.wrist(hand)
        wb, _ = b.wrist(hand)
        if np.isfinite(wa[-1]).all() and np.isfinite(wb[0]).all():
            travel.append(float(np.linalg.norm(wb[0] * scale - wa[-1])))
    if not travel or not speed:
        return default, "default (no hand travel or signing speed measured)"
    frames = int(np.clip(round(max(travel) / speed) - 1, lo, hi))
    return frames, f"travel {max(travel):.1f} px / speed {speed:.2f} px/frame"
