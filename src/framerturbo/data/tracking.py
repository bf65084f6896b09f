"""Point tracks for training from video, with OpenCV (no model weights): Shi–Tomasi corners
tracked by pyramidal Lucas–Kanade with a forward–backward check; corners are re-detected every
``redetect`` frames so long videos stay covered.

Output per video (``<video>.tracks.npz``): ``points`` (T, K, 2) float32 source pixels,
``visible`` (T, K) bool, ``times`` (T,) seconds. Another tracker (e.g. CoTracker, when installed)
can replace this one: any callable ``frames (T, H, W, 3) uint8 -> (points, visible)`` given as
``--tracker module:function``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from ..media.video import probe, read_frames_at


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 1e-6 else 0.0


def klt_tracks(frames: np.ndarray, max_points: int = 200, redetect: int = 30,
               fb_threshold: float = 1.0, min_distance: int = 8, win_size: int = 15,
               max_level: int = 2, patch: int = 9, min_ncc: float = 0.9):
    """Tracks (T, K, 2) and visibility (T, K). Per frame: LK from the previous frame, refined
    by LK from the track's first frame (no accumulated drift); a track is dropped when the
    forward–backward error exceeds ``fb_threshold`` px or its patch no longer correlates with
    the first-frame patch (occlusion, or a point on a motion boundary sliding off)."""
    import cv2

    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    T = len(grey)
    lk = dict(winSize=(win_size, win_size), maxLevel=max_level,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    tracks: list[np.ndarray] = []  # each (T, 2), NaN where invisible
    first: list[int] = []  # frame each track starts at
    templates: list[np.ndarray] = []
    active: list[int] = []
    for t in range(T):
        if t > 0 and active:
            prev = np.array([tracks[i][t - 1] for i in active], np.float32).reshape(-1, 1, 2)
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(grey[t - 1], grey[t], prev, None, **lk)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(grey[t], grey[t - 1], nxt, None, **lk)
            fb = np.linalg.norm((back - prev).reshape(-1, 2), axis=1)
            ok = (st.ravel() == 1) & (st2.ravel() == 1) & (fb < fb_threshold)
            nxt = nxt.reshape(-1, 2)
            for start in {first[i] for i in active}:  # re-anchor on the first frame
                group = [j for j, i in enumerate(active) if first[i] == start and ok[j]]
                if not group:
                    continue
                src = np.array([tracks[active[j]][start] for j in group], np.float32)
                guess = nxt[group].reshape(-1, 1, 2).copy()
                refined, st3, _ = cv2.calcOpticalFlowPyrLK(
                    grey[start], grey[t], src.reshape(-1, 1, 2), guess,
                    flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk)
                for j, r, good in zip(group, refined.reshape(-1, 2), st3.ravel()):
                    nxt[j] = r if good else nxt[j]
            h, w = grey[t].shape
            still = []
            for j, i in enumerate(active):
                x, y = nxt[j]
                if not (ok[j] and 0 <= x < w and 0 <= y < h):
                    continue
                here = cv2.getRectSubPix(grey[t], (patch, patch), (float(x), float(y)))
                if _ncc(here.astype(np.float32), templates[i]) < min_ncc:
                    continue
                tracks[i][t] = nxt[j]
                still.append(i)
            active = still
        if t % redetect == 0 and len(tracks) < max_points:
            mask = np.full(grey[t].shape, 255, np.uint8)
            for i in active:
                cv2.circle(mask, tuple(int(v) for v in tracks[i][t]), min_distance, 0, -1)
            corners = cv2.goodFeaturesToTrack(grey[t], maxCorners=max_points - len(tracks),
                                              qualityLevel=0.01, minDistance=min_distance,
                                              mask=mask)
            for c in ([] if corners is None else corners.reshape(-1, 2)):
                track = np.full((T, 2), np.nan, np.float32)
                track[t] = c
                tracks.append(track)
                first.append(t)
                templates.append(cv2.getRectSubPix(grey[t], (patch, patch),
                                                   (float(c[0]), float(c[1]))).astype(np.float32))
                active.append(len(tracks) - 1)
    if not tracks:
        return np.zeros((T, 0, 2), np.float32), np.zeros((T, 0), bool)
    points = np.stack(tracks, axis=1)
    # a lost track stays lost: visibility is the prefix before its first gap
    visible = ~np.isnan(points).any(axis=-1)
    return np.nan_to_num(points), visible


def load_tracker(spec: str):
    if spec == "klt":
        return klt_tracks
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"--tracker {spec!r}: use 'klt' or 'module:function'")
    return getattr(importlib.import_module(module), name)


def track_video(path: Path, out: Path, tracker=klt_tracks) -> int:
    """Track one source (whole video, decoded once) and write its npz; returns the track count."""
    info = probe(path)
    times = [i / info.fps for i in range(info.num_frames)]
    frames = read_frames_at(path, times, info.fps)
    points, visible = tracker(frames)
    tmp = out.with_name(f".{out.name}.tmp.npz")
    np.savez_compressed(tmp, points=np.asarray(points, np.float32),
                        visible=np.asarray(visible, bool), times=np.asarray(times, np.float64))
    tmp.replace(out)
    return points.shape[1]
