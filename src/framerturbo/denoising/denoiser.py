"""FramerDenoiser — the one network step: (x_σ, σ, conditioning) → F and D(x_σ).

k-diffusion's ``Denoiser`` idea, for Framer. The sampler's step, the training loss, validation and
the distillation's teacher and student all call this class, so what the network is asked cannot
differ between them:

    input = [c_in(σ)·x_σ | conditioning video]           (conditioning.unet_input)
    F     = UNet(input, c_noise(σ), CLIP tokens, time ids, ControlNet residuals(heat-maps))
    D     = c_skip(σ)·x_σ + c_out(σ)·F                    (edm.denoised)

With per-frame ``guidance`` weights w (classifier-free guidance) the batch runs as
[unconditional, conditional] and F = F_u + w·(F_c − F_u); heat-maps feed both halves (Framer does
not drop trajectories in the unconditional branch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core import edm
from . import conditioning as C


@dataclass
class DenoiserOutput:
    output: torch.Tensor  # F, the network's (guided) v-output, in the state dtype of x_σ
    denoised: torch.Tensor  # D(x_σ), the x₀ estimate
    features: tuple | None = None  # the UNet's up-block features (autopilot), per CFG half


def combine_guidance(both: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[unconditional; conditional] along the batch → uncond + w·(cond − uncond)."""
    uncond, cond = both.chunk(2)
    return uncond + weights * (cond - uncond)


class FramerDenoiser:
    """Wraps the UNet (+ optional ControlNet). The wrapped modules may be DDP/engine-wrapped
    (they are only called); ``core`` is the bare UNet, whose dtype is read once here: diffusers'
    ``dtype`` walks every module (≈ 3 ms on the micro UNet, as much as a tenth of a step), and
    a model is cast before its denoiser is made. A caller that already read it passes ``dtype``."""

    def __init__(self, unet, controlnet=None, core=None, dtype: torch.dtype | None = None):
        self.unet, self.controlnet = unet, controlnet
        self.core = core if core is not None else unet
        self.dtype = dtype if dtype is not None else self.core.dtype

    def network(self, x_sigma: torch.Tensor, sigma, cond: C.FramerConditioning, *,
                heatmaps: torch.Tensor | None = None, control_scale: float = 1.0,
                return_features: bool = False):
        """F for a batch (no guidance): the raw UNet output and, optionally, its features."""
        dtype = self.dtype
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x_sigma.device)
        x = C.unet_input(edm.scale_input(x_sigma, sigma.to(x_sigma)), cond).to(dtype)
        t = edm.c_noise(sigma)
        tokens, time_ids = cond.image_embeddings.to(dtype), cond.added_time_ids.to(dtype)
        residuals = {}
        if heatmaps is not None and self.controlnet is not None:
            down, mid = self.controlnet(x, t, tokens, time_ids, controlnet_cond=heatmaps.to(dtype),
                                        conditioning_scale=control_scale, return_dict=False)
            residuals = dict(down_block_additional_residuals=down,
                             mid_block_additional_residual=mid)
        out = self.unet(x, t, tokens, time_ids, **residuals,
                        return_up_block_features=return_features, return_dict=False)
        return out[0], (out[1] if return_features else None)

    def __call__(self, x_sigma: torch.Tensor, sigma, cond: C.FramerConditioning, *,
                 heatmaps: torch.Tensor | None = None, control_scale: float = 1.0,
                 guidance: torch.Tensor | None = None,
                 return_features: bool = False) -> DenoiserOutput:
        """F and D(x_σ). ``sigma``: a number or (B,); ``guidance``: per-frame CFG weights
        broadcastable to x_σ (None = one conditional pass); ``heatmaps`` (B, F, 3, H, W)."""
        if guidance is not None:
            out, features = self.network(torch.cat([x_sigma] * 2), _twice(sigma),
                                         cond.drop().cat(cond), control_scale=control_scale,
                                         heatmaps=None if heatmaps is None else torch.cat(
                                             [heatmaps] * 2),
                                         return_features=return_features)
            output = combine_guidance(out.to(x_sigma.dtype), guidance)
        else:
            out, features = self.network(x_sigma, sigma, cond, heatmaps=heatmaps,
                                         control_scale=control_scale,
                                         return_features=return_features)
            output = out.to(x_sigma.dtype)
        return DenoiserOutput(output, edm.denoised(x_sigma, output, sigma), features)


def _twice(sigma):
    sigma = torch.as_tensor(sigma)
    return sigma if sigma.ndim == 0 else torch.cat([sigma, sigma])
