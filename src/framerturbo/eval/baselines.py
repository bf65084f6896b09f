"""Honest baselines for the middle frames, computed from the two endpoints only.

* ``crossfade``: (1 − t)·start + t·end.
* ``flow``: bidirectional optical-flow warping — OpenCV DIS flow start→end and end→start; each
  middle frame blends the start warped forward by t and the end warped backward by (1 − t).
"""

from __future__ import annotations

import numpy as np

from ..media.files import to_uint8


def _weights(num_frames: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, num_frames)


def crossfade(start: np.ndarray, end: np.ndarray, num_frames: int) -> np.ndarray:
    """(F, H, W, 3) uint8 including both endpoints."""
    a, b = start.astype(np.float32), end.astype(np.float32)
    frames = [(1 - t) * a + t * b for t in _weights(num_frames)]
    return to_uint8(np.stack(frames), peak=255.0)


def _dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (a, b))
    return dis.calc(ga, gb, None)


def _warp(image: np.ndarray, flow: np.ndarray, t: float) -> np.ndarray:
    """Backward-warp ``image`` by −t·flow (the flow is approximated as smooth in time)."""
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    t = np.float32(t)
    return cv2.remap(image, gx - t * flow[..., 0], gy - t * flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def flow_interpolate(start: np.ndarray, end: np.ndarray, num_frames: int) -> np.ndarray:
    """(F, H, W, 3) uint8 including both endpoints."""
    forward, backward = _dis_flow(start, end), _dis_flow(end, start)
    frames = []
    for t in _weights(num_frames):
        from_start = _warp(start, forward, t).astype(np.float32)
        from_end = _warp(end, backward, 1 - t).astype(np.float32)
        frames.append((1 - t) * from_start + t * from_end)
    frames[0], frames[-1] = start.astype(np.float32), end.astype(np.float32)
    return to_uint8(np.stack(frames), peak=255.0)


def hard_cut(start: np.ndarray, end: np.ndarray, num_frames: int) -> np.ndarray:
    """No transition: the first half holds A's last frame, the second shows B's first."""
    frames = [start if k < num_frames / 2 else end for k in range(num_frames)]
    return np.stack(frames)


BASELINES = {"crossfade": crossfade, "flow": flow_interpolate}
