"""Model names → folders: what ``--model`` accepts besides a folder or a Hub id. Kept apart
from loading so that a model's record can be read without loading anything."""

from __future__ import annotations

import os

from .configs import MICRO_PATH

RANDOM_MICRO = "random-micro"  # the micro architecture with random weights (tests, smoke runs)
MICRO = "micro"  # the trained micro Framer shipped inside the package


class ModelNotFoundError(FileNotFoundError):
    """A model folder or one of its parts is missing; the message says what and where."""


def resolve_model(model: str | os.PathLike) -> str:
    """Named models → folders: ``micro`` is the package's embedded micro Framer."""
    if str(model) == MICRO:
        if not (MICRO_PATH / "unet").is_dir():
            raise ModelNotFoundError(
                f"the embedded micro model is missing from {MICRO_PATH} — rebuild it "
                "(docs/micro-model.md) or use --model random-micro")
        return str(MICRO_PATH)
    return str(model)
