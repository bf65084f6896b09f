"""FramerTurbo: fine-tune, run and evaluate Framer (interactive frame interpolation on SVD)."""

__version__ = "0.1.0"

__all__ = ["FramerPipeline", "FramerUNet", "FramerControlNet", "__version__"]


def __getattr__(name):  # lazy: `framerturbo --version` should not import torch
    if name == "FramerPipeline":
        from .sampling.pipeline import FramerPipeline
        return FramerPipeline
    if name in ("FramerUNet", "FramerControlNet"):
        from . import models
        return getattr(models, name)
    raise AttributeError(f"module 'framerturbo' has no attribute {name!r}")
