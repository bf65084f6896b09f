"""Weight surgery: a Framer UNet from a stock SVD-xt UNet, for training Framer from SVD."""

from __future__ import annotations

import torch
from diffusers import UNetSpatioTemporalConditionModel

from .unet import FramerUNet


def init_from_svd(svd_unet: UNetSpatioTemporalConditionModel) -> FramerUNet:
    """Copy an 8-channel SVD UNet into a 9-channel FramerUNet.

    ``conv_in`` gains a 9th input channel (the mask) whose weights are zero, so the new model gives
    exactly the SVD output whenever the mask channel is zero. ``mask_token`` starts at zero — the
    same value the unconditional branch uses for endpoint latents — and is learned from there
    (the released code drew it from N(0, 1), which injects a random offset into every middle frame).
    """
    config = {k: v for k, v in svd_unet.config.items() if not k.startswith("_")}
    old_in = config["in_channels"]
    if old_in != 8:
        raise ValueError(f"init_from_svd expects an 8-channel SVD UNet, got in_channels={old_in}")
    config["in_channels"] = 9
    framer = FramerUNet(**config).to(dtype=svd_unet.dtype, device=svd_unet.device)

    state = dict(svd_unet.state_dict())
    weight = state.pop("conv_in.weight")
    state["conv_in.weight"] = torch.cat([weight, torch.zeros_like(weight[:, :1])], dim=1)
    state["mask_token"] = torch.zeros_like(framer.mask_token)
    framer.load_state_dict(state, strict=True)
    return framer
