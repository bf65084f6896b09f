"""Keep what stays still: pixels both endpoints show unchanged, and that the sample also draws as
background, become the cross-fade of the endpoints instead of the sample's redrawing of them.

Why: a diffusion sample redraws every pixel through the VAE and the UNet, so a background that
never moves comes back mottled and slightly shifted (the micro model: 3–5× its own VAE round
trip's error on static pixels, docs/micro-model.md), while the user gave it exactly. Diffusers'
inpainting pipelines paste the known pixels back for the same reason; here the known pixels are
inferred, softly, per pixel and per frame:

    fade_i = (1 − t_i)·start + t_i·end                        t_i = i / (F − 1)
    w_i    = (1 − |start − end| / τ)₊ · (1 − |frame_i − fade_i| / τ)₊     (|·|: max over RGB)
    out_i  = frame_i + w_i · (fade_i − frame_i)

The first factor is 0 wherever the endpoints differ by τ or more (something moved there: the
sample is kept); the second is 0 wherever the sample draws something τ or more away from the
background (a hand passing in front of it: kept). τ = 0 turns it off.
"""

from __future__ import annotations

import torch

from ..models.record import check_keep_static


def keep_static(frames: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                tau: float) -> torch.Tensor:
    """``frames`` (B, F, 3, H, W) and the endpoints (B, 3, H, W) as given, all in [0, 1] →
    the frames with their static background taken from the endpoints (module docstring)."""
    tau = check_keep_static(tau)
    if tau == 0.0:
        return frames
    num_frames = frames.shape[1]
    t = torch.linspace(0.0, 1.0, num_frames, dtype=frames.dtype, device=frames.device)
    t = t.view(1, num_frames, 1, 1, 1)
    start, end = start.to(frames)[:, None], end.to(frames)[:, None]
    fade = (1 - t) * start + t * end
    agree = (1 - (start - end).abs().amax(dim=2, keepdim=True) / tau).clamp(min=0)
    near = (1 - (frames - fade).abs().amax(dim=2, keepdim=True) / tau).clamp(min=0)
    return frames + agree * near * (fade - frames)
