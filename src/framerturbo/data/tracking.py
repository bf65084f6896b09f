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

from .video import probe, read_frames_at


def klt_tracks(frames: np.ndarray, max_points: int = 200, redetect: int = 30,
               fb_threshold: float = 1.0, min_distance: int = 8):
    import cv2

    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    T = len(grey)
    tracks: list[np.ndarray] = []  # each (T, 2), NaN where invisible
    active: list[int] = []
    lk = dict(winSize=(21, 21), maxLevel=3,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    for t in range(T):
        if t > 0 and active:
            prev = np.array([tracks[i][t - 1] for i in active], np.float32).reshape(-1, 1, 2)
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(grey[t - 1], grey[t], prev, None, **lk)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(grey[t], grey[t - 1], nxt, None, **lk)
            err = np.linalg.norm((back - prev).reshape(-1, 2), axis=1)
            ok = (st.ravel() == 1) & (st2.ravel() == 1) & (err < fb_threshold)
            h, w = grey[t].shape
            p = nxt.reshape(-1, 2)
            ok &= (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
            still = []
            for i, good, pt in zip(active, ok, p):
                if good:
                    tracks[i][t] = pt
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
                active.append(len(tracks) - 1)
    if not tracks:
        return np.zeros((T, 0, 2), np.float32), np.zeros((T, 0), bool)
    points = np.stack(tracks, axis=1)
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
