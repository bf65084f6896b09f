"""The data settings: one type for what a clip is (size, frames, spacing, resize, conditioning).

Training reads it as the ``[data]`` section of its config (``core/config.py`` composes it); the
dataset, the cache and ``evaluate`` take the same object, so a clip means the same thing in each.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    sources: list[str] = field(default_factory=list)  # video folders, frame folders, .jsonl
    validation_sources: list[str] = field(default_factory=list)
    validation_clips: int = 4  # held-out clips (taken from sources when none are given)
    num_frames: int = 14
    height: int = 320
    width: int = 512
    stride: int = 4  # frame step between sampled frames (ignored when target_fps > 0)
    target_fps: float = 0.0  # sample frames at this rate instead of a fixed stride
    sampling: str = "random"  # random | uniform | every-window
    window_overlap: int = 0  # every-window: frames shared by consecutive windows
    resize: str = "crop"  # crop (keep aspect, centre crop) | squash
    flip: bool = False  # random horizontal flip (tracks flipped too)
    motion_bucket: str = "100"  # a number, or "auto" (from the clip's motion)
    fps_id: str = "data"  # "data" (fps of the sampled clip) or a number
    num_workers: int = 0
    cache_dir: str = ""  # use the latent cache here (`framerturbo cache` builds it)
    aug_variants: int = 4  # endpoint-augmentation draws per clip (cached exactly)
    cache_shard_size: int = 32  # clips per cache shard (the unit of reuse after a crash)
    # aspect/length buckets (data/buckets.py): each clip at the size nearest its aspect ratio
    buckets: bool = False
    bucket_pixels: int = 0  # area budget per frame; 0 = height × width
    bucket_multiple: int = 64  # sides are multiples of this (the model's size multiple)
    bucket_frames: list[int] = field(default_factory=list)  # clip lengths; [] = [num_frames]
