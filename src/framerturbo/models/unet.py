"""FramerUNet: diffusers' stock SVD UNet plus Framer's two additions.

1. ``mask_token`` (1, 1, 4, 1, 1): a learned latent that stands in for the unknown middle frames in
   the conditioning video (state-dict key ``mask_token``, as in the released checkpoint).
2. A forward that adds ControlNet residuals where Framer adds them — to the 12 skip tensors after the
   whole down path, and to the mid-block output — and can return the up-block outputs (features
   for autopilot matching).

Everything else (blocks, names, ``from_pretrained``) is the stock class. With no residuals and no
feature request the forward *is* the stock forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.configuration_utils import register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.utils import BaseOutput
from torch import nn

from .encoder import prepare_encoder_inputs, run_down_path, run_mid_block
from .norms import set_norm_groups
from .temporal_conv import use_temporal_convs


@dataclass
class FramerUNetOutput(BaseOutput):
    sample: torch.Tensor
    up_block_features: list[torch.Tensor] | None = None


class FramerUNet(UNetSpatioTemporalConditionModel, PeftAdapterMixin):
    """The Framer UNet (9 input channels: 4 noisy + 4 conditioning latents + 1 mask)."""

    @register_to_config
    def __init__(self, sample_size: int | None = None, in_channels: int = 9, out_channels: int = 4,
                 down_block_types: tuple[str, ...] = (
                     "CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
                     "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
                 up_block_types: tuple[str, ...] = (
                     "UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal",
                     "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
                 block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
                 addition_time_embed_dim: int = 256,
                 projection_class_embeddings_input_dim: int = 768,
                 layers_per_block=2, cross_attention_dim=1024, transformer_layers_per_block=1,
                 num_attention_heads=(5, 10, 20, 20), num_frames: int = 25,
                 norm_groups: int | None = None):
        super().__init__(
            sample_size=sample_size, in_channels=in_channels, out_channels=out_channels,
            down_block_types=down_block_types, up_block_types=up_block_types,
            block_out_channels=block_out_channels, addition_time_embed_dim=addition_time_embed_dim,
            projection_class_embeddings_input_dim=projection_class_embeddings_input_dim,
            layers_per_block=layers_per_block, cross_attention_dim=cross_attention_dim,
            transformer_layers_per_block=transformer_layers_per_block,
            num_attention_heads=num_attention_heads, num_frames=num_frames)
        set_norm_groups(self, norm_groups)  # None: stock 32 groups (see norms.py)
        use_temporal_convs(self)  # same weights, faster kernels (see temporal_conv.py)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 4, 1, 1))

    @property
    def num_skip_tensors(self) -> int:
        """How many down residuals a ControlNet must supply (12 for the released layout)."""
        return 1 + sum(len(b.resnets) + (1 if b.downsamplers is not None else 0)
                       for b in self.down_blocks)

    @property
    def autopilot_feature_index(self) -> int:
        """The up block whose output sits at latent resolution (``up_blocks[2]`` when released)."""
        return len(self.up_blocks) - 2

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor,
                added_time_ids: torch.Tensor,
                down_block_additional_residuals: tuple[torch.Tensor, ...] | None = None,
                mid_block_additional_residual: torch.Tensor | None = None,
                return_up_block_features: bool = False, return_dict: bool = True):
        """sample (B, F, 9, h, w); residuals as ``FramerControlNet`` returns them, shape (B·F, C, h', w')."""
        if (down_block_additional_residuals is None and mid_block_additional_residual is None
                and not return_up_block_features):
            return super().forward(sample, timestep, encoder_hidden_states, added_time_ids,
                                   return_dict=return_dict)

        inputs = prepare_encoder_inputs(self, sample, timestep, encoder_hidden_states,
                                        added_time_ids)
        hidden = self.conv_in(sample.flatten(0, 1))
        hidden, skips = run_down_path(self, hidden, inputs)
        if down_block_additional_residuals is not None:
            if len(down_block_additional_residuals) != len(skips):
                raise ValueError(f"expected {len(skips)} down-block residuals, got "
                                 f"{len(down_block_additional_residuals)}")
            skips = tuple(s + r for s, r in zip(skips, down_block_additional_residuals))
        hidden = run_mid_block(self, hidden, inputs)
        if mid_block_additional_residual is not None:
            hidden = hidden + mid_block_additional_residual

        hidden, features = self._run_up_path(hidden, skips, inputs)
        out = self.conv_out(self.conv_act(self.conv_norm_out(hidden)))
        out = out.reshape(inputs.batch_size, inputs.num_frames, *out.shape[1:])
        features = features if return_up_block_features else None
        if not return_dict:
            return (out, features) if return_up_block_features else (out,)
        return FramerUNetOutput(sample=out, up_block_features=features)

    def _run_up_path(self, hidden, skips, inputs):
        # Non-multiples of 2**num_upsamplers need explicit sizes, as in the stock forward.
        forward_size = any(s % (2**self.num_upsamplers) != 0 for s in skips[0].shape[-2:])
        features = []
        for i, block in enumerate(self.up_blocks):
            n = len(block.resnets)
            res, skips = skips[-n:], skips[:-n]
            kwargs = dict(hidden_states=hidden, temb=inputs.emb, res_hidden_states_tuple=res,
                          image_only_indicator=inputs.image_only_indicator,
                          upsample_size=skips[-1].shape[2:] if forward_size and skips else None)
            if getattr(block, "has_cross_attention", False):
                kwargs["encoder_hidden_states"] = inputs.encoder_hidden_states
            hidden = block(**kwargs)
            features.append(hidden)
        return hidden, features
