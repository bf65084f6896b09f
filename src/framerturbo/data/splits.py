"""The training and validation datasets of a config: which sources train, which are held out."""

from __future__ import annotations

import logging

from ..core.config import Config, ConfigError
from .clips import hold_out
from .dataset import ClipDataset, ClipSettings
from .sources import discover

logger = logging.getLogger(__name__)


def make_datasets(cfg: Config):
    """(train, validation) datasets; validation clips come from validation_sources, else are
    held out of the sources (``data.clips.hold_out``: whole files, or cut by time)."""
    if not cfg.data.sources:
        raise ConfigError("data.sources is empty — list video folders, frame folders or "
                          ".jsonl manifests")
    settings = ClipSettings.from_config(cfg)
    sources = discover(cfg.data.sources)
    held = discover(cfg.data.validation_sources) if cfg.data.validation_sources else []
    if not held and cfg.data.validation_clips:
        d = cfg.data
        sources, held, note = hold_out(sources, d.validation_clips, d.num_frames, d.stride,
                                       d.target_fps, d.sampling)
        if note:
            logger.warning(note)
    train = ClipDataset(sources, settings)
    # validation stays at the fixed data.height × width × num_frames (one batch, comparable
    # across runs) even when training uses buckets
    val_settings = ClipSettings(**{**vars(settings), "sampling": "uniform", "flip": False,
                                   "buckets": False})
    val = ClipDataset(held[:cfg.data.validation_clips], val_settings) if held else None
    if len(train) == 0:
        raise ConfigError(f"no usable training clips in {cfg.data.sources} "
                          f"({len(train.skipped.reasons)} skipped) — run `framerturbo "
                          "check-data` on them")
    return train, val
