"""The training dataset: fixed-size clips (+ optional trajectory heat-maps) from any source.

Items are addressed as ``(index, epoch)``: every random choice (clip start, flip, which tracks,
which augmentation draw) comes from a generator seeded by (seed, epoch, index), so a resumed run
sees exactly the samples an unbroken run would, with no RNG state to save. A source that cannot be
read, or is too short, is skipped and counted — at start-up when probing, or later by falling
through to the next sources and then to new random windows — never fatal while any clip loads.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.settings import DataConfig
from ..core.tracks import rasterize_heatmaps
from ..media.video import (
    TooShortError,
    UnreadableError,
    crop_transform,
    probe,
    read_frames_at,
    resize_frames,
)
from .buckets import Bucketing, Shape
from .clips import Span, clip_times, effective_fps, frame_step, num_windows, source_span
from .sources import ClipSource

logger = logging.getLogger(__name__)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def motion_score(frames: np.ndarray) -> float:
    """Mean absolute grey-level change between consecutive frames at 64 px (0–255 scale)."""
    import cv2

    grey = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (64, 64),
                                interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32)
    return float(np.abs(np.diff(grey, axis=0)).mean()) if len(grey) > 1 else 0.0


def motion_bucket_from_score(score: float) -> float:
    """A heuristic map from :func:`motion_score` to SVD's motion bucket id (1–255)."""
    return float(np.clip(round(score * 12.0), 1, 255))


@dataclass
class ClipSettings(DataConfig):
    """The data settings (config's ``[data]``, one type) plus what a dataset also needs: track
    drawing (``[control]``) and the seed."""

    use_tracks: bool = False
    min_tracks: int = 1
    max_tracks: int = 10
    heatmap_sigma: float = 0.0  # 0: not resolved yet (train.setup.resolve_heatmap_size)
    heatmap_radius: float = 0.0
    seed: int = 0

    @classmethod
    def from_config(cls, cfg) -> ClipSettings:
        c = cfg.control
        return cls(**dataclasses.asdict(cfg.data), use_tracks=c.use, min_tracks=c.min_tracks,
                   max_tracks=c.max_tracks, heatmap_sigma=c.heatmap_sigma,
                   heatmap_radius=c.heatmap_radius, seed=cfg.train.seed)


@dataclass
class ClipRef:
    """One addressable training item: a source and (for every-window) its window."""

    source: ClipSource
    span: Span
    step: float
    window: int
    size: tuple[int, int]  # source (W, H)
    shape: Shape = (0, 0, 0)  # (H, W, F) this clip trains at: its bucket (or the fixed size)


@dataclass
class SkipReport:
    reasons: dict[str, str] = field(default_factory=dict)  # source path -> reason

    def add(self, path, reason: str) -> None:
        self.reasons[str(path)] = reason
        logger.warning("skipping %s: %s", path, reason)


class ClipDataset(Dataset):
    """Decoded clips: ``frames`` (F, 3, H, W) uint8, ``fps``, ``motion_bucket``, ``aug_index``,
    ``key`` (cache key) and, with tracks, ``heatmaps`` (F, 3, H, W) uint8."""

    def __init__(self, sources: list[ClipSource], settings: ClipSettings):
        self.settings = settings
        self.skipped = SkipReport()
        self.items: list[ClipRef] = []
        self.bucketing = Bucketing.from_settings(settings)
        for src in sources:
            try:
                info = probe(src.path)
            except UnreadableError as e:
                self.skipped.add(src.path, f"unreadable: {e}")
                continue
            span = source_span(src, info)
            shape = self._shape(span, info)
            step = frame_step(span, shape[2], settings.stride, settings.target_fps,
                              settings.sampling)
            n = num_windows(span, shape[2], step, settings.window_overlap) if shape[2] else 0
            if n == 0:
                wanted = (min(self.bucketing.frames) if self.bucketing else settings.num_frames)
                self.skipped.add(src.path, f"too short: {info.num_frames} frames for "
                                 f"{wanted} at this spacing")
                continue
            for w in range(n if settings.sampling == "every-window" else 1):
                self.items.append(ClipRef(src, span, step, w, (info.width, info.height), shape))

    def _shape(self, span, info) -> Shape:
        s, b = self.settings, self.bucketing
        if b is None:
            return (s.height, s.width, s.num_frames)
        return (*b.size_for(info.width, info.height),
                b.frames_for(span, s.stride, s.target_fps, s.window_overlap))

    def bucket_keys(self) -> list[Shape] | None:
        """Each item's (H, W, F) when buckets are on (the sampler batches within them)."""
        return [ref.shape for ref in self.items] if self.bucketing else None

    def fallback_order(self, index: int) -> list[int]:
        """The items tried for ``index``, in order, when it cannot be read: itself, then the
        next ones — of the same shape, so a batch never mixes buckets."""
        if not self.items:
            return []
        same = [i for i, ref in enumerate(self.items)
                if self.bucketing is None or ref.shape == self.items[index].shape]
        start = same.index(index)
        return same[start:] + same[:start]

    def __len__(self) -> int:
        return len(self.items)

    #: Extra attempts, after every item has been tried once, with freshly drawn clip starts
    #: (only ``random`` sampling draws differently; the others would repeat the same failure).
    REDRAWS = 20

    def __getitem__(self, address) -> dict:
        """Item ``index``; when it cannot be read, the next items in turn (each once), then new
        random windows — so a bad clip is skipped, never fatal, while any clip loads."""
        index, epoch = address if isinstance(address, tuple) else (address, 0)
        order = self.fallback_order(index)
        n = len(order)
        if n == 0:
            raise ValueError("the dataset has no usable clips — run `framerturbo check-data` "
                             "on the data sources")
        redraws = self.REDRAWS if self.settings.sampling == "random" else 0
        failed, last = 0, ""
        for attempt in range(n + redraws):
            i, draw = order[attempt % n], attempt // n
            try:
                sample = self.load(i, epoch, draw)
                sample["skipped"] = failed
                return sample
            except (UnreadableError, TooShortError) as e:
                failed, last = failed + 1, str(e)
                logger.warning("skipping sample %d (%s)", i, e)
        raise ValueError(f"all {n} clip(s) failed to load ({failed} attempts in a row; last: "
                         f"{last}) — run `framerturbo check-data` on the data sources")

    def clip_plan(self, index: int, epoch: int, draw: int = 0) -> dict:
        """The random choices of one item (no decoding): times, flip, augmentation draw.
        ``draw`` > 0 gives another window for the same item (a retry after a failed read)."""
        ref, s = self.items[index], self.settings
        rng = item_rng(s.seed, epoch, index) if draw == 0 else np.random.default_rng(
            [s.seed, epoch, index, draw])
        times = clip_times(ref.span, ref.shape[2], ref.step, s.sampling, ref.window, rng,
                           s.window_overlap)
        flip = bool(s.flip and rng.random() < 0.5)
        aug_index = int(rng.integers(s.aug_variants))
        return dict(times=times, flip=flip, aug_index=aug_index, rng=rng)

    def load(self, index: int, epoch: int = 0, draw: int = 0) -> dict:
        ref, s = self.items[index], self.settings
        plan = self.clip_plan(index, epoch, draw)
        raw = read_frames_at(ref.source.path, plan["times"], ref.span.fps)
        frames = resize_frames(raw, *ref.shape[:2], s.resize)
        if plan["flip"]:
            frames = np.ascontiguousarray(frames[:, :, ::-1])
        fps = effective_fps(ref.step) if s.fps_id == "data" else float(s.fps_id)
        bucket = (motion_bucket_from_score(motion_score(frames)) if s.motion_bucket == "auto"
                  else float(s.motion_bucket))
        sample = {
            "frames": torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
            "fps": float(fps), "motion_bucket": bucket, "aug_index": plan["aug_index"],
            "key": f"{ref.source.key}|{','.join(f'{t:.4f}' for t in plan['times'])}",
        }
        if s.use_tracks:
            sample["heatmaps"] = self.heatmaps(ref, plan, raw.shape[1:3])
        return sample

    def heatmaps(self, ref: ClipRef, plan: dict, src_hw) -> torch.Tensor:
        s = self.settings
        if s.heatmap_sigma <= 0:
            raise RuntimeError("the heat-map size is not resolved — call "
                               "train.setup.resolve_heatmap_size(cfg) before making the data")
        points = self.track_points(ref, plan, src_hw, s.min_tracks, s.max_tracks)
        return rasterize_heatmaps(points, *ref.shape[:2], s.heatmap_sigma, s.heatmap_radius)

    def track_points(self, ref: ClipRef, plan: dict, src_hw, min_tracks: int,
                     max_tracks: int) -> np.ndarray:
        """(F, K, 2) tracks of the clip in output pixels (resized, cropped, flipped as the
        frames are)."""
        s = self.settings
        points = select_tracks(ref.source.tracks, plan["times"], min_tracks, max_tracks,
                               plan["rng"])
        height, width = ref.shape[:2]
        sx, sy, ox, oy = crop_transform(src_hw[0], src_hw[1], height, width, s.resize)
        points = points * np.array([sx, sy]) - np.array([ox, oy])
        if plan["flip"]:
            points[..., 0] = width - 1 - points[..., 0]
        return points


def select_tracks(tracks_path: Path | None, times: list[float], min_tracks: int,
                  max_tracks: int, rng: np.random.Generator) -> np.ndarray:
    """(F, K, 2) source-pixel tracks for the clip: K ~ U[min, max] tracks visible throughout,
    longer ones more likely (weight ∝ path length + 1 px). Empty when no track file exists."""
    num_frames = len(times)
    if tracks_path is None or not Path(tracks_path).exists():
        return np.zeros((num_frames, 0, 2))
    with np.load(tracks_path) as data:
        points, visible, track_times = data["points"], data["visible"], data["times"]
    idx = np.clip(np.searchsorted(track_times, times), 0, len(track_times) - 1)
    clip_pts, clip_vis = points[idx], visible[idx].all(axis=0)
    candidates = np.flatnonzero(clip_vis)
    if len(candidates) == 0:
        return np.zeros((num_frames, 0, 2))
    length = np.linalg.norm(np.diff(clip_pts[:, candidates], axis=0), axis=-1).sum(axis=0)
    k = min(int(rng.integers(min_tracks, max_tracks + 1)), len(candidates))
    chosen = rng.choice(candidates, size=k, replace=False, p=(length + 1) / (length + 1).sum())
    return clip_pts[:, np.sort(chosen)].astype(np.float64)
