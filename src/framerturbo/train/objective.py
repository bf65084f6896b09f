"""The training objective — EDM with v-scaling, on the sampler's own conditioning.

For clean latents x₀, σ ~ LogNormal(p_mean, p_std), ε ~ N(0, I):

    x_σ   = x₀ + σ·ε
    F     = FramerDenoiser(x_σ, σ, conditioning) — the sampler's own network step
    loss  = mean ‖F − (ε − σ·x₀)/√(σ²+1)‖²      (= EDM's λ(σ)‖D − x₀‖², see edm.py)

Conditioning dropout mirrors the sampler's unconditional branch through the same
``FramerConditioning.drop``: with r ~ U(0, 1) and probability p, the CLIP tokens are zeroed when
r < 2p and the endpoint latents when p ≤ r < 3p (both when p ≤ r < 2p) — SVD_Xtend's scheme.

Still clips (``objective.still_clips`` = q > 0): a share q of the samples becomes its start frame
held for every frame (both endpoints the start). Framer gives the middle frames only mask tokens,
so the UNet must carry each endpoint's content through its temporal layers; in clips that always
move it learns that poorly (docs/micro-model.md, v2.4).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..core import edm
from ..denoising import conditioning as C
from ..denoising.denoiser import DenoiserOutput, FramerDenoiser
from ..denoising.encoding import EncodedBatch


@dataclass
class StepNoise:
    """Every random draw of one training step (so tests and resumes can reproduce it)."""

    sigma: torch.Tensor  # (B,)
    noise: torch.Tensor  # like the latents
    drop_tokens: torch.Tensor  # (B,) bool
    drop_endpoints: torch.Tensor  # (B,) bool
    still: torch.Tensor | None = None  # (B,) bool: samples made still clips (hold_still)

    @classmethod
    def draw(cls, latents: torch.Tensor, generator: torch.Generator, p_mean: float,
             p_std: float, dropout: float, still_clips: float = 0.0) -> StepNoise:
        b = latents.shape[0]
        sigma = edm.sample_sigmas(b, p_mean, p_std, generator=generator)
        noise = torch.randn(latents.shape, generator=generator)
        r = torch.rand(b, generator=generator)
        # drawn last and only when asked, so runs without still clips draw exactly as before
        still = (torch.rand(b, generator=generator) < still_clips).to(latents.device) \
            if still_clips > 0 else None
        return cls(sigma.to(latents.device), noise.to(latents.device),
                   (r < 2 * dropout).to(latents.device),
                   ((r >= dropout) & (r < 3 * dropout)).to(latents.device), still)


def hold_still(batch: EncodedBatch, which: torch.Tensor | None) -> EncodedBatch:
    """The selected samples as still clips of their start frame: every target frame, the end
    latent, the end's CLIP token and every heat-map frame become the start's. The rest is
    untouched."""
    if which is None or not bool(which.any()):
        return batch

    def held(x: torch.Tensor) -> torch.Tensor:
        pick = which.reshape(-1, *([1] * (x.ndim - 1)))
        return torch.where(pick, x[:, :1].expand_as(x), x)

    return replace(batch, latents=held(batch.latents),
                   endpoint_latents=held(batch.endpoint_latents),
                   image_embeddings=held(batch.image_embeddings),
                   heatmaps=None if batch.heatmaps is None else held(batch.heatmaps))


def training_conditioning(denoiser: FramerDenoiser, batch: EncodedBatch,
                          draw: StepNoise) -> C.FramerConditioning:
    """Stage two of the sampler's conditioning on the batch's encoded endpoints, with the step's
    conditioning dropout — ``FramerConditioning.drop``, the sampler's unconditional branch."""
    cond = C.assemble(batch.endpoints, denoiser.core.mask_token, batch.latents.shape[1],
                      batch.fps, batch.motion_bucket)
    return cond.drop(tokens=draw.drop_tokens, endpoints=draw.drop_endpoints)


def predict(denoiser: FramerDenoiser, batch: EncodedBatch, draw: StepNoise,
            control_scale: float = 1.0) -> DenoiserOutput:
    """The denoiser at the step's x_σ = x₀ + σ·ε (ControlNet residuals when the batch has
    heat-maps) — the very call the sampler makes at a step with that σ."""
    x_sigma = edm.add_noise(batch.latents, draw.noise, draw.sigma)
    return denoiser(x_sigma, draw.sigma, training_conditioning(denoiser, batch, draw),
                    heatmaps=batch.heatmaps, control_scale=control_scale)


def frame_weights(num_frames: int, loss_frames: str, device) -> torch.Tensor:
    w = torch.ones(num_frames, device=device)
    if loss_frames == "middle":
        w[[0, -1]] = 0
    return w


def diffusion_loss(output: torch.Tensor, batch: EncodedBatch, draw: StepNoise,
                   loss_frames: str = "all") -> torch.Tensor:
    """Per-sample MSE against the v-target over the selected frames, shape (B,)."""
    target = edm.v_target(batch.latents, draw.noise, draw.sigma)
    err = (output.float() - target) ** 2  # (B, F, C, h, w)
    w = frame_weights(err.shape[1], loss_frames, err.device)
    per_frame = err.mean(dim=(2, 3, 4))
    return (per_frame * w).sum(dim=1) / w.sum()
