"""Clips → what the UNet is trained on: target latents, endpoint latents, CLIP tokens.

Used identically by the latent cache and by uncached training, through the same
``conditioning.py`` functions the sampler uses.

Endpoint noise augmentation is exact under caching: the sampler adds σ_c·n in *pixel* space and
then encodes, which no latent-space operation can reproduce. So each clip gets ``aug_variants``
independent draws (σ_c ~ LogNormal(mean, std), n ~ N(0, I)), each seeded by (clip key, variant),
each encoded exactly as the sampler would. Training picks one variant per visit. Cached or not,
the trainer sees the same finite set of exact draws, so the two paths give identical batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import conditioning as C
from ..data.dataset import stable_seed


@dataclass
class EncodedBatch:
    latents: torch.Tensor  # (B, F, 4, h, w), × scaling_factor
    endpoint_latents: torch.Tensor  # (B, 2, 4, h, w), unscaled mode() of augmented endpoints
    aug_sigma: torch.Tensor  # (B,) σ_c of those endpoints
    image_embeddings: torch.Tensor  # (B, 2, D)
    fps: torch.Tensor  # (B,)
    motion_bucket: torch.Tensor  # (B,)
    heatmaps: torch.Tensor | None = None  # (B, F, 3, H, W) 0–255

    def to(self, device) -> EncodedBatch:
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v)
                 for k, v in vars(self).items()}
        return EncodedBatch(**moved)


def augmentation_draw(key: str, variant: int, mean: float, std: float, shape):
    """(σ_c, noise (2, 3, H, W)) for one clip and variant — deterministic in (key, variant)."""
    g = torch.Generator().manual_seed(stable_seed("aug", key, variant))
    sigma = float(torch.exp(mean + std * torch.randn((), generator=g)))
    return sigma, torch.randn((2, *shape), generator=g)


to_pixels = C.pixels_from_uint8


@torch.no_grad()
def encode_target_latents(vae, pixels: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """(B, F, 3, H, W) in [−1, 1] → (B, F, 4, h, w) scaled latents (``mode()``, deterministic)."""
    b, f = pixels.shape[:2]
    flat = pixels.flatten(0, 1)
    dtype = next(vae.parameters()).dtype
    parts = [vae.encode(flat[i:i + chunk].to(vae.device, dtype)).latent_dist.mode()
             for i in range(0, len(flat), chunk)]
    latents = torch.cat(parts).float() * vae.config.scaling_factor
    return latents.reshape(b, f, *latents.shape[1:])


@torch.no_grad()
def encode_endpoints(vae, pixels: torch.Tensor, sigma: torch.Tensor,
                     noise: torch.Tensor) -> torch.Tensor:
    """Endpoints (B, 2, 3, H, W) + σ_c (B,) + noise (B, 2, 3, H, W) → (B, 2, 4, h, w)."""
    b = pixels.shape[0]
    flat = C.augment_endpoints(pixels.flatten(0, 1), sigma.repeat_interleave(2),
                               noise.flatten(0, 1).to(pixels))
    latents = C.encode_endpoint_latents(vae, flat).float()
    return latents.reshape(b, 2, *latents.shape[1:])


@torch.no_grad()
def encode_tokens(image_encoder, pixels: torch.Tensor, clip_mean=C.CLIP_MEAN,
                  clip_std=C.CLIP_STD) -> torch.Tensor:
    """(B, 2, D) tokens of the clean endpoints."""
    return C.encode_image_tokens(image_encoder, pixels[:, 0], pixels[:, -1], clip_mean,
                                 clip_std).float()


def encode_batch(vae, image_encoder, batch: dict, cond_aug_mean: float, cond_aug_std: float,
                 clip_mean=C.CLIP_MEAN, clip_std=C.CLIP_STD) -> EncodedBatch:
    """A collated dataset batch (uint8 frames) → :class:`EncodedBatch` for its aug variants."""
    device = vae.device
    pixels = to_pixels(batch["frames"]).to(device)
    ends = torch.stack([pixels[:, 0], pixels[:, -1]], dim=1)
    draws = [augmentation_draw(k, int(v), cond_aug_mean, cond_aug_std, pixels.shape[2:])
             for k, v in zip(batch["key"], batch["aug_index"])]
    sigma = torch.tensor([d[0] for d in draws], device=device)
    noise = torch.stack([d[1] for d in draws]).to(device)
    return EncodedBatch(
        latents=encode_target_latents(vae, pixels),
        endpoint_latents=encode_endpoints(vae, ends, sigma, noise),
        aug_sigma=sigma,
        image_embeddings=encode_tokens(image_encoder, ends, clip_mean, clip_std),
        fps=torch.as_tensor(batch["fps"], dtype=torch.float32, device=device),
        motion_bucket=torch.as_tensor(batch["motion_bucket"], dtype=torch.float32,
                                      device=device),
        heatmaps=batch.get("heatmaps"),
    )
