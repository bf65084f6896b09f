"""Model configurations: the released Framer architecture and the tiny "micro" family.

The micro configs keep the released *structure* — four down/up blocks of the same types, two
layers per block, so 12 ControlNet residuals and the same parameter names — at tiny widths, so
every code path that touches the real model runs in seconds on a CPU. Widths are multiples of 32
(GroupNorm uses 32 groups); four VAE blocks give the ×8 spatial factor the pipeline assumes; the
CLIP encoder keeps the standard 224-pixel input (patch 32) so real preprocessing applies, and its
projection width equals the UNet's cross-attention width.
"""

from __future__ import annotations

import copy
from pathlib import Path

MICRO_PATH = Path(__file__).resolve().parents[1] / "assets" / "micro"  # the shipped micro Framer


def size_step(vae_blocks: int, unet_blocks: int) -> int:
    """The pixel multiple a model's sizes must be: the VAE's ×2^(blocks−1) times the UNet's
    downsampling 2^(blocks−1) — 64 for the released layout, 32 for the micro model."""
    return 2 ** (vae_blocks - 1) * 2 ** (unet_blocks - 1)

_SVD_BLOCKS = dict(
    down_block_types=["CrossAttnDownBlockSpatioTemporal"] * 3 + ["DownBlockSpatioTemporal"],
    up_block_types=["UpBlockSpatioTemporal"] + ["CrossAttnUpBlockSpatioTemporal"] * 3,
)

RELEASED_UNET = dict(
    sample_size=96, in_channels=9, out_channels=4, **_SVD_BLOCKS,
    block_out_channels=[320, 640, 1280, 1280], addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=768, layers_per_block=2, cross_attention_dim=1024,
    transformer_layers_per_block=1, num_attention_heads=[5, 10, 20, 20], num_frames=25,
)
RELEASED_CONTROLNET = dict(
    RELEASED_UNET, conditioning_channels=3, conditioning_embedding_out_channels=[16, 32, 96, 256],
    with_id_feature=False, feature_channels=160, feature_out_channels=[160, 160, 256, 256],
)

MICRO_UNET = dict(
    sample_size=8, in_channels=9, out_channels=4, **_SVD_BLOCKS,
    block_out_channels=[32, 32, 64, 64], addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=24, layers_per_block=2, cross_attention_dim=32,
    transformer_layers_per_block=1, num_attention_heads=[2, 2, 4, 4], num_frames=14,
    norm_groups=8,  # 4–8 channels per group: the stock 32 would erase σ (see norms.py)
)
MICRO_CONTROLNET = dict(MICRO_UNET, conditioning_channels=3,
                        conditioning_embedding_out_channels=[16, 32, 32, 32])
MICRO_VAE = dict(
    in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
    block_out_channels=[32, 64, 64, 64], layers_per_block=1, latent_channels=4, sample_size=64,
    scaling_factor=0.18215, force_upcast=True, norm_groups=8,  # keeps colour (see norms.py)
)
MICRO_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  image_size=224, patch_size=32, projection_dim=32)

# SVD-xt's VAE (diffusers' AutoencoderKLTemporalDecoder defaults, 97,742,847 parameters) and
# image encoder (CLIP ViT-H/14 vision + projection, 632,076,800): for benchmarks on random weights.
RELEASED_VAE = dict(down_block_types=["DownEncoderBlock2D"] * 4,
                    block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4,
                    sample_size=768, scaling_factor=0.18215, force_upcast=True)
RELEASED_CLIP = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                     num_attention_heads=16, image_size=224, patch_size=14, projection_dim=1024,
                     hidden_act="gelu")

# SVD-xt's scheduler_config.json (EulerDiscreteScheduler, EDM σ range, continuous c_noise).
SVD_SCHEDULER = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
    prediction_type="v_prediction", sigma_min=0.002, sigma_max=700.0, use_karras_sigmas=True,
    timestep_type="continuous", timestep_spacing="leading", steps_offset=1,
    interpolation_type="linear", clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True,
)
# OpenAI CLIP normalisation, as SVD-xt's feature_extractor/preprocessor_config.json.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def config(name: str) -> dict:
    """A fresh copy of a named config (so callers may edit it)."""
    table = {"released-unet": RELEASED_UNET, "released-controlnet": RELEASED_CONTROLNET,
             "micro-unet": MICRO_UNET, "micro-controlnet": MICRO_CONTROLNET,
             "micro-vae": MICRO_VAE, "micro-clip": MICRO_CLIP, "svd-scheduler": SVD_SCHEDULER,
             "released-vae": RELEASED_VAE, "released-clip": RELEASED_CLIP}
    if name not in table:
        raise KeyError(f"unknown config {name!r}; known: {', '.join(sorted(table))}")
    return copy.deepcopy(table[name])
