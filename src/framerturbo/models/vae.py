"""FramerVAE: SVD's temporal-decoder VAE (diffusers' stock class) with a ``norm_groups`` setting.

Identical to ``AutoencoderKLTemporalDecoder`` unless ``norm_groups`` is set (see
:mod:`.norms`: the micro VAE needs fewer, wider groups to keep colour). Loads the released SVD VAE
unchanged.
"""

from __future__ import annotations

from diffusers import AutoencoderKLTemporalDecoder
from diffusers.configuration_utils import register_to_config

from .norms import set_norm_groups
from .temporal_conv import use_temporal_convs


class FramerVAE(AutoencoderKLTemporalDecoder):
    @register_to_config
    def __init__(self, in_channels: int = 3, out_channels: int = 3,
                 down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",),
                 block_out_channels: tuple[int, ...] = (64,), layers_per_block: int = 1,
                 latent_channels: int = 4, sample_size: int = 32, scaling_factor: float = 0.18215,
                 force_upcast: bool = True, norm_groups: int | None = None):
        super().__init__(in_channels=in_channels, out_channels=out_channels,
                         down_block_types=down_block_types, block_out_channels=block_out_channels,
                         layers_per_block=layers_per_block, latent_channels=latent_channels,
                         sample_size=sample_size, scaling_factor=scaling_factor,
                         force_upcast=force_upcast)
        set_norm_groups(self, norm_groups)
        use_temporal_convs(self)  # same weights, faster kernels (see temporal_conv.py)
