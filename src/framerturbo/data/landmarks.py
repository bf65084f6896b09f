"""Hand and arm landmarks per frame, from interchangeable sources, in source pixels.

Sources share one interface (:class:`LandmarkSource`): ``for_clip(path, frames, fps)`` returns a
:class:`ClipLandmarks` aligned with ``frames``.

* ``mediapipe`` — MediaPipe 0.10.21 (the ``[sign]`` extra; models inside the wheel, offline):
  hands (21 points each, with handedness) and pose (shoulders, elbows, wrists).
* ``ground-truth`` — the synthetic ``signer`` world's own joints, read from the ``.tracks.npz``
  that ``framerturbo synth --domain signer`` writes beside each clip (tests and the demo).

Hands are the signer's own: ``left`` is the signer's left hand. MediaPipe labels hands as if the
picture were mirrored, so its labels are swapped here; the synthetic figure faces the viewer, so
its arm on the image's left is its right hand. Missing points are NaN with confidence 0.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import file_sha256

HANDS = ("left", "right")
WRIST, PALM = 0, 9  # MediaPipe hand indices (9 = middle-finger knuckle, the palm's centre)
TIPS = (4, 8, 12, 16, 20)
POSE = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
        "right_wrist")
_MP_POSE = (11, 12, 13, 14, 15, 16)  # MediaPipe pose indices of POSE
SOURCES = ("mediapipe", "ground-truth")
SIGNER_TRUTH = ("ground-truth", "gt", "synthetic")  # names of the synthetic ground truth
FORMAT_VERSION = 1
INSTALL_HINT = "MediaPipe is not installed — pip install 'framerturbo[sign]'"


class MissingExtraError(ValueError):
    """A sign feature was used without the ``[sign]`` extra (one line: what to install)."""


@dataclass
class ClipLandmarks:
    hands: np.ndarray  # (F, 2, 21, 2) x, y pixels; NaN = not found; [:, 0] left, [:, 1] right
    hand_conf: np.ndarray  # (F, 2) 0 = hand not found
    pose: np.ndarray  # (F, 6, 2) POSE order; NaN = not found
    pose_conf: np.ndarray  # (F, 6)
    image_size: tuple[int, int]  # (W, H) of the frames the points refer to
    fps: float
    source: str

    def __len__(self) -> int:
        return len(self.hands)

    def take(self, frames) -> ClipLandmarks:
        """The landmarks of ``frames`` (a slice, an index list or a mask) only."""
        return dataclasses.replace(self, hands=self.hands[frames],
                                   hand_conf=self.hand_conf[frames], pose=self.pose[frames],
                                   pose_conf=self.pose_conf[frames])

    def slice(self, start: int, stop: int) -> ClipLandmarks:
        return self.take(slice(start, stop))

    def wrist(self, hand: int) -> tuple[np.ndarray, str]:
        """(F, 2) wrist of ``hand`` per frame: the hand's own where found, else the pose
        wrist; and per frame which one ('hand', 'pose' or '')."""
        own = self.hands[:, hand, WRIST]
        pose = self.pose[:, 4 + hand]
        use_own = (self.hand_conf[:, hand] > 0) & np.isfinite(own).all(axis=1)
        use_pose = ~use_own & (self.pose_conf[:, 4 + hand] > 0) & np.isfinite(pose).all(axis=1)
        out = np.where(use_own[:, None], own, np.where(use_pose[:, None], pose, np.nan))
        kind = np.where(use_own, "hand", np.where(use_pose, "pose", ""))
        return out, kind

    def to_json(self) -> dict:
        def nan_list(a):
            return np.where(np.isfinite(a), np.round(a, 3), np.nan).tolist()

        doc = {"version": FORMAT_VERSION, "source": self.source, "fps": self.fps,
               "image_size": list(self.image_size), "hand_names": list(HANDS),
               "pose_names": list(POSE), "hands": nan_list(self.hands),
               "hand_conf": nan_list(self.hand_conf), "pose": nan_list(self.pose),
               "pose_conf": nan_list(self.pose_conf)}
        return json.loads(json.dumps(doc).replace("NaN", "null"))

    @classmethod
    def from_json(cls, doc: dict) -> ClipLandmarks:
        def arr(key, shape):
            a = np.array(doc[key], dtype=object)
            a = np.where(a == None, np.nan, a).astype(np.float64)  # noqa: E711
            return a.reshape((-1, *shape))

        return cls(arr("hands", (2, 21, 2)), np.nan_to_num(arr("hand_conf", (2,))),
                   arr("pose", (6, 2)), np.nan_to_num(arr("pose_conf", (6,))),
                   tuple(doc["image_size"]), float(doc["fps"]), doc["source"])


def empty(num_frames: int, image_size: tuple[int, int], fps: float, source: str) -> ClipLandmarks:
    return ClipLandmarks(np.full((num_frames, 2, 21, 2), np.nan), np.zeros((num_frames, 2)),
                         np.full((num_frames, 6, 2), np.nan), np.zeros((num_frames, 6)),
                         image_size, fps, source)


class LandmarkSource:
    name = "source"

    def for_clip(self, path: str | Path | None, frames: np.ndarray, fps: float) -> ClipLandmarks:
        raise NotImplementedError


# ------------------------------------------------------------------------------- MediaPipe
@contextmanager
def native_stderr_quiet():
    """MediaPipe's C++ side writes absl/TFLite lines per graph straight to file descriptor 2
    (no setting silences them before absl's log starts): point fd 2 at /dev/null meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def require_mediapipe():
    try:
        import mediapipe as mp
    except ImportError:
        raise MissingExtraError(INSTALL_HINT) from None
    return mp


class MediaPipeSource(LandmarkSource):
    """MediaPipe hands + pose in video mode (each frame tracked from the previous one)."""

    name = "mediapipe"

    def __init__(self, hand_complexity: int = 1, min_confidence: float = 0.5):
        self.mp = require_mediapipe()
        self.hand_complexity = hand_complexity
        self.min_confidence = min_confidence

    def extract(self, frames: np.ndarray, fps: float = 25.0,
                video: bool = True) -> ClipLandmarks:
        """Landmarks of (F, H, W, 3) uint8 RGB frames; ``video=False`` treats each as a photo."""
        mp = self.mp
        h, w = frames.shape[1:3]
        out = empty(len(frames), (w, h), fps, self.name)
        with native_stderr_quiet(), \
                mp.solutions.hands.Hands(static_image_mode=not video, max_num_hands=2,
                                         model_complexity=self.hand_complexity,
                                         min_detection_confidence=self.min_confidence,
                                         min_tracking_confidence=self.min_confidence) as hands, \
                mp.solutions.pose.Pose(static_image_mode=not video, model_complexity=1,
                                       min_detection_confidence=self.min_confidence,
                                       min_tracking_confidence=self.min_confidence) as pose:
            # the two graphs are independent and release the GIL: one thread each keeps both
            # cores busy (hands + pose at 512×512 with hands in view: 20.6 → 31.1 frames/s on
            # 2 cores, docs/sign-language.md); each still sees every frame in order
            with ThreadPoolExecutor(2, thread_name_prefix="mediapipe") as pool:
                for f, frame in enumerate(frames):
                    frame = np.ascontiguousarray(frame)
                    found, body = pool.submit(hands.process, frame), pool.submit(pose.process,
                                                                                 frame)
                    self._store(out, f, found.result(), body.result().pose_landmarks, w, h)
        return out

    @staticmethod
    def _store(out: ClipLandmarks, f: int, found, body, w: int, h: int) -> None:
        """One frame's MediaPipe results into ``out`` (hands by handedness, then pose)."""
        scale = np.array([w, h], np.float64)
        marks = found.multi_hand_landmarks or []
        labels = found.multi_handedness or []
        order = sorted(range(len(marks)), key=lambda i: -labels[i].classification[0].score)
        for i in order:
            c = labels[i].classification[0]
            slot = 1 if c.label == "Left" else 0  # mirrored labels → the signer's own
            if out.hand_conf[f, slot] > 0:
                slot = 1 - slot
                if out.hand_conf[f, slot] > 0:
                    continue
            pts = np.array([[p.x, p.y] for p in marks[i].landmark]) * scale
            out.hands[f, slot], out.hand_conf[f, slot] = pts, c.score
        if body is not None:
            for j, k in enumerate(_MP_POSE):
                p = body.landmark[k]
                out.pose[f, j] = (p.x * w, p.y * h)
                out.pose_conf[f, j] = p.visibility

    def for_clip(self, path, frames, fps):
        return self.extract(frames, fps)


# ----------------------------------------------------------------------- synthetic ground truth
# signer tracks (data/synthetic.py): [head, then per arm (image-left arm first):
# elbow, wrist, palm, first fingertip, last fingertip]
_SIGNER_POINTS = 11
_ARM_POINTS = {"elbow": 0, "wrist": 1, "palm": 2, "tip_a": 3, "tip_b": 4}
_TIP_SLOTS = {"tip_a": 8, "tip_b": 20}  # the outer fingers: index and little finger


def signer_joint_path(tracks: np.ndarray, hand: int, joint: str) -> np.ndarray:
    """The renderer's true (F, 2) path of one hand's joint ("wrist", "elbow" or "tip<index>",
    the names :func:`~framerturbo.data.handpaths.hand_tracks` gives), in view or not."""
    tips = {f"tip{slot}": key for key, slot in _TIP_SLOTS.items()}
    key = tips.get(joint, joint)
    if key not in ("elbow", "wrist", *_TIP_SLOTS):
        raise ValueError(f"the synthetic signer has no joint {joint!r}")
    return np.asarray(tracks, np.float64)[:, 1 + 5 * (1 - hand) + _ARM_POINTS[key]]


def from_signer_tracks(tracks: np.ndarray, image_size: tuple[int, int], fps: float,
                       source: str = "ground-truth") -> ClipLandmarks:
    """The signer world's joints (F, 11, 2) as landmarks (a point outside the frame counts as
    not found)."""
    tracks = np.asarray(tracks, np.float64)
    if tracks.ndim != 3 or tracks.shape[1] != _SIGNER_POINTS:
        raise ValueError(f"signer tracks must be (F, {_SIGNER_POINTS}, 2), got {tracks.shape}")
    w, h = image_size
    out = empty(len(tracks), image_size, fps, source)
    for arm in range(2):  # arm 0 is on the image's left: the figure's right hand
        hand = 1 - arm
        base = 1 + 5 * arm
        pts = {k: tracks[:, base + i] for k, i in _ARM_POINTS.items()}
        inside = {k: (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
                  for k, p in pts.items()}
        seen = inside["palm"]
        for key, slot in (("wrist", WRIST), ("palm", PALM), *_TIP_SLOTS.items()):
            out.hands[:, hand, slot] = np.where(seen[:, None], pts[key], np.nan)
        out.hand_conf[:, hand] = seen.astype(np.float64)
        for key, j in (("elbow", 2 + hand), ("wrist", 4 + hand)):
            out.pose[:, j] = np.where(inside[key][:, None], pts[key], np.nan)
            out.pose_conf[:, j] = inside[key].astype(np.float64)
    return out


class GroundTruthSource(LandmarkSource):
    """The synthetic signer's joints from ``clip.mp4.tracks.npz``, resampled to the frames'
    times and scaled to their size."""

    name = "ground-truth"

    def for_clip(self, path, frames, fps):
        if path is None:
            raise ValueError("the ground-truth landmark source needs the clip's file (its "
                             ".tracks.npz)")
        path = Path(path)
        points, times = read_signer_tracks(path.with_name(path.name + ".tracks.npz"), path)
        from ..media.video import probe

        info = probe(path)
        want = np.arange(len(frames)) / fps
        grid = np.stack([np.stack([np.interp(want, times, points[:, k, d]) for d in range(2)], 1)
                         for k in range(points.shape[1])], 1)
        h, w = frames.shape[1:3]
        grid *= np.array([w / info.width, h / info.height])
        return from_signer_tracks(grid, (w, h), fps)


def read_signer_tracks(npz: Path, clip: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(T, 11, 2) joints and (T,) times of a synthetic signer clip's ``.tracks.npz``."""
    npz = Path(npz)
    if not npz.is_file():
        raise ValueError(f"{clip or npz}: no {npz.name} beside it — ground-truth landmarks "
                         "exist only for `framerturbo synth --domain signer` clips; use "
                         "--landmarks mediapipe")
    with np.load(npz) as data:
        points, times = data["points"].astype(np.float64), data["times"].astype(np.float64)
    if points.ndim != 3 or points.shape[1] != _SIGNER_POINTS:
        raise ValueError(f"{npz}: {points.shape[1]} tracks, not the signer world's "
                         f"{_SIGNER_POINTS} — use --landmarks mediapipe")
    return points, times


def is_signer_clip(npz: Path | None) -> bool:
    """Whether ``npz`` holds a synthetic signer's joints (so ground truth exists)."""
    try:
        return npz is not None and bool(read_signer_tracks(npz)[0].size)
    except (ValueError, OSError, KeyError):
        return False


def signer_landmarks_at(npz: Path, times, transform, image_size: tuple[int, int],
                        fps: float) -> ClipLandmarks:
    """Ground truth of the frames nearest ``times`` (as the video reader picks them), mapped
    by ``transform`` = (scale_x, scale_y, offset_x, offset_y) into frames of ``image_size``
    (W, H) — how evaluation clips are resized and cropped."""
    points, track_times = read_signer_tracks(npz)
    idx = np.abs(track_times[None, :] - np.asarray(times, float)[:, None]).argmin(axis=1)
    sx, sy, ox, oy = transform
    return from_signer_tracks(points[idx] * np.array([sx, sy]) - np.array([ox, oy]),
                              image_size, fps)


def get_source(name: str) -> LandmarkSource:
    if name == "mediapipe":
        return MediaPipeSource()
    if name in SIGNER_TRUTH:
        return GroundTruthSource()
    raise ValueError(f"unknown landmark source {name!r} — use {', '.join(SOURCES)}")


# ----------------------------------------------------------------------------------- caching
def landmarks_path(video: str | Path) -> Path:
    video = Path(video)
    return video.with_name(video.name + ".landmarks.json")


def read_cached(video: str | Path, source: str) -> ClipLandmarks | None:
    """The landmarks beside ``video`` when they were made by ``source`` from these very bytes."""
    path = landmarks_path(video)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (doc.get("version") != FORMAT_VERSION or doc.get("source") != source
            or doc.get("content_sha256") != file_sha256(video)):
        return None
    return ClipLandmarks.from_json(doc)


def landmarks_for_video(video: str | Path, source: LandmarkSource,
                        refresh: bool = False) -> tuple[ClipLandmarks, bool]:
    """Landmarks of every frame of ``video`` at its own rate, written beside it
    (``clip.mp4.landmarks.json``, with the file's SHA-256); returns (landmarks, from_cache)."""
    from ..core.atomic import atomic_file
    from ..media.video import probe, read_frames_at

    if not refresh and (cached := read_cached(video, source.name)) is not None:
        return cached, True
    info = probe(video)
    frames = read_frames_at(video, [k / info.fps for k in range(info.num_frames)], info.fps)
    marks = source.for_clip(video, frames, info.fps)
    doc = marks.to_json() | {"content_sha256": file_sha256(video)}
    with atomic_file(landmarks_path(video)) as tmp:
        tmp.write_text(json.dumps(doc))
    return marks, False
