"""Autopilot finds its SIFT endpoints on the images as given, before they are resized to the
generation size (at 64×64 fine texture is gone and SIFT finds little or nothing), and the
README's example images give it something to match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from framerturbo.core.tracks import match_sift

ROOT = Path(__file__).resolve().parents[1]


def fine_texture(seed: int, shift=(0, 0), size: int = 128) -> np.ndarray:
    """1-pixel random texture: distinctive at 128×128, mostly averaged away at 64×64."""
    rng = np.random.RandomState(seed)
    img = (rng.rand(size + 32, size + 32, 3) * 255).astype(np.uint8)
    dx, dy = shift
    return np.ascontiguousarray(img[16 - dy:16 - dy + size, 16 - dx:16 - dx + size])


def test_autopilot_endpoints_are_source_resolution_matches(micro_pipe):
    start, end = fine_texture(2), fine_texture(2, shift=(6, 4))
    # what autopilot must use: matches at 128×128, ≥ 24 generation px (= 48 source px) apart
    p0, p1 = match_sift(start, end, min_distance=48.0)
    assert len(p0) >= 4
    out = micro_pipe(start, end, num_frames=5, height=64, width=64, num_inference_steps=2,
                     autopilot=True, output_type="np", generator=torch.Generator().manual_seed(0))
    tracks = out.tracks[0]
    assert tracks is not None and tracks.shape == (5, len(p0), 2)
    # the end frames stay anchored at the matches, mapped to generation pixels (×0.5)
    assert np.allclose(tracks[0], p0 * 0.5) and np.allclose(tracks[-1], p1 * 0.5)
    assert np.allclose(tracks[-1] - tracks[0], (3.0, 2.0), atol=1.0)  # the (6, 4) px shift


def test_readme_examples_give_autopilot_matches():
    start, end = (np.asarray(Image.open(ROOT / "examples" / f"{n}.png").convert("RGB"))
                  for n in ("start", "end"))
    assert start.shape == end.shape == (128, 128, 3)
    p0, p1 = match_sift(start, end, min_distance=48.0)  # README: generated at 64×64
    assert len(p0) >= 2
    assert ((p0 >= 0) & (p0 < 128)).all() and ((p1 >= 0) & (p1 < 128)).all()
