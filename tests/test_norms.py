"""Group norms of the micro family: the σ input and the colour must survive normalisation."""

import pytest
import torch

from framerturbo.models.configs import config
from framerturbo.models.norms import set_norm_groups
from framerturbo.models.unet import FramerUNet
from framerturbo.models.vae import FramerVAE


def _unet(norm_groups):
    torch.manual_seed(0)
    return FramerUNet(**(config("micro-unet") | {"norm_groups": norm_groups}))


def _time_grad(unet) -> float:
    """|∂ output / ∂ (first block's time projection)| — zero when norms erase the σ shift."""
    x = torch.randn(1, 3, 9, 16, 16)
    out = unet(x, torch.tensor(0.3), torch.randn(1, 2, 32), torch.tensor([[7.0, 100.0, 0.02]]),
               return_dict=False)[0]
    out.square().mean().backward()
    return unet.down_blocks[0].resnets[0].spatial_res_block.time_emb_proj.weight.grad.abs().sum()


def test_stock_32_groups_erase_the_time_embedding_at_micro_width():
    # 32 channels in 32 groups = per-channel norm: the per-channel σ shift is subtracted again
    assert _time_grad(_unet(None)) < 1e-6


def test_micro_norm_groups_let_the_first_block_read_sigma():
    assert _time_grad(_unet(8)) > 1e-3


def test_micro_unet_output_depends_on_sigma():
    unet = _unet(config("micro-unet")["norm_groups"])
    x = torch.randn(1, 3, 9, 16, 16)
    args = (torch.randn(1, 2, 32), torch.tensor([[7.0, 100.0, 0.02]]))
    with torch.no_grad():
        lo, hi = (unet(x, torch.tensor(t), *args, return_dict=False)[0] for t in (-1.5, 1.6))
    assert (lo - hi).norm() / lo.norm() > 0.05


def test_norm_groups_round_trip_through_save_and_load(tmp_path):
    vae = FramerVAE(**config("micro-vae"))
    vae.save_pretrained(tmp_path)
    again = FramerVAE.from_pretrained(tmp_path)
    groups = {m.num_groups for m in again.modules() if isinstance(m, torch.nn.GroupNorm)}
    assert groups == {8}
    stock = FramerVAE(**(config("micro-vae") | {"norm_groups": None}))
    assert {m.num_groups for m in stock.modules() if isinstance(m, torch.nn.GroupNorm)} == {32}


def test_vae_keeps_the_mean_colour_path():
    """With per-channel norms a frame's mean colour cannot pass the encoder's first block."""
    torch.manual_seed(0)
    for groups, changes in ((None, False), (8, True)):
        vae = FramerVAE(**(config("micro-vae") | {"norm_groups": groups}))
        block = vae.encoder.down_blocks[0].resnets[0]
        h = vae.encoder.conv_in(torch.rand(1, 3, 16, 16))
        shifted = h + torch.randn(1, h.shape[1], 1, 1)  # a per-channel offset (a colour change)
        with torch.no_grad():
            a, b = block.norm1(h), block.norm1(shifted)
        assert (not torch.allclose(a, b, atol=1e-4)) == changes


def test_bad_group_count_is_one_clear_error():
    with pytest.raises(ValueError, match="does not divide"):
        set_norm_groups(FramerVAE(**config("micro-vae")), 5)
