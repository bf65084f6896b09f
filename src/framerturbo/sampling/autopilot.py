"""Autopilot: trajectories from SIFT endpoints, refined during sampling by feature matching.

Start: SIFT matches between the endpoints give K point pairs, joined by straight tracks.
Each denoising step: the UNet's latent-resolution up-block features are searched, for every middle
frame and point, in a (2r+1)² pixel window around the current track position, once for the
start-frame template (forward) and once for the end-frame template (backward). Where the two
matches agree within ``consistency_px``, their midpoint becomes an anchor; the tracks are then
re-fitted through all anchors with PCHIP — and, unlike the released code, **re-rasterised into the
heat-maps the ControlNet sees at the next step**, so the refinement actually steers the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.tracks import Track, resample_track


@dataclass
class AutopilotState:
    """Anchors (F, K, 2) with flags (F, K) for one video; ``tracks`` are the current (F, K, 2)."""

    anchors: np.ndarray
    flags: np.ndarray
    tracks: np.ndarray

    @classmethod
    def from_tracks(cls, tracks: np.ndarray) -> AutopilotState:
        flags = np.zeros(tracks.shape[:2], dtype=bool)
        flags[[0, -1]] = True
        return cls(tracks.copy(), flags, tracks.copy())


def _sample(features: torch.Tensor, points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear feature lookup. features (N, C, h, w); points (N, …, 2) in image pixels (W, H);
    returns (N, C, …)."""
    width, height = size
    grid = torch.stack([(points[..., 0] + 0.5) / width * 2 - 1,
                        (points[..., 1] + 0.5) / height * 2 - 1], dim=-1)
    flat = grid.reshape(grid.shape[0], -1, 1, 2)
    out = F.grid_sample(features, flat.to(features.dtype), mode="bilinear", align_corners=False,
                        padding_mode="border")
    return out.reshape(features.shape[0], features.shape[1], *points.shape[1:-1])


def refine_tracks(state: AutopilotState, features: torch.Tensor, image_size: tuple[int, int],
                  search_radius: int = 5, consistency_px: float = 2.0) -> np.ndarray:
    """One refinement round from features (F, C, h, w) of one video; updates and returns
    ``state.tracks`` (F, K, 2) in image pixels."""
    num_frames, num_points = state.tracks.shape[:2]
    if num_points == 0 or num_frames < 3:
        return state.tracks
    features = features.float()
    width, height = image_size
    anchors = torch.as_tensor(state.anchors, dtype=torch.float32)
    ends = torch.stack([anchors[0], anchors[-1]])[:, :, None]  # (2, K, 1, 2)
    templates = _sample(features[[0, -1]], ends, image_size)[..., 0]  # (2, C, K)

    r = torch.arange(-search_radius, search_radius + 1, dtype=torch.float32)
    offsets = torch.stack(torch.meshgrid(r, r, indexing="xy"), dim=-1).reshape(-1, 2)  # (S, 2)
    centres = torch.as_tensor(state.tracks[1:-1], dtype=torch.float32).round()  # (F-2, K, 2)
    candidates = centres[:, :, None] + offsets  # (F-2, K, S, 2)
    candidates[..., 0].clamp_(0, width - 1)
    candidates[..., 1].clamp_(0, height - 1)
    found = _sample(features[1:-1], candidates, image_size)  # (F-2, C, K, S)

    def best(template):  # template (C, K) -> (F-2, K, 2)
        cost = (found - template[None, :, :, None]).abs().sum(dim=1)  # (F-2, K, S)
        idx = cost.argmin(dim=-1)
        return torch.gather(candidates, 2, idx[..., None, None].expand(-1, -1, 1, 2))[:, :, 0]

    forward, backward = best(templates[0]), best(templates[1])
    agree = (forward - backward).norm(dim=-1) < consistency_px  # (F-2, K)
    middle = ((forward + backward) / 2).numpy()
    agree = agree.numpy()
    state.anchors[1:-1][agree] = middle[agree]
    state.flags[1:-1] |= agree

    times = np.linspace(0.0, 1.0, num_frames)
    for k in range(num_points):
        keep = state.flags[:, k]
        state.tracks[:, k] = resample_track(Track(state.anchors[keep, k], times[keep]), num_frames)
    return state.tracks
