"""Framer's conditioning — the one implementation that sampling and training both call.

Given the start and end frames (pixels in [−1, 1], already at the generation size):

* **CLIP tokens** (B, 2, D): each endpoint → antialiased resize to 224×224 → [0, 1] → CLIP
  mean/std → ``image_embeds``; the clean frames are used (no noise augmentation).
* **Endpoint latents**: ``vae.encode(x + σ_c·n).latent_dist.mode()`` with n ~ N(0, I) added in
  *pixel* space, **not** multiplied by the VAE scaling factor (as SVD was trained).
* **Conditioning video** (B, F, 5, h, w): latent channels [start, mask_token × (F−2), end] and a
  mask channel that is 0 on the two known frames and 1 in between.
* **Time ids** (B, 3): [fps − 1, motion_bucket_id, σ_c].
* **Unconditional branch** (CFG, and conditioning dropout in training): zero CLIP tokens and zero
  endpoint latents; the mask tokens and the mask channel are kept.
* **UNet input** (B, F, 9, h, w): [c_in(σ)·x_σ | conditioning video].
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .encoding import EncodedEndpoints


@dataclass
class FramerConditioning:
    """Everything the UNet (and ControlNet) take besides the noisy latents and the timestep."""

    image_embeddings: torch.Tensor  # (B, 2, D)  [CLIP(start), CLIP(end)]
    cond_video: torch.Tensor  # (B, F, 5, h, w)
    added_time_ids: torch.Tensor  # (B, 3)

    def drop(self, tokens: torch.Tensor | bool = True,
             endpoints: torch.Tensor | bool = True) -> FramerConditioning:
        """Zero the CLIP tokens and/or the endpoint latents of the selected samples (a bool, or a
        (B,) bool tensor). ``drop()`` is the sampler's unconditional branch; per-sample masks are
        the trainer's conditioning dropout — the same operation, so they cannot diverge."""
        batch = self.image_embeddings.shape[0]
        tokens = _as_mask(tokens, batch, self.image_embeddings.device)
        endpoints = _as_mask(endpoints, batch, self.cond_video.device)
        emb = self.image_embeddings * (~tokens).to(self.image_embeddings.dtype)[:, None, None]
        video = self.cond_video.clone()
        keep = (~endpoints).to(video.dtype)[:, None, None, None]
        video[:, 0, :4] = video[:, 0, :4] * keep
        video[:, -1, :4] = video[:, -1, :4] * keep
        return replace(self, image_embeddings=emb, cond_video=video)

    def cat(self, other: FramerConditioning) -> FramerConditioning:
        """Batch-concatenate (e.g. [unconditional, conditional] for CFG)."""
        return FramerConditioning(
            torch.cat([self.image_embeddings, other.image_embeddings]),
            torch.cat([self.cond_video, other.cond_video]),
            torch.cat([self.added_time_ids, other.added_time_ids]))


def _as_mask(value, batch, device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=torch.bool).reshape(batch)
    return torch.full((batch,), bool(value), device=device)


def build_cond_video(start_latents: torch.Tensor, end_latents: torch.Tensor,
                     mask_token: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B, F, 5, h, w): [start, mask_token × (F−2), end] plus the mask channel [0, 1…1, 0]."""
    if num_frames < 3:
        raise ValueError(f"num_frames must be at least 3 (two endpoints and one generated "
                         f"frame), got {num_frames}")
    batch, channels, h, w = start_latents.shape
    middle = mask_token.to(start_latents).expand(batch, num_frames - 2, channels, h, w)
    video = torch.cat([start_latents[:, None], middle, end_latents[:, None]], dim=1)
    mask = torch.ones(batch, num_frames, 1, h, w, dtype=video.dtype, device=video.device)
    mask[:, 0] = 0
    mask[:, -1] = 0
    return torch.cat([video, mask], dim=2)


def make_time_ids(fps, motion_bucket_id, noise_aug_strength, batch_size: int,
                  device=None, dtype=torch.float32) -> torch.Tensor:
    """(B, 3) micro-conditioning [fps − 1, motion_bucket_id, σ_c]; each entry a number or (B,)."""
    columns = [torch.as_tensor(v, dtype=dtype, device=device).expand(batch_size)
               for v in (torch.as_tensor(fps, dtype=dtype) - 1, motion_bucket_id,
                         noise_aug_strength)]
    return torch.stack(columns, dim=1)


def assemble(endpoints: EncodedEndpoints, mask_token: torch.Tensor, num_frames: int, fps,
             motion_bucket_id) -> FramerConditioning:
    """Stage two: the conditional branch from encoded endpoints — [start, mask tokens, end] with
    the mask channel, and the time ids [fps − 1, motion bucket, σ_c]. Cheap and model-bound (the
    mask token is a UNet weight), so it runs at every training step and once per sampling call."""
    latents = endpoints.endpoint_latents
    cond_video = build_cond_video(latents[:, 0], latents[:, 1], mask_token, num_frames)
    time_ids = make_time_ids(fps, motion_bucket_id, endpoints.aug_sigma, latents.shape[0],
                             device=cond_video.device)
    return FramerConditioning(endpoints.image_embeddings, cond_video, time_ids)


def unet_input(scaled_latents: torch.Tensor, cond: FramerConditioning) -> torch.Tensor:
    """The 9-channel UNet (and ControlNet) input: [c_in·x_σ | conditioning video]."""
    return torch.cat([scaled_latents, cond.cond_video.to(scaled_latents.dtype)], dim=2)
