"""A still pair framed for the model: both images on one canvas of the model's aspect (pad,
crop or squash; ``media/video.Canvas``), the tracks moved with the picture, and the part of the
generated frames that shows the picture. The pipeline's ``resize=`` frames its pairs so, for
the Python API, ``interpolate`` and the app alike; ``stitch`` letterboxes its clips' frames
itself (``tasks/stitch.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.tracks import TrackSet, moved_to_canvas
from ..media.video import Canvas, canvas_for, resize_frames


class StretchWarning(UserWarning):
    """The pipeline stretched an endpoint of another aspect than ``height``×``width`` because
    its call left ``resize`` unset (the CLI and the app always set it: the user's choice)."""


HOW = {"pad": "letterboxed into", "crop": "centre-cropped to the aspect of",
       "squash": "stretched to"}


@dataclass
class FramedPair:
    start: np.ndarray  # (canvas h, canvas w, 3) uint8
    end: np.ndarray
    tracks: TrackSet | None
    canvas: Canvas


def framing_notes(start_hw: tuple[int, int], end_hw: tuple[int, int], height: int,
                  width: int, mode: str = "pad") -> list[str]:
    """What framing a pair of these sizes by ``mode`` does to it, in words for the user."""
    (h, w), (eh, ew) = start_hw, end_hw
    notes = []
    if (eh, ew) != (h, w):
        same_aspect = eh * w == ew * h
        notes.append(f"the end image is {ew}x{eh} and the start {w}x{h}: the end image is "
                     f"{'' if same_aspect else 'centre-cropped and '}resized to the start's size")
    if (h, w) != (height, width):
        how = "resized to" if h * width == w * height else HOW[mode]
        notes.append(f"the images are {w}x{h}: {how} the model's {width}x{height}"
                     + ("" if how == "resized to" else f" (--resize {mode})"))
    return notes


def frame_pair(start: np.ndarray, end: np.ndarray, tracks: TrackSet | None, height: int,
               width: int, mode: str = "pad") -> FramedPair:
    """(h, w, 3) uint8 endpoints and tracks in start pixels (or their ``image_size`` frame) →
    the pipeline's inputs. An end image of another size takes the start's (centre-cropped when
    its aspect differs): one canvas serves both. What it did, in words: :func:`framing_notes`."""
    h, w = start.shape[:2]
    if end.shape[:2] != (h, w):
        end = resize_frames(end[None], h, w, "crop")[0]
    canvas = canvas_for(h, w, height, width, mode)
    if tracks is not None:
        tracks = moved_to_canvas(tracks, (w, h), canvas.shift, canvas.canvas_hw[::-1])
    return FramedPair(canvas.place(start), canvas.place(end), tracks, canvas)


def frame_batch(starts: list[np.ndarray], ends: list[np.ndarray], tracks, height: int,
                width: int, mode: str) -> list[FramedPair]:
    """Each video's pair framed by ``mode``; ``tracks``: None, a TrackSet for every video or a
    list with one (or None) per video — in the images' pixels, as ``interpolate --tracks``
    reads them (an array in generation pixels has no picture to move with). ``squash`` leaves
    the tracks to the caller (the picture fills the frame: generation pixels stay put)."""
    per_video = tracks if isinstance(tracks, list) else [tracks] * len(starts)
    if len(per_video) != len(starts):
        raise ValueError(f"got tracks for {len(per_video)} videos but a batch of {len(starts)}")
    if mode == "squash":
        per_video = [None] * len(starts)
    if any(t is not None and not isinstance(t, TrackSet) for t in per_video):
        raise ValueError(f"with resize={mode!r} give tracks as TrackSets in the images' pixels "
                         "(framerturbo.core.tracks.load_tracks), not arrays in generation pixels")
    return [frame_pair(s, e, t, height, width, mode) for s, e, t in zip(starts, ends, per_video)]
