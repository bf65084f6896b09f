"""Joining clips with generated transitions — how sign-language word clips become sentences.

Between consecutive clips, N new frames are generated from the last (usable) frame of one clip to
the first (usable) frame of the next; the endpoints are not repeated, so the output has
sum(clip frames) + (clips − 1)·N frames. Optionally, static frames at the head and tail of each
clip (the signer's hold before/after a sign) are trimmed first. Clips of other sizes or frame
rates are conformed to the first clip, with a warning. Transitions are conditioned on the clips'
real frame rate and generated at the model's size: the endpoints are letterboxed into it (their
aspect kept) and the padding is cut off again, so nothing is squashed. A JSON beside the video
says where every clip and transition sits.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data.dataset import motion_score
from ..media.video import probe, read_frames_at, resize_frames, unfit_frames

logger = logging.getLogger(__name__)


@dataclass
class Segment:
    kind: str  # "clip" or "transition"
    source: str  # clip path, or "generated"
    start_frame: int  # first frame index in the output video
    end_frame: int  # last frame index (inclusive)
    trimmed_head: int = 0
    trimmed_tail: int = 0


def read_clip(path: Path, fps: float | None = None) -> tuple[np.ndarray, float]:
    """All frames of a (short) clip, resampled to ``fps`` when given. Returns (frames, fps)."""
    info = probe(path)
    rate = fps or info.fps
    n = int(round(info.num_frames * rate / info.fps))
    frames = read_frames_at(path, [k / rate for k in range(max(n, 1))], info.fps)
    return frames, rate


def trim_static(frames: np.ndarray, threshold: float) -> tuple[int, int]:
    """How many frames to drop at the head and tail: leading/trailing runs whose frame-to-frame
    change (mean grey-level, as in check-data) stays below ``threshold``. Keeps ≥ 1 frame."""
    change = [motion_score(frames[i:i + 2]) for i in range(len(frames) - 1)]
    head = 0
    while head < len(change) and change[head] < threshold:
        head += 1
    tail = 0
    while tail < len(change) - head and change[-1 - tail] < threshold:
        tail += 1
    if head + tail >= len(frames):
        return 0, 0
    return head, tail


def plan_frame_count(clip_lengths: list[int], transition_frames: int) -> int:
    return sum(clip_lengths) + (len(clip_lengths) - 1) * transition_frames


def stitch(pipe, clips: list[str | Path], out: str | Path, *, transition_frames: int = 12,
           trim: bool = False, trim_threshold: float = 0.5, height: int = 320, width: int = 512,
           sample_kwargs: dict | None = None) -> list[Segment]:
    """Write the joined video to ``out`` (+ ``out``.json); returns the segments."""
    from ..core.atomic import atomic_file
    from ..media.files import write_frames

    if len(clips) < 2:
        raise ValueError("stitch needs at least two clips")
    if transition_frames < 1:
        raise ValueError("--transition-frames must be at least 1")
    first, fps = read_clip(Path(clips[0]))
    size = first.shape[1:3]
    videos = [first]
    for path in clips[1:]:
        info = probe(path)
        if abs(info.fps - fps) > 1e-3:
            warnings.warn(f"{path}: {info.fps:g} fps resampled to {fps:g}", stacklevel=2)
        frames, _ = read_clip(Path(path), fps)
        if frames.shape[1:3] != size:
            warnings.warn(f"{path}: {frames.shape[2]}x{frames.shape[1]} resized to "
                          f"{size[1]}x{size[0]}", stacklevel=2)
            frames = resize_frames(frames, size[0], size[1], "crop")
        videos.append(frames)

    sample_kwargs = dict(sample_kwargs or {})
    if sample_kwargs.get("fps") is None:  # the transition plays at the clips' rate
        sample_kwargs["fps"] = fps
    trims = [trim_static(v, trim_threshold) if trim else (0, 0) for v in videos]
    videos = [v[h:len(v) - t] for v, (h, t) in zip(videos, trims)]

    pieces, segments, cursor = [], [], 0
    for i, (video, (h, t)) in enumerate(zip(videos, trims)):
        segments.append(Segment("clip", str(clips[i]), cursor, cursor + len(video) - 1, h, t))
        pieces.append(video)
        cursor += len(video)
        if i + 1 < len(videos):
            middle = generate_transition(pipe, video[-1], videos[i + 1][0], transition_frames,
                                         height, width, sample_kwargs)
            segments.append(Segment("transition", "generated", cursor,
                                    cursor + transition_frames - 1))
            pieces.append(middle)
            cursor += transition_frames
    result = np.concatenate(pieces)
    out = Path(out)
    write_frames(result, out, fps=fps)
    meta = {"fps": fps, "frames": int(len(result)), "transition_frames": transition_frames,
            "generated_at": {"height": height, "width": width,
                             "fps_conditioning": float(sample_kwargs["fps"])},
            "segments": [asdict(s) for s in segments]}
    with atomic_file(out.with_name(out.name + ".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return segments


def generate_transition(pipe, last: np.ndarray, first: np.ndarray, n: int, height: int,
                        width: int, sample_kwargs: dict) -> np.ndarray:
    """N frames strictly between ``last`` and ``first`` (uint8, the clips' size), generated at
    ``height`` × ``width`` from letterboxed endpoints."""
    import torch

    from ..media.files import to_uint8

    kwargs = dict(sample_kwargs)
    seed = kwargs.pop("seed", 0)
    ends = resize_frames(np.stack([last, first]), height, width, "pad")
    frames = pipe(ends[0], ends[1], num_frames=n + 2, height=height, width=width,
                  output_type="np", generator=torch.Generator().manual_seed(seed),
                  **kwargs).frames[0]
    return unfit_frames(to_uint8(frames[1:-1]), *last.shape[:2], "pad")
