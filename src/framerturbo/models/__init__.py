"""Framer's models on stock diffusers classes, their configs, and loading/saving."""

from .configs import config
from .controlnet import FramerControlNet
from .surgery import init_from_svd
from .unet import FramerUNet

__all__ = ["FramerUNet", "FramerControlNet", "init_from_svd", "config"]
