"""FramerControlNet: the trajectory ControlNet, rebuilt from diffusers' stock blocks.

Architecture (and parameter names) of the released ``controlnet/`` checkpoint:

* an encoder copy of the UNet — ``conv_in``, ``time_embedding``, ``add_embedding``,
  ``down_blocks``, ``mid_block`` — run by the same code as the UNet's (``encoder.py``);
* ``controlnet_cond_embedding``: diffusers' stock ``ControlNetConditioningEmbedding`` (3→16,
  16→16→32→32→96→96→256 with stride 2 every other conv, zero-initialised ``conv_out``) applied to
  the 0–255 point heat-maps and added to ``conv_in(sample)``;
* ``controlnet_down_blocks.0–11`` and ``controlnet_mid_block``: zero-initialised 1×1 convs, one per
  UNet skip tensor and one for the mid block.

The released config carries DragAnything leftovers (``with_id_feature``, ``feature_channels``,
``feature_out_channels``) and UNet-only keys (``out_channels``, ``up_block_types``); they are
accepted and kept so that our saved folders keep the released layout, but build nothing.

``heatmap_sigma`` / ``heatmap_radius`` (pixels) record the heat-maps the ControlNet was trained
on, so every caller draws them alike; the released config has neither and was trained on σ 8,
radius 20 (one latent pixel of its ×8 VAE). A model at another scale needs its own — the micro
model at 64×64 with a ×4 VAE uses σ 4, radius 10: at σ 8 one hand's blobs cover half the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_3d_blocks import UNetMidBlockSpatioTemporal, get_down_block
from diffusers.utils import BaseOutput
from torch import nn

from ..core.tracks import HEATMAP_RADIUS, HEATMAP_SIGMA
from .encoder import prepare_encoder_inputs, run_down_path, run_mid_block
from .norms import set_norm_groups
from .temporal_conv import use_temporal_convs


@dataclass
class FramerControlNetOutput(BaseOutput):
    down_block_res_samples: tuple[torch.Tensor, ...]
    mid_block_res_sample: torch.Tensor


def _zero_conv(channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(channels, channels, kernel_size=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _per_block(value, n):
    return (value,) * n if isinstance(value, int) else tuple(value)


class FramerControlNet(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """Point-trajectory ControlNet for Framer (``ControlNetSVDModel`` in the released config)."""

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(self, sample_size: int | None = None, in_channels: int = 9,
                 out_channels: int = 4,
                 down_block_types: tuple[str, ...] = (
                     "CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
                     "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
                 up_block_types: tuple[str, ...] | None = None,
                 block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
                 addition_time_embed_dim: int = 256,
                 projection_class_embeddings_input_dim: int = 768,
                 layers_per_block=2, cross_attention_dim=1024, transformer_layers_per_block=1,
                 num_attention_heads=(5, 10, 20, 20), num_frames: int = 25,
                 conditioning_channels: int = 3,
                 conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256),
                 with_id_feature: bool = False, feature_channels: int | None = None,
                 feature_out_channels: tuple[int, ...] | None = None,
                 norm_groups: int | None = None, heatmap_sigma: float = HEATMAP_SIGMA,
                 heatmap_radius: float = HEATMAP_RADIUS):
        super().__init__()
        if with_id_feature:
            raise ValueError("with_id_feature=True (DragAnything's ID features) is not part of "
                             "Framer; set it to false in controlnet/config.json")
        n = len(down_block_types)
        heads = _per_block(num_attention_heads, n)
        cross_dims = _per_block(cross_attention_dim, n)
        layers = _per_block(layers_per_block, n)
        t_layers = _per_block(transformer_layers_per_block, n)
        time_embed_dim = block_out_channels[0] * 4

        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.time_proj = Timesteps(block_out_channels[0], True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(block_out_channels[0], time_embed_dim)
        self.add_time_proj = Timesteps(addition_time_embed_dim, True, downscale_freq_shift=0)
        self.add_embedding = TimestepEmbedding(projection_class_embeddings_input_dim,
                                               time_embed_dim)
        self.controlnet_cond_embedding = ControlNetConditioningEmbedding(
            conditioning_embedding_channels=block_out_channels[0],
            conditioning_channels=conditioning_channels,
            block_out_channels=tuple(conditioning_embedding_out_channels))

        self.down_blocks = nn.ModuleList()
        self.controlnet_down_blocks = nn.ModuleList([_zero_conv(block_out_channels[0])])
        out_ch = block_out_channels[0]
        for i, block_type in enumerate(down_block_types):
            in_ch, out_ch = out_ch, block_out_channels[i]
            is_final = i == n - 1
            self.down_blocks.append(get_down_block(
                block_type, num_layers=layers[i], transformer_layers_per_block=t_layers[i],
                in_channels=in_ch, out_channels=out_ch, temb_channels=time_embed_dim,
                add_downsample=not is_final, resnet_eps=1e-5, cross_attention_dim=cross_dims[i],
                num_attention_heads=heads[i], resnet_act_fn="silu"))
            for _ in range(layers[i] + (0 if is_final else 1)):
                self.controlnet_down_blocks.append(_zero_conv(out_ch))

        self.mid_block = UNetMidBlockSpatioTemporal(
            block_out_channels[-1], temb_channels=time_embed_dim,
            transformer_layers_per_block=t_layers[-1], cross_attention_dim=cross_dims[-1],
            num_attention_heads=heads[-1])
        self.controlnet_mid_block = _zero_conv(block_out_channels[-1])
        set_norm_groups(self, norm_groups)  # None: stock 32 groups (see norms.py)
        use_temporal_convs(self)  # same weights, faster kernels (see temporal_conv.py)

    @classmethod
    def from_unet(cls, unet: nn.Module, **overrides) -> FramerControlNet:
        """A ControlNet whose encoder starts as a copy of ``unet``'s (zero outputs: no effect yet)."""
        keys = ("sample_size", "in_channels", "down_block_types", "block_out_channels",
                "addition_time_embed_dim", "projection_class_embeddings_input_dim",
                "layers_per_block", "cross_attention_dim", "transformer_layers_per_block",
                "num_attention_heads", "num_frames", "norm_groups")
        config = {k: unet.config.get(k) for k in keys} | overrides
        controlnet = cls(**config)
        for name in ("conv_in", "time_embedding", "add_embedding", "down_blocks", "mid_block"):
            getattr(controlnet, name).load_state_dict(getattr(unet, name).state_dict())
        return controlnet.to(dtype=unet.dtype)

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor,
                added_time_ids: torch.Tensor, controlnet_cond: torch.Tensor,
                conditioning_scale: float = 1.0, return_dict: bool = True):
        """``controlnet_cond``: heat-maps (B, F, 3, H, W) with values 0–255 (not normalised), at
        8× the latent resolution. Returns 12 down residuals and 1 mid residual, each (B·F, C, h, w)
        and multiplied by ``conditioning_scale``."""
        inputs = prepare_encoder_inputs(self, sample, timestep, encoder_hidden_states,
                                        added_time_ids)
        hidden = self.conv_in(sample.flatten(0, 1))
        cond = controlnet_cond.flatten(0, 1).to(dtype=hidden.dtype)
        hidden = hidden + self.controlnet_cond_embedding(cond)
        hidden, skips = run_down_path(self, hidden, inputs)
        hidden = run_mid_block(self, hidden, inputs)

        down = tuple(conv(s) * conditioning_scale
                     for conv, s in zip(self.controlnet_down_blocks, skips))
        mid = self.controlnet_mid_block(hidden) * conditioning_scale
        if not return_dict:
            return down, mid
        return FramerControlNetOutput(down_block_res_samples=down, mid_block_res_sample=mid)
