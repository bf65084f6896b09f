"""What every synthetic world shares: the clip it renders (frames, ground-truth tracks, their
visibility, the moving parts' masks) and the smooth paths its parts move on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SyntheticClip:
    frames: np.ndarray  # (F, H, W, 3) uint8
    tracks: np.ndarray  # (F, K, 2) float, pixels
    visible: np.ndarray  # (F, K) bool
    masks: np.ndarray  # (F, H, W) int: moving-part id, 0 = background


def bezier_path(rng, num_frames, lo, hi):
    """A smooth 1-D trajectory: a random quadratic Bézier between bounds."""
    p = rng.uniform(lo, hi, 3)
    t = np.linspace(0, 1, num_frames)
    return (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t**2 * p[2]


def visibility(tracks, owner, masks, size):
    """(F, K) bool: each track point lies inside the frame, on the part that owns it (not
    occluded by another part)."""
    f, k = tracks.shape[:2]
    xi = np.clip(np.floor(tracks[..., 0]).astype(int), 0, size - 1)
    yi = np.clip(np.floor(tracks[..., 1]).astype(int), 0, size - 1)
    inside = ((tracks[..., 0] >= 0) & (tracks[..., 0] < size)
              & (tracks[..., 1] >= 0) & (tracks[..., 1] < size))
    on_owner = masks[np.arange(f)[:, None], yi, xi] == owner[None]
    return inside & on_owner
