"""Group-norm group counts for narrow models.

The stock SVD blocks (diffusers' spatio-temporal ResNets, their transformers and the VAE) hard-code
32 groups. At the released widths (320+ channels) a group holds 10+ channels; at the micro widths
(32 channels) every group is ONE channel, i.e. instance normalisation, and that breaks two things:

* The time embedding enters a ResNet as a per-channel shift right before ``norm2``; normalising each
  channel on its own subtracts that shift again, so the network cannot read σ at all (measured on
  the first micro model: its output did not change when c_noise went from −1.5 to 1.6).
* In the VAE, each channel's mean over the image is removed at every block, so the mean colour of a
  frame can only leak through borders and non-linearities: the first micro VAE cast every frame
  toward grey.

``norm_groups`` (a config value of :class:`FramerUNet`, :class:`FramerControlNet` and
:class:`FramerVAE`) sets the group count of every GroupNorm after the stock constructor ran; the
parameters (one scale and one shift per channel) keep their names and shapes. ``None`` keeps the
stock 32, as the released weights were trained.
"""

from __future__ import annotations

from torch import nn


def set_norm_groups(model: nn.Module, groups: int | None) -> nn.Module:
    """Give every ``GroupNorm`` in ``model`` ``groups`` groups (``None``: leave them)."""
    if groups is None:
        return model
    for name, module in model.named_modules():
        if isinstance(module, nn.GroupNorm):
            if module.num_channels % groups:
                raise ValueError(f"norm_groups={groups} does not divide the {module.num_channels} "
                                 f"channels of {name or type(model).__name__}; choose a divisor "
                                 f"of every block width")
            module.num_groups = groups
    return model
