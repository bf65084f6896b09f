"""Aspect/length buckets: clips of mixed sizes, aspect ratios and lengths trained in their own
shape instead of one centre crop.

With ``data.buckets`` on, every clip gets a shape (H, W, F): (H, W) is the candidate size —
both sides multiples of ``bucket_multiple``, H·W within ``bucket_pixels`` — whose aspect ratio
is nearest the source's (in log ratio, so 2:1 and 1:2 are equally far from 1:1), F the longest
of ``bucket_frames`` that fits in the clip at the configured spacing. Clips of one shape form a
bucket; every batch comes from one bucket (:class:`~framerturbo.data.batching.AddressSampler`).
A portrait sign lexicon clip trains at 320×512, a landscape one at 512×320, a square one at
384×384 — under the budget of 512×320's area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from .clips import Span, frame_step, num_windows

Shape = tuple[int, int, int]  # (height, width, frames)


@dataclass(frozen=True)
class Bucketing:
    pixels: int  # area budget per frame (H·W <= pixels)
    multiple: int  # both sides are multiples of this (the model's size multiple)
    frames: tuple[int, ...]  # allowed clip lengths, longest first

    @classmethod
    def from_settings(cls, s) -> Bucketing | None:
        """The bucketing of a ``DataConfig``; None when ``buckets`` is off."""
        if not s.buckets:
            return None
        return cls(s.bucket_pixels or s.height * s.width, s.bucket_multiple,
                   tuple(sorted(set(s.bucket_frames or [s.num_frames]), reverse=True)))

    @cached_property
    def sizes(self) -> list[tuple[int, int]]:
        """Every (H, W) that uses the budget: for each height, the widest width that fits."""
        m, out = self.multiple, []
        for h in range(m, self.pixels // m + 1, m):
            w = self.pixels // h // m * m
            if w >= m:
                out.append((h, w))
        if not out:
            raise ValueError(f"data.bucket_pixels = {self.pixels} is smaller than one "
                             f"{m}×{m} block — raise it or lower data.bucket_multiple")
        return out

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """The (H, W) whose aspect ratio is nearest the source's; ties go to the larger area."""
        target = math.log(width / height)
        return min(self.sizes, key=lambda s: (round(abs(math.log(s[1] / s[0]) - target), 9),
                                              -s[0] * s[1], -s[0]))

    def frames_for(self, span: Span, stride: int, target_fps: float, overlap: int = 0) -> int:
        """The longest allowed length whose frames fit in ``span`` at the configured spacing
        (``stride`` source frames or 1/``target_fps`` s); 0 when none does."""
        for f in self.frames:
            step = frame_step(span, f, stride, target_fps, "random")
            if overlap < f - 1 and num_windows(span, f, step, overlap):
                return f
        return 0

    def describe(self) -> str:
        return (f"buckets: ≤{self.pixels} px per frame, sides multiple of {self.multiple}, "
                f"lengths {', '.join(map(str, self.frames))}")


def shape_name(shape: Shape) -> str:
    """``WxHxF`` — how logs, reports and the cache name a bucket."""
    h, w, f = shape
    return f"{w}x{h}x{f}"


def bucket_counts(shapes) -> dict[str, int]:
    """Clips per bucket, largest bucket first (ties by name)."""
    counts: dict[Shape, int] = {}
    for s in shapes:
        counts[tuple(s)] = counts.get(tuple(s), 0) + 1
    return {shape_name(s): n for s, n in sorted(counts.items(),
                                                 key=lambda kv: (-kv[1], shape_name(kv[0])))}
