"""The training objective — EDM with v-scaling, on the sampler's own conditioning.

For clean latents x₀, σ ~ LogNormal(p_mean, p_std), ε ~ N(0, I):

    x_σ   = x₀ + σ·ε
    input = [c_in(σ)·x_σ | cond video]          (conditioning.unet_input, as in the pipeline)
    F     = UNet(input, c_noise(σ), tokens, time ids[fps−1, motion, σ_c], ControlNet residuals)
    loss  = mean ‖F − (ε − σ·x₀)/√(σ²+1)‖²      (= EDM's λ(σ)‖D − x₀‖², see edm.py)

Conditioning dropout mirrors the sampler's unconditional branch through the same
``FramerConditioning.drop``: with r ~ U(0, 1) and probability p, the CLIP tokens are zeroed when
r < 2p and the endpoint latents when p ≤ r < 3p (both when p ≤ r < 2p) — SVD_Xtend's scheme.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import conditioning as C
from .. import edm
from .encode import EncodedBatch


@dataclass
class StepNoise:
    """Every random draw of one training step (so tests and resumes can reproduce it)."""

    sigma: torch.Tensor  # (B,)
    noise: torch.Tensor  # like the latents
    drop_tokens: torch.Tensor  # (B,) bool
    drop_endpoints: torch.Tensor  # (B,) bool

    @classmethod
    def draw(cls, latents: torch.Tensor, generator: torch.Generator, p_mean: float,
             p_std: float, dropout: float) -> StepNoise:
        b = latents.shape[0]
        sigma = edm.sample_sigmas(b, p_mean, p_std, generator=generator)
        noise = torch.randn(latents.shape, generator=generator)
        r = torch.rand(b, generator=generator)
        return cls(sigma.to(latents.device), noise.to(latents.device),
                   (r < 2 * dropout).to(latents.device),
                   ((r >= dropout) & (r < 3 * dropout)).to(latents.device))


def build_training_conditioning(unet, batch: EncodedBatch, num_frames: int) -> C.FramerConditioning:
    cond_video = C.build_cond_video(batch.endpoint_latents[:, 0], batch.endpoint_latents[:, 1],
                                    unet.mask_token, num_frames)
    time_ids = C.make_time_ids(batch.fps, batch.motion_bucket, batch.aug_sigma,
                               batch.latents.shape[0], device=batch.latents.device)
    return C.FramerConditioning(batch.image_embeddings, cond_video, time_ids)


def model_input_at(unet, batch: EncodedBatch, x_sigma: torch.Tensor, sigma: torch.Tensor,
                   drop_tokens, drop_endpoints):
    """(UNet input, timestep, conditioning) for given noisy latents x_σ at σ — the exact
    computation the pipeline does at a step with that σ (pinned by the parity test)."""
    cond = build_training_conditioning(unet, batch, batch.latents.shape[1])
    cond = cond.drop(tokens=drop_tokens, endpoints=drop_endpoints)
    x = C.unet_input(edm.scale_input(x_sigma, sigma), cond)
    return x, edm.c_noise(sigma), cond


def model_inputs(unet, batch: EncodedBatch, draw: StepNoise):
    """(x_σ, UNet input, timestep, conditioning) for one training step."""
    x_sigma = edm.add_noise(batch.latents, draw.noise, draw.sigma)
    x, t, cond = model_input_at(unet, batch, x_sigma, draw.sigma, draw.drop_tokens,
                                draw.drop_endpoints)
    return x_sigma, x, t, cond


def predict(unet, controlnet, batch: EncodedBatch, draw: StepNoise, control_scale: float = 1.0,
            unet_core=None):
    """The network output F for a step (ControlNet residuals when heat-maps are present).

    ``unet``/``controlnet`` may be DDP-wrapped (they are only called); ``unet_core`` is the bare
    UNet whose ``mask_token`` and dtype are read (defaults to ``unet``)."""
    core = unet_core if unet_core is not None else unet
    _, x, t, cond = model_inputs(core, batch, draw)
    dtype = core.dtype
    x, tokens, ids = x.to(dtype), cond.image_embeddings.to(dtype), cond.added_time_ids.to(dtype)
    residuals = {}
    if controlnet is not None and batch.heatmaps is not None:
        down, mid = controlnet(x, t, tokens, ids, controlnet_cond=batch.heatmaps.to(dtype),
                               conditioning_scale=control_scale, return_dict=False)
        residuals = dict(down_block_additional_residuals=down, mid_block_additional_residual=mid)
    return unet(x, t, tokens, ids, **residuals).sample


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
