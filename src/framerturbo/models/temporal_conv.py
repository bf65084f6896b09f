"""Time-only 3-D convolutions computed as 2-D ones.

Every temporal ResNet in the SVD blocks (UNet, ControlNet, the VAE's temporal decoder) mixes frames
with an ``nn.Conv3d`` whose kernel is ``(3, 1, 1)``: it looks along time and at one pixel. PyTorch
has no oneDNN kernel for 3-D convolutions on CPU in fp32 and falls back to ``slow_conv3d``, which
took 36 % of the micro VAE's decode and 13 % of a micro UNet pass (torch 2.13, 2 cores). Viewing
``(B, C, T, H, W)`` as ``(B, C, T, H·W)`` turns the same kernel into a ``(3, 1)`` 2-D convolution,
which runs on oneDNN (and on cuDNN on a GPU): the same arithmetic on the same weights.

:func:`use_temporal_convs` switches the eligible layers of a model to :class:`TemporalConv3d`, a
subclass of ``nn.Conv3d`` that only changes ``forward``: parameter names and shapes, state dicts,
PEFT's Conv3d LoRA wrapper and ``isinstance`` checks see the stock layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TemporalConv3d(nn.Conv3d):
    """An ``nn.Conv3d`` with a ``(k, 1, 1)`` kernel, run as a ``(k, 1)`` 2-D convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        out = F.conv2d(x.reshape(b, c, t, h * w), self.weight.squeeze(-1), self.bias,
                       (self.stride[0], 1), (self.padding[0], 0), (self.dilation[0], 1),
                       self.groups)
        return out.reshape(b, out.shape[1], out.shape[2], h, w)


def is_time_only(conv: nn.Conv3d) -> bool:
    """True when ``conv`` never mixes pixels: kernel, stride and dilation 1 in space, no padding
    there, zero padding in time."""
    return (conv.kernel_size[1:] == (1, 1) and conv.stride[1:] == (1, 1)
            and conv.dilation[1:] == (1, 1) and tuple(conv.padding[1:]) == (0, 0)
            and conv.padding_mode == "zeros")


def use_temporal_convs(model: nn.Module) -> nn.Module:
    """Run every time-only ``nn.Conv3d`` of ``model`` as a 2-D convolution (in place)."""
    for module in model.modules():
        if type(module) is nn.Conv3d and is_time_only(module):
            module.__class__ = TemporalConv3d  # same state, only forward differs
    return model


def use_stock_convs(model: nn.Module) -> nn.Module:
    """Undo :func:`use_temporal_convs` (in place): the reference the tests and the benchmark
    compare against."""
    for module in model.modules():
        if type(module) is TemporalConv3d:
            module.__class__ = nn.Conv3d
    return model
