"""Point trajectories: the JSON format, PCHIP resampling, rescaling, heat-maps and SIFT endpoints.

Track JSON (what ``--tracks`` reads and ``framerturbo tracks`` writes)::

    {"image_size": [W, H],                  # optional: the pixel frame of the points
     "tracks": [{"points": [[x, y], ...],   # source-image pixels, one or more per track
                 "times": [0.0, ..., 1.0]}, # optional, strictly increasing in [0, 1]
                ...]}

A bare list of point lists is accepted too. One point is a stationary track, two points a straight
line, more points a PCHIP curve (monotone cubic: no overshoot between anchors).

Heat-maps reproduce Framer's rasteriser: per point a Gaussian with σ = 8 px, cut at a 20 px
radius, peak 255, three identical channels, at the generation resolution. Points outside the image
are skipped; where Gaussians overlap the maximum wins (the released code let the last point
overwrite, and squashed Gaussians at the borders — here they are cropped, as a Gaussian should be).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

HEATMAP_SIGMA = 8.0
HEATMAP_RADIUS = 20.0


@dataclass
class Track:
    points: np.ndarray  # (N, 2) x, y in pixels
    times: np.ndarray | None = None  # (N,) in [0, 1], strictly increasing


@dataclass
class TrackSet:
    tracks: list[Track]
    image_size: tuple[int, int] | None = None  # (W, H) the points refer to


def _fail(source, what: str, fix: str):
    raise ValueError(f"{source}: {what} — {fix}")


#: Points may leave the picture (a hand going out of view), but not by a million pixels: such a
#: value is a unit mix-up, and its spline would overflow.
MAX_COORDINATE = 1e6


def parse_tracks(data, source: str = "tracks") -> TrackSet:
    """Validate a decoded track JSON document (see the module docstring)."""
    image_size = None
    if isinstance(data, dict):
        if "image_size" in data and data["image_size"] is not None:
            size = data["image_size"]
            if (not isinstance(size, (list, tuple)) or len(size) != 2
                    or not all(isinstance(v, (int, float)) and v > 0 for v in size)):
                _fail(source, f"image_size must be [width, height], got {size!r}",
                      "write two positive numbers")
            image_size = (int(size[0]), int(size[1]))
        data = data.get("tracks")
    if not isinstance(data, list):
        _fail(source, "no track list found", 'write {"tracks": [{"points": [[x, y], ...]}]}')
    tracks = []
    for i, item in enumerate(data):
        raw_points, raw_times = (item.get("points"), item.get("times")) if isinstance(item, dict) \
            else (item, None)
        try:
            points = np.asarray(raw_points, dtype=np.float64)
        except (TypeError, ValueError):
            points = np.empty((0,))
        if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
            _fail(source, f"track {i} has no valid [[x, y], ...] points",
                  "give each track at least one [x, y] pair")
        if not np.isfinite(points).all():
            _fail(source, f"track {i} has a non-finite coordinate", "use plain numbers")
        if np.abs(points).max() > MAX_COORDINATE:
            _fail(source, f"track {i} has a coordinate of {np.abs(points).max():g} px, beyond "
                  "any image", "give positions in the image's pixels")
        times = None
        if raw_times is not None:
            times = np.asarray(raw_times, dtype=np.float64)
            if times.shape != (len(points),) or not np.isfinite(times).all() \
                    or (times < 0).any() or (times > 1).any() or (np.diff(times) <= 0).any():
                _fail(source, f"track {i} times must be {len(points)} strictly increasing "
                      "values in [0, 1]", "fix or drop 'times'")
        tracks.append(Track(points, times))
    return TrackSet(tracks, image_size)


def load_tracks(path: str | Path) -> TrackSet:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found — check the --tracks path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}) — see docs/quickstart.md for the "
                         "track format") from None
    return parse_tracks(data, str(path))


def save_tracks(track_set: TrackSet, path: str | Path) -> None:
    doc = {"image_size": list(track_set.image_size) if track_set.image_size else None,
           "tracks": [{"points": t.points.tolist(),
                       **({"times": t.times.tolist()} if t.times is not None else {})}
                      for t in track_set.tracks]}
    Path(path).write_text(json.dumps(doc, indent=1))


def resample_track(track: Track, num_frames: int) -> np.ndarray:
    """Positions at ``num_frames`` uniform times in [0, 1] (PCHIP through the anchors; held
    constant before the first and after the last anchor time). Returns (F, 2)."""
    from scipy.interpolate import PchipInterpolator

    points = track.points
    if len(points) == 1:
        return np.repeat(points, num_frames, axis=0)
    times = track.times if track.times is not None else np.linspace(0.0, 1.0, len(points))
    grid = np.clip(np.linspace(0.0, 1.0, num_frames), times[0], times[-1])
    # a near-zero slope (two anchors a hair apart) overflows PCHIP's harmonic mean to inf, which
    # it reads, correctly, as a flat derivative: nothing to warn about
    with np.errstate(over="ignore", divide="ignore"):
        return np.stack([PchipInterpolator(times, points[:, d])(grid) for d in range(2)], axis=1)


def resample_tracks(track_set: TrackSet | list[Track], num_frames: int) -> np.ndarray:
    """(F, K, 2) positions for K tracks."""
    tracks = track_set.tracks if isinstance(track_set, TrackSet) else track_set
    if not tracks:
        return np.zeros((num_frames, 0, 2))
    return np.stack([resample_track(t, num_frames) for t in tracks], axis=1)


def rescale_points(points: np.ndarray, src_size: tuple[int, int],
                   dst_size: tuple[int, int]) -> np.ndarray:
    """Map (…, 2) pixel positions from a (W, H) image to another (W', H')."""
    scale = np.array([dst_size[0] / src_size[0], dst_size[1] / src_size[1]])
    return points * scale


def moved_to_canvas(track_set: TrackSet, picture_size: tuple[int, int],
                    shift: tuple[int, int], canvas_size: tuple[int, int]) -> TrackSet:
    """Tracks in a picture's pixels (its ``image_size`` frame, else ``picture_size`` (W, H))
    → the same points on a canvas the picture was placed on at ``shift`` (dx, dy)."""
    src = track_set.image_size or picture_size
    moved = [Track(rescale_points(t.points, src, picture_size) + np.asarray(shift, float),
                   t.times) for t in track_set.tracks]
    return TrackSet(moved, tuple(canvas_size))


def rasterize_heatmaps(tracks, height: int, width: int, sigma: float = HEATMAP_SIGMA,
                       radius: float = HEATMAP_RADIUS, chunk: int = 16) -> torch.Tensor:
    """Heat-map video (F, 3, H, W) uint8 from tracks (F, K, 2) in generation pixels."""
    tracks = torch.as_tensor(np.asarray(tracks), dtype=torch.float32)
    num_frames = tracks.shape[0]
    out = torch.zeros(num_frames, height, width)
    ys = torch.arange(height, dtype=torch.float32)
    xs = torch.arange(width, dtype=torch.float32)
    for k in range(0, tracks.shape[1], chunk):
        pts = tracks[:, k:k + chunk]  # (F, k, 2)
        inside = ((pts[..., 0] >= 0) & (pts[..., 0] < width)
                  & (pts[..., 1] >= 0) & (pts[..., 1] < height))
        dx2 = (xs[None, None, :] - pts[..., 0:1]) ** 2  # (F, k, W)
        dy2 = (ys[None, None, :] - pts[..., 1:2]) ** 2  # (F, k, H)
        d2 = dy2[..., :, None] + dx2[..., None, :]  # (F, k, H, W)
        value = 255.0 * torch.exp(-d2 / (2 * sigma**2))
        value = torch.where((d2 <= radius**2) & inside[..., None, None], value, 0.0)
        out = torch.maximum(out, value.amax(dim=1))
    return out.round().to(torch.uint8)[:, None].expand(-1, 3, -1, -1).contiguous()


def match_sift(start: np.ndarray, end: np.ndarray, max_points: int = 5, ratio: float = 0.7,
               min_distance: float = 24.0, ransac_px: float = 4.0):
    """Corresponding points between two RGB uint8 images for autopilot endpoints.

    SIFT keypoints, 2-NN matching with Lowe's ratio test, a RANSAC fundamental-matrix check when
    there are enough matches (rejects inconsistent pairs without forcing one rigid motion), then
    the most distinctive matches that lie at least ``min_distance`` px apart. Deterministic.
    Returns (start_points (K, 2), end_points (K, 2)); K = 0 when nothing matches."""
    import cv2

    empty = (np.zeros((0, 2)), np.zeros((0, 2)))
    sift = cv2.SIFT_create()
    kp1, des1 = sift.detectAndCompute(cv2.cvtColor(start, cv2.COLOR_RGB2GRAY), None)
    kp2, des2 = sift.detectAndCompute(cv2.cvtColor(end, cv2.COLOR_RGB2GRAY), None)
    if des1 is None or des2 is None or len(kp1) < 2 or len(kp2) < 2:
        return empty
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(des1, des2, k=2)
    good = [(m.distance / max(n.distance, 1e-6), m.queryIdx, m.trainIdx)
            for m, n in (p for p in pairs if len(p) == 2) if m.distance < ratio * n.distance]
    if not good:
        return empty
    good.sort()
    p1 = np.array([kp1[q].pt for _, q, _ in good])
    p2 = np.array([kp2[t].pt for _, _, t in good])
    if len(good) >= 8:
        _, inliers = cv2.findFundamentalMat(p1, p2, cv2.FM_RANSAC, ransac_px, 0.99)
        if inliers is not None and inliers.sum() >= 2:
            keep = inliers.ravel().astype(bool)
            p1, p2 = p1[keep], p2[keep]
    chosen: list[int] = []
    for i in range(len(p1)):
        if all(np.hypot(*(p1[i] - p1[j])) >= min_distance for j in chosen):
            chosen.append(i)
        if len(chosen) == max_points:
            break
    return p1[chosen], p2[chosen]
