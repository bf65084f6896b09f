"""Time-only Conv3d layers run as 2-D convolutions: same numbers, gradients and state as stock."""

import pytest
import torch
from torch import nn

from framerturbo.models.configs import config
from framerturbo.models.temporal_conv import TemporalConv3d, use_stock_convs, use_temporal_convs
from framerturbo.models.unet import FramerUNet
from framerturbo.models.vae import FramerVAE


@pytest.mark.parametrize("kwargs", [
    dict(in_channels=6, out_channels=4, kernel_size=(3, 1, 1), padding=(1, 0, 0)),
    dict(in_channels=4, out_channels=4, kernel_size=(3, 1, 1), padding=(0, 0, 0), bias=False),
    dict(in_channels=4, out_channels=8, kernel_size=(5, 1, 1), padding=(2, 0, 0), stride=(2, 1, 1),
         groups=2),
])
def test_matches_stock_conv3d_forward_and_backward(kwargs):
    torch.manual_seed(0)
    stock = nn.Conv3d(**kwargs)
    fast = use_temporal_convs(nn.Sequential(nn.Conv3d(**kwargs)))[0]
    fast.load_state_dict(stock.state_dict())
    assert type(fast) is TemporalConv3d
    x = torch.randn(2, kwargs["in_channels"], 7, 5, 3, requires_grad=True)
    y_stock, y_fast = stock(x), fast(x)
    torch.testing.assert_close(y_fast, y_stock, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y_stock)
    grads = [torch.autograd.grad(y, (x, m.weight), g) for y, m in ((y_stock, stock), (y_fast, fast))]
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_convs_that_look_at_pixels_stay_stock():
    model = use_temporal_convs(nn.Sequential(nn.Conv3d(2, 2, 3, padding=1),
                                             nn.Conv3d(2, 2, (3, 1, 1), padding=(1, 1, 0)),
                                             nn.Conv3d(2, 2, (3, 1, 1), padding=(1, 0, 0),
                                                       padding_mode="circular")))
    assert all(type(m) is nn.Conv3d for m in model)


def test_micro_models_use_them_and_compute_what_the_stock_layers_compute():
    torch.manual_seed(0)
    unet = FramerUNet(**config("micro-unet")).eval()
    vae = FramerVAE(**config("micro-vae")).eval()
    n_unet = sum(type(m) is TemporalConv3d for m in unet.modules())
    n_vae = sum(type(m) is TemporalConv3d for m in vae.modules())
    assert n_unet > 0 and n_vae > 0
    assert not any(type(m) is nn.Conv3d for m in (*unet.modules(), *vae.modules()))
    x = torch.randn(1, 5, 9, 8, 8)
    args = (x, torch.tensor(0.3), torch.randn(1, 1, 32), torch.tensor([[7.0, 100.0, 0.02]]))
    latents = torch.randn(5, 4, 8, 8)
    with torch.no_grad():
        fast = unet(*args).sample, vae.decode(latents, num_frames=5).sample
        stock = (use_stock_convs(unet)(*args).sample,
                 use_stock_convs(vae).decode(latents, num_frames=5).sample)
    for a, b in zip(fast, stock):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_state_dict_and_peft_lora_see_a_stock_conv3d():
    torch.manual_seed(0)
    unet = FramerUNet(**config("micro-unet"))
    keys = set(unet.state_dict())
    assert keys == set(use_stock_convs(FramerUNet(**config("micro-unet"))).state_dict())
    from peft import LoraConfig

    target = r".*down_blocks\.0\.resnets\.0\.temporal_res_block\.conv1"
    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=target,
                                init_lora_weights=False))
    wrapped = unet.down_blocks[0].resnets[0].temporal_res_block.conv1
    assert type(wrapped.base_layer) is TemporalConv3d
    x = torch.randn(1, 32, 9, 4, 4)
    with torch.no_grad():
        fast = wrapped(x)
        wrapped.base_layer.__class__ = nn.Conv3d
        torch.testing.assert_close(fast, wrapped(x), rtol=1e-4, atol=1e-5)
