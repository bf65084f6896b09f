"""Stage one of Framer's conditioning: the encoders. Clips and endpoints → what the UNet reads.

* **CLIP tokens** (B, 2, D): each clean endpoint → antialiased resize to 224×224 → [0, 1] → CLIP
  mean/std → ``image_embeds``.
* **Endpoint latents** (B, 2, 4, h, w): ``vae.encode(x + σ_c·n).latent_dist.mode()`` with
  n ~ N(0, I) added in *pixel* space, **not** multiplied by the VAE scaling factor (as SVD was
  trained).
* **Target latents** (training only): the clip's frames, ``mode()`` × scaling factor.

:func:`encode_endpoints` is exactly what the latent cache stores and what the sampler computes
once per call; stage two (``conditioning.assemble``) turns it into the UNet's conditioning.

Endpoint noise augmentation is exact under caching: noise added in pixel space before encoding
cannot be reproduced on a cached latent. So each training clip gets ``aug_variants`` independent
draws (σ_c ~ LogNormal(mean, std), n ~ N(0, I)), each seeded by (clip key, variant) through
:func:`augmentation_draw` and encoded exactly as the sampler would; cached or not, the trainer
sees the same finite set of exact draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import logging as transformers_logging

# SVD's own CLIP resize (conditioning parity). Its module imports transformers'
# CLIPImageProcessor, which warns once that torchvision is missing — this project does not use
# torchvision (docs/quickstart.md) nor that class (models/loading.py loads the PIL one): hush it.
_verbosity = transformers_logging.get_verbosity()
transformers_logging.set_verbosity_error()
try:
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
        _resize_with_antialiasing,
    )
finally:
    transformers_logging.set_verbosity(_verbosity)

from ..core.seeding import stable_seed
from ..models.configs import CLIP_MEAN, CLIP_STD

CLIP_SIZE = 224


@dataclass
class EncodedEndpoints:
    """Stage one's result for a batch of endpoint pairs."""

    image_embeddings: torch.Tensor  # (B, 2, D) [CLIP(start), CLIP(end)], clean frames
    endpoint_latents: torch.Tensor  # (B, 2, 4, h, w) unscaled mode() of augmented endpoints
    aug_sigma: torch.Tensor  # (B,) σ_c of that augmentation


def pixels_from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 0–255 → float [−1, 1]; the one conversion both the sampler and the trainer use."""
    return images.float() / 127.5 - 1.0


def clip_pixel_values(images: torch.Tensor, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """CLIP preprocessing of (B, 3, H, W) images in [−1, 1]: antialiased resize to 224 (the
    aspect ratio is squashed, as in SVD), back to [0, 1], then CLIP mean/std."""
    x = _resize_with_antialiasing(images.float(), (CLIP_SIZE, CLIP_SIZE))
    x = ((x + 1.0) / 2.0).clamp(0, 1)
    mean = torch.tensor(mean, device=x.device)[None, :, None, None]
    std = torch.tensor(std, device=x.device)[None, :, None, None]
    return (x - mean) / std


def encode_image_tokens(image_encoder, start: torch.Tensor, end: torch.Tensor,
                        mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """(B, 2, D) CLIP ``image_embeds`` of the start and end frames."""
    pixels = clip_pixel_values(torch.cat([start, end]), mean, std)
    embeds = image_encoder(pixels.to(device=image_encoder.device,
                                     dtype=image_encoder.dtype)).image_embeds
    batch = start.shape[0]
    return torch.stack([embeds[:batch], embeds[batch:]], dim=1)


def augment_endpoints(pixels: torch.Tensor, strength, noise: torch.Tensor) -> torch.Tensor:
    """Pixel-space noise augmentation x + σ_c·n; ``strength`` is a float or a (B,) tensor."""
    strength = torch.as_tensor(strength, dtype=pixels.dtype, device=pixels.device)
    return pixels + strength.reshape(-1, 1, 1, 1) * noise


def encode_endpoint_latents(vae, pixels: torch.Tensor) -> torch.Tensor:
    """Unscaled VAE ``mode()`` latents of (B, 3, H, W) pixels, upcasting an fp16 VAE that asks
    for it (``force_upcast``), as diffusers' SVD pipeline does."""
    vae_dtype = vae.dtype  # diffusers walks every module for it: read once
    upcast = vae_dtype == torch.float16 and vae.config.get("force_upcast", False)
    dtype = torch.float32 if upcast else vae_dtype
    if upcast:
        vae.to(dtype=torch.float32)
    try:
        latents = vae.encode(pixels.to(device=vae.device, dtype=dtype)).latent_dist.mode()
    finally:
        if upcast:
            vae.to(dtype=torch.float16)
    return latents.to(pixels.device)  # the VAE may live elsewhere (sampling offload="vae")


@torch.no_grad()
def encode_endpoints(vae, image_encoder, start: torch.Tensor, end: torch.Tensor, aug_sigma,
                     aug_noise: tuple[torch.Tensor, torch.Tensor], clip_mean=CLIP_MEAN,
                     clip_std=CLIP_STD,
                     image_embeddings: torch.Tensor | None = None) -> EncodedEndpoints:
    """Clean endpoints (B, 3, H, W) in [−1, 1], σ_c (a number or (B,)) and the pixel noise
    (start, end) → tokens and augmented endpoint latents, in the endpoints' dtype.

    ``image_embeddings`` may be passed when already computed (the cache encodes a clip's tokens
    once for all its augmentation variants)."""
    batch = start.shape[0]
    if image_embeddings is None:
        image_embeddings = encode_image_tokens(image_encoder, start, end, clip_mean, clip_std)
    sigma = torch.as_tensor(aug_sigma, dtype=start.dtype, device=start.device).expand(batch)
    augmented = torch.cat([augment_endpoints(start, sigma, aug_noise[0].to(start)),
                           augment_endpoints(end, sigma, aug_noise[1].to(start))])
    latents = encode_endpoint_latents(vae, augmented).to(start.dtype)
    return EncodedEndpoints(image_embeddings.to(start.dtype),
                            torch.stack([latents[:batch], latents[batch:]], dim=1), sigma)


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


def augmentation_draw(key: str, variant: int, mean: float, std: float, shape):
    """(σ_c, noise (2, 3, H, W)) for one clip and variant — deterministic in (key, variant)."""
    g = torch.Generator().manual_seed(stable_seed("aug", key, variant))
    sigma = float(torch.exp(mean + std * torch.randn((), generator=g)))
    return sigma, torch.randn((2, *shape), generator=g)


@dataclass
class EncodedBatch:
    """A training batch as the UNet reads it: target latents, stage one's endpoints, and the
    clips' micro-conditioning (what the latent cache stores, field for field)."""

    latents: torch.Tensor  # (B, F, 4, h, w), × scaling_factor
    endpoint_latents: torch.Tensor  # (B, 2, 4, h, w), unscaled mode() of augmented endpoints
    aug_sigma: torch.Tensor  # (B,) σ_c of those endpoints
    image_embeddings: torch.Tensor  # (B, 2, D)
    fps: torch.Tensor  # (B,)
    motion_bucket: torch.Tensor  # (B,)
    heatmaps: torch.Tensor | None = None  # (B, F, 3, H, W) 0–255

    @property
    def endpoints(self) -> EncodedEndpoints:
        return EncodedEndpoints(self.image_embeddings, self.endpoint_latents, self.aug_sigma)

    def to(self, device) -> EncodedBatch:
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v)
                 for k, v in vars(self).items()}
        return EncodedBatch(**moved)


def encode_batch(vae, image_encoder, batch: dict, cond_aug_mean: float, cond_aug_std: float,
                 clip_mean=CLIP_MEAN, clip_std=CLIP_STD) -> EncodedBatch:
    """A collated dataset batch (uint8 frames) → :class:`EncodedBatch`, each clip with the
    augmentation variant the dataset chose for this visit."""
    device = vae.device
    pixels = pixels_from_uint8(batch["frames"]).to(device)
    draws = [augmentation_draw(k, int(v), cond_aug_mean, cond_aug_std, pixels.shape[2:])
             for k, v in zip(batch["key"], batch["aug_index"])]
    sigma = torch.tensor([d[0] for d in draws], device=device)
    noise = torch.stack([d[1] for d in draws]).to(device)
    ends = encode_endpoints(vae, image_encoder, pixels[:, 0], pixels[:, -1], sigma,
                            (noise[:, 0], noise[:, 1]), clip_mean, clip_std)
    return EncodedBatch(
        latents=encode_target_latents(vae, pixels),
        endpoint_latents=ends.endpoint_latents,
        aug_sigma=sigma,
        image_embeddings=ends.image_embeddings,
        fps=torch.as_tensor(batch["fps"], dtype=torch.float32, device=device),
        motion_bucket=torch.as_tensor(batch["motion_bucket"], dtype=torch.float32,
                                      device=device),
        heatmaps=batch.get("heatmaps"),
    )
