"""The encoder half shared by FramerUNet and FramerControlNet.

Both models carry the same stock modules under the same names (``conv_in``, ``time_proj``,
``time_embedding``, ``add_time_proj``, ``add_embedding``, ``down_blocks``, ``mid_block``), so
one implementation of "embed the conditions, run the down path, run the mid block" serves both —
the ControlNet is by construction a copy of the UNet's encoder, never a drifting re-write.
The order of operations mirrors diffusers' ``UNetSpatioTemporalConditionModel.forward``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderInputs:
    """Per-frame tensors every block needs: the embedding, the CLIP tokens, the frame indicator."""

    emb: torch.Tensor  # (B·F, time_embed_dim)
    encoder_hidden_states: torch.Tensor  # (B·F, tokens, cross_attention_dim)
    image_only_indicator: torch.Tensor  # (B, F) zeros
    batch_size: int
    num_frames: int


def prepare_encoder_inputs(model: nn.Module, sample: torch.Tensor, timestep,
                           encoder_hidden_states: torch.Tensor,
                           added_time_ids: torch.Tensor) -> EncoderInputs:
    """Timestep + micro-conditioning embedding per video, repeated for every frame."""
    batch_size, num_frames = sample.shape[:2]
    timesteps = timestep
    if not torch.is_tensor(timesteps):
        timesteps = torch.tensor([float(timesteps)], device=sample.device)
    elif timesteps.ndim == 0:
        timesteps = timesteps[None].to(sample.device)
    timesteps = timesteps.expand(batch_size)

    emb = model.time_embedding(model.time_proj(timesteps).to(dtype=sample.dtype))
    time_embeds = model.add_time_proj(added_time_ids.flatten()).reshape(batch_size, -1)
    emb = emb + model.add_embedding(time_embeds.to(emb.dtype))

    return EncoderInputs(
        emb=emb.repeat_interleave(num_frames, dim=0),
        encoder_hidden_states=encoder_hidden_states.repeat_interleave(num_frames, dim=0),
        image_only_indicator=torch.zeros(batch_size, num_frames, dtype=sample.dtype,
                                         device=sample.device),
        batch_size=batch_size,
        num_frames=num_frames,
    )


def run_down_path(model: nn.Module, hidden: torch.Tensor, inputs: EncoderInputs):
    """Run ``model.down_blocks``; returns the last hidden state and every skip tensor.

    ``hidden`` is the output of ``conv_in`` (plus, for the ControlNet, the heat-map embedding); it
    is itself the first skip tensor, as in the stock UNet."""
    skips: tuple[torch.Tensor, ...] = (hidden,)
    for block in model.down_blocks:
        kwargs = dict(hidden_states=hidden, temb=inputs.emb,
                      image_only_indicator=inputs.image_only_indicator)
        if getattr(block, "has_cross_attention", False):
            kwargs["encoder_hidden_states"] = inputs.encoder_hidden_states
        hidden, res = block(**kwargs)
        skips += tuple(res)
    return hidden, skips


def run_mid_block(model: nn.Module, hidden: torch.Tensor, inputs: EncoderInputs) -> torch.Tensor:
    return model.mid_block(hidden_states=hidden, temb=inputs.emb,
                           encoder_hidden_states=inputs.encoder_hidden_states,
                           image_only_indicator=inputs.image_only_indicator)
