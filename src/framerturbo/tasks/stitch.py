"""Joining clips with generated transitions — how sign-language word clips become sentences.

Between consecutive clips, N new frames are generated from the last (usable) frame of one clip to
the first (usable) frame of the next; the endpoints are not repeated, so the output has
sum(clip frames) + (clips − 1)·N frames. Optionally, static frames at the head and tail of each
clip (the signer's hold before/after a sign) are trimmed first. Clips of other sizes or frame
rates are conformed to the first clip, with a warning. Transitions are conditioned on the clips'
real frame rate and generated at the model's size: the endpoints are letterboxed into it (their
aspect kept) and the padding is cut off again, so nothing is squashed. A JSON beside the video
says where every clip and transition sits. For sign language, trimming and transitions can follow
the hands (``data/handpaths.py``, docs/sign-language.md).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core.jsonout import strict_json
from ..data.dataset import motion_score
from ..media.video import probe, read_frames_at, resize_frames, unfit_frames
from ..models.record import RELEASED, control_scale_choice, keep_static_choice
from .stitch_report import Join, write_stitch_report

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


def stitch(pipe, clips: list[str | Path], out: str | Path, *,
           transition_frames: int | str = 12, trim: bool | str = False,
           trim_threshold: float = 0.5, control: str = "none", landmarks=None,
           auto_range: tuple[int, int] = (4, 24), height: int = 320, width: int = 512,
           sample_kwargs: dict | None = None, report: bool = False,
           fit: str = "crop") -> list[Segment]:
    """Write the joined video to ``out`` (+ ``out``.json); returns the segments.

    ``trim``: False/"none", True/"static" (grey-level change) or "hands" (rest frames by the
    hands); ``control="hands"`` steers each transition with hand tracks; ``transition_frames``
    "auto" sizes each join by the hands' travel; ``report`` writes the transitions' hand
    metrics (``stitch_report.py``). The hand options need a ``landmarks`` source
    (``data/landmarks.py``). ``fit``: how clips of another aspect than the first take its size
    (``crop`` or ``pad``)."""
    from ..core.atomic import atomic_file
    from ..media.files import write_frames

    trim = {True: "static", False: "none"}.get(trim, trim)
    if trim not in ("none", "static", "hands"):
        raise ValueError(f"unknown trim mode {trim!r} — use none, static or hands")
    if control not in ("none", "hands"):
        raise ValueError(f"unknown control {control!r} — use none or hands")
    if fit not in ("crop", "pad"):
        raise ValueError(f"unknown fit {fit!r} — use crop or pad")
    auto = transition_frames == "auto"
    if len(clips) < 2:
        raise ValueError("stitch needs at least two clips")
    if not auto and (not isinstance(transition_frames, int) or transition_frames < 1):
        raise ValueError("--transition-frames must be at least 1 (or auto)")
    needs_hands = trim == "hands" or control == "hands" or auto or report
    if needs_hands and landmarks is None:
        raise ValueError("hand trimming, hand control, --transition-frames auto and the report "
                         "need a landmark source")
    first, fps = read_clip(Path(clips[0]))
    size = first.shape[1:3]
    videos = [first]
    for path in clips[1:]:
        info = probe(path)
        if abs(info.fps - fps) > 1e-3:
            warnings.warn(f"{path}: {info.fps:g} fps resampled to {fps:g}", stacklevel=2)
        frames, _ = read_clip(Path(path), fps)
        if frames.shape[1:3] != size:
            same_aspect = frames.shape[1] * size[1] == frames.shape[2] * size[0]
            how = "resized" if same_aspect else {"crop": "centre-cropped and resized",
                                                 "pad": "letterboxed"}[fit]
            warnings.warn(f"{path}: {frames.shape[2]}x{frames.shape[1]} {how} to "
                          f"{size[1]}x{size[0]} (--fit {fit})", stacklevel=2)
            frames = resize_frames(frames, size[0], size[1], fit)
        videos.append(frames)

    sample_kwargs = dict(sample_kwargs or {})
    if sample_kwargs.get("fps") is None:  # the transition plays at the clips' rate
        sample_kwargs["fps"] = fps
    marks = [landmarks.for_clip(p, v, fps) for p, v in zip(clips, videos)] if needs_hands \
        else [None] * len(videos)
    if trim == "hands":
        from ..data.handpaths import trim_hands

        trims = [trim_hands(m) for m in marks]
    elif trim == "static":
        trims = [trim_static(v, trim_threshold) for v in videos]
    else:
        trims = [(0, 0)] * len(videos)
    videos = [v[h:len(v) - t] for v, (h, t) in zip(videos, trims)]
    marks = [m.slice(h, len(m) - t) if m is not None else None for m, (h, t) in zip(marks, trims)]
    speed = None
    if auto:
        from ..data.handpaths import signing_speed

        speed = signing_speed([m for m in marks if m is not None])

    steerable = getattr(pipe, "controlnet", None) is not None
    pieces, segments, joins, made, cursor = [], [], [], [], 0
    for i, (video, (h, t)) in enumerate(zip(videos, trims)):
        segments.append(Segment("clip", str(clips[i]), cursor, cursor + len(video) - 1, h, t))
        pieces.append(video)
        cursor += len(video)
        if i + 1 < len(videos):
            n, join = transition_frames, {}
            if auto:
                from ..data.handpaths import auto_transition_frames

                n, join["length"] = auto_transition_frames(marks[i], marks[i + 1], speed,
                                                           *auto_range)
            tracks, notes = None, []
            if control == "hands" or (report and steerable):  # the report shows both rows
                tracks, names, notes = _hand_control(
                    marks[i], marks[i + 1], n, video.shape[1:3], height, width)
            if control == "hands":
                join["hand_tracks"] = names
                for note in notes:
                    warnings.warn(f"transition {i + 1}: {note}", stacklevel=2)
            steered = tracks if control == "hands" else None
            middle = generate_transition(pipe, video[-1], videos[i + 1][0], n,
                                         height, width, sample_kwargs, tracks=steered)
            segments.append(Segment("transition", "generated", cursor, cursor + n - 1))
            joins.append({"frames": n, **join})
            if report:
                other = _other_framer_row(pipe, video[-1], videos[i + 1][0], n, height, width,
                                          sample_kwargs, middle, steered, tracks, steerable)
                made.append(Join(video, videos[i + 1], marks[i], marks[i + 1], middle,
                                 (str(clips[i]), str(clips[i + 1])), other))
            pieces.append(middle)
            cursor += n
    result = np.concatenate(pieces)
    out = Path(out)
    write_frames(result, out, fps=fps)
    record = getattr(pipe, "record", RELEASED)
    meta = {"fps": fps, "frames": int(len(result)),
            "transition_frames": transition_frames if not auto else [j["frames"] for j in joins],
            "trim": trim, "control": control,
            "landmarks": getattr(landmarks, "name", None) if needs_hands else None,
            "generated_at": {"height": height, "width": width,
                             "fps_conditioning": float(sample_kwargs["fps"]),
                             "keep_static": keep_static_choice(
                                 record, sample_kwargs.get("keep_static"))}
            | ({"control_scale": control_scale_choice(record, sample_kwargs.get("control_scale"))}
               if control == "hands" else {}),
            "segments": [asdict(s) for s in segments], "transitions": joins}
    if report:
        files = write_stitch_report(made, control, landmarks.name, out, fps)
        meta["report"] = [str(f) for f in files]
    with atomic_file(out.with_name(out.name + ".json")) as tmp:
        tmp.write_text(strict_json(meta))
    return segments


def _hand_control(a, b, n: int, clip_hw, height: int, width: int):
    """(F, K, 2) hand tracks in generation pixels (the letterboxed endpoints' frame), or None
    when no hand could be matched; the track names; notes on hands left out."""
    from ..data.handpaths import hand_tracks
    from ..media.video import crop_transform

    plan = hand_tracks(a, b, n)
    if not plan.tracks.tracks:
        return None, [], plan.notes + ["no hand tracks: the transition runs without control"]
    points = np.stack([t.points for t in plan.tracks.tracks], axis=1)  # (n + 2, K, 2)
    sx, sy, ox, oy = crop_transform(*clip_hw, height, width, "pad")
    points = points * np.array([sx, sy]) - np.array([ox, oy])
    return points, plan.names, plan.notes


def _other_framer_row(pipe, last, first, n: int, height: int, width: int, sample_kwargs: dict,
                      middle: np.ndarray, steered, tracks, steerable: bool):
    """For the report only: the transition the video does not hold — without control when the
    stitch steered it, with hand control when it did not (the same frames when no hand was
    matched at both ends; None without a ControlNet)."""
    if steered is not None:
        return generate_transition(pipe, last, first, n, height, width, sample_kwargs)
    if not steerable:
        return None
    if tracks is None:
        return middle
    return generate_transition(pipe, last, first, n, height, width, sample_kwargs, tracks=tracks)


def generate_transition(pipe, last: np.ndarray, first: np.ndarray, n: int, height: int,
                        width: int, sample_kwargs: dict, tracks=None) -> np.ndarray:
    """N frames strictly between ``last`` and ``first`` (uint8, the clips' size), generated at
    ``height`` × ``width`` from letterboxed endpoints; ``tracks`` (n + 2, K, 2) in generation
    pixels steer it through the ControlNet."""
    import torch

    from ..media.files import to_uint8

    kwargs = dict(sample_kwargs)
    seed = kwargs.pop("seed", 0)
    ends = resize_frames(np.stack([last, first]), height, width, "pad")
    frames = pipe(ends[0], ends[1], num_frames=n + 2, height=height, width=width,
                  output_type="np", generator=torch.Generator().manual_seed(seed),
                  **({"tracks": tracks} if tracks is not None else {}), **kwargs).frames[0]
    return unfit_frames(to_uint8(frames[1:-1]), *last.shape[:2], "pad")
