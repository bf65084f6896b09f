"""Interpolate held-out clips from their endpoints and score the middle frames against the
real ones, next to the baselines on the same clips.

Clips are cut by the training data layer itself (``ClipDataset`` in ``every-window`` mode): the
same resize/crop, frame spacing, manifest spans, fps and motion-bucket conditioning as training,
every window of every file, in a fixed order — so a LoRA is scored under the conditions it was
trained on, and base and LoRA rows of one report are scored on the very same clips.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.jsonout import strict_json
from ..core.settings import DataConfig
from ..data.dataset import ClipDataset, ClipSettings
from ..data.sources import discover
from ..media.video import TooShortError, UnreadableError
from ..models.record import FRAMER_GUIDANCE
from . import tables
from .baselines import BASELINES, hard_cut
from .hands import HAND_COLUMNS, REAL
from .metrics import frame_metrics

logger = logging.getLogger(__name__)
ALL_TRACKS = 10**6  # "every track visible throughout the clip"


@dataclass
class EvalClip:
    name: str  # source file @ window start (seconds)
    frames: np.ndarray  # (F, H, W, 3) uint8
    tracks: np.ndarray | None = None  # (F, K, 2) generation pixels, visible throughout
    fps: float = 8.0  # the fps conditioning training gives this clip
    motion_bucket: float = 100.0  # likewise
    landmarks: object = None  # ClipLandmarks: the signer world's ground truth, if asked for


@dataclass
class EvalResult:
    metrics: dict[str, dict] = field(default_factory=dict)  # row -> {psnr, ssim, n_clips, …}
    outputs: dict[str, list[np.ndarray]] = field(default_factory=dict)  # row -> videos
    notes: list[str] = field(default_factory=list)
    conditions: dict = field(default_factory=dict)  # how the clips were cut and sampled
    reference: dict[str, dict] = field(default_factory=dict)  # published figures to compare
    hands: dict = field(default_factory=dict)  # hand metrics: source, the real frames' row

    def merge(self, other: EvalResult) -> None:
        self.metrics |= other.metrics
        self.outputs |= other.outputs
        self.notes += [n for n in other.notes if n not in self.notes]


def eval_settings(data: DataConfig) -> ClipSettings:
    """Training's data settings, cut into every window (no random starts, no flips)."""
    fields = dataclasses.asdict(data) | {"sampling": "every-window", "flip": False}
    return ClipSettings(**fields)


def load_eval_clips(sources, data: DataConfig, max_clips: int | None = None,
                    tracks: bool = False,
                    hands: str | None = None) -> tuple[list[EvalClip], list[str]]:
    """Every window of every source as training cuts it, taken round-robin across files (each
    file's first window, then each file's second, …) up to ``max_clips``; returns the clips and
    notes on what was skipped. ``hands`` "synthetic" (or "auto") attaches the synthetic
    signer's ground-truth landmarks, cut and cropped as the frames are."""
    dataset = ClipDataset(discover(sources if isinstance(sources, (list, tuple)) else [sources]),
                          eval_settings(data))
    notes = [f"skipped {path}: {reason}" for path, reason in dataset.skipped.reasons.items()]
    files = {}
    for ref in dataset.items:
        files.setdefault(ref.source.key, len(files))
    order = sorted(range(len(dataset.items)),
                   key=lambda i: (dataset.items[i].window, files[dataset.items[i].source.key]))
    clips: list[EvalClip] = []
    for i in order:
        if max_clips is not None and len(clips) >= max_clips:
            break
        try:
            clips.append(_eval_clip(dataset, i, tracks, hands))
        except (UnreadableError, TooShortError) as e:
            notes.append(f"skipped a window: {e}")
    if not clips:
        raise ValueError(f"{sources}: no clips to evaluate at {data.num_frames} frames with this "
                         "spacing — run `framerturbo check-data` on it, or lower --stride/"
                         "--num-frames")
    return clips, notes


def _eval_clip(dataset: ClipDataset, index: int, tracks: bool,
               hands: str | None = None) -> EvalClip:
    sample = dataset.load(index)
    ref = dataset.items[index]
    plan = dataset.clip_plan(index, 0)
    points = None
    if tracks and ref.source.tracks is not None:
        w, h = ref.size
        points = dataset.track_points(ref, plan, (h, w), ALL_TRACKS, ALL_TRACKS)
        points = points if points.shape[1] else None
    frames = sample["frames"].permute(0, 2, 3, 1).numpy()
    name = f"{Path(ref.source.path).name}@{plan['times'][0]:.2f}s"
    marks = (_signer_truth(dataset, index, plan["times"], frames, hands == "synthetic")
             if hands in ("auto", "synthetic") else None)
    return EvalClip(name, frames, points, sample["fps"], sample["motion_bucket"], marks)


def _signer_truth(dataset: ClipDataset, index: int, times, frames: np.ndarray, required: bool):
    """The signer world's joints at the clip's frames, in its pixels; None (or, when
    ``required``, a one-line error) for a clip that is not a synthetic signer clip."""
    from ..data.clips import effective_fps
    from ..data.landmarks import is_signer_clip, signer_landmarks_at
    from ..media.video import crop_transform

    ref = dataset.items[index]
    if not is_signer_clip(ref.source.tracks):
        if required:
            raise ValueError(f"{ref.source.path}: no synthetic signer ground truth (a "
                             "`framerturbo synth --domain signer` clip's .tracks.npz) — use "
                             "--hand-metrics mediapipe")
        return None
    w, h = ref.size
    height, width = frames.shape[1:3]
    transform = crop_transform(h, w, height, width, dataset.settings.resize)
    return signer_landmarks_at(ref.source.tracks, times, transform, (width, height),
                               effective_fps(ref.step))


def score_model(pipe, clips: list[EvalClip], label: str, *, tracks: list | None = None,
                sampler: str = "euler", steps: int | None = None, seed: int = 0,
                guidance=FRAMER_GUIDANCE, size: tuple[int, int] | None = None,
                keep_static: float | None = None) -> EvalResult:
    """One row: ``pipe`` on every clip, conditioned as training conditions the clip. With
    ``size`` (H, W) the model generates at that size and the frames are resized back to the
    clip's for scoring (a benchmark's size is not the model's). ``keep_static``: the
    pipeline's τ (None: the model record's). ``tracks``: per clip, the tracks to steer it with
    (:func:`own_tracks`: the clips' own), or None for no control."""
    from ..media.files import to_uint8
    from ..media.video import resize_frames

    videos, scores = [], []
    for i, clip in enumerate(clips):
        f, h, w = clip.frames.shape[:3]
        gh, gw = size or (h, w)
        out = pipe(clip.frames[0], clip.frames[-1], num_frames=f, height=gh, width=gw,
                   num_inference_steps=steps, sampler=sampler,
                   min_guidance_scale=guidance[0], max_guidance_scale=guidance[1],
                   fps=clip.fps, motion_bucket_id=clip.motion_bucket,
                   tracks=None if tracks is None else tracks[i], keep_static=keep_static,
                   # a protocol's frames meet the model's size as they are, on purpose
                   resize="squash" if size else None,
                   generator=torch.Generator().manual_seed(seed + i), output_type="np").frames[0]
        videos.append(to_uint8(out) if (gh, gw) == (h, w) else
                      resize_frames(to_uint8(out), h, w, "squash"))
        scores.append(frame_metrics(videos[-1][1:-1], clip.frames[1:-1]))
    return _result(label, videos, scores)


def own_tracks(clips: list[EvalClip]) -> list:
    """Each clip's own tracks (``evaluate --tracks``), for :func:`score_model`."""
    return [clip.tracks for clip in clips]


def score_baselines(clips: list[EvalClip], with_hard_cut: bool = False) -> EvalResult:
    """Cross-fade and flow (and, for hand metrics, the hard cut: no transition at all)."""
    result = EvalResult()
    baselines = BASELINES | ({"hard cut": hard_cut} if with_hard_cut else {})
    for name, fn in baselines.items():
        videos = [fn(c.frames[0], c.frames[-1], len(c.frames)) for c in clips]
        result.merge(_result(name, videos, [frame_metrics(v[1:-1], c.frames[1:-1])
                                            for v, c in zip(videos, clips)]))
    return result


def _result(label: str, videos: list[np.ndarray], scores: list[dict]) -> EvalResult:
    result = EvalResult(outputs={label: videos})
    result.metrics[label] = {"psnr": float(np.mean([s["psnr"] for s in scores])),
                             "ssim": float(np.mean([s["ssim"] for s in scores])),
                             "n_clips": len(scores)}
    return result


def standard_notes() -> list[str]:
    return ["LPIPS, FID and FVD skipped: they need their networks as local files (`framerturbo "
            "evaluate --lpips-weights/--inception/--i3d`, docs/evaluation.md)"]


def evaluate(pipe, clips: list[EvalClip], *, baselines: bool = True, label: str = "model",
             **kwargs) -> EvalResult:
    """Scores of ``pipe`` (label) and, with ``baselines``, cross-fade and flow on every clip."""
    result = score_model(pipe, clips, label, **kwargs)
    if baselines:
        result.merge(score_baselines(clips))
    result.notes += standard_notes()
    return result


LEARNED = (("lpips", "LPIPS", ".4f"), ("fid", "FID", ".2f"), ("fvd", "FVD", ".2f"))


def columns(metrics: dict[str, dict]) -> list[tables.Column]:
    """PSNR, SSIM; LPIPS/FID/FVD and the hand metrics when any row has them; clips."""
    extra = [c for c in LEARNED if any(c[0] in v for v in metrics.values())]
    hands = HAND_COLUMNS if any("hand_detection_rate" in v for v in metrics.values()) else []
    clips = [("n_clips", "clips", "")] if any("n_clips" in v for v in metrics.values()) else []
    return [("psnr", "PSNR (dB)", ".2f"), ("ssim", "SSIM", ".4f"), *extra, *hands, *clips]


def markdown_table(metrics: dict[str, dict], hands: dict | None = None) -> str:
    """One row per entry ("—" where a row lacks a column); with ``hands`` (the result's hand
    metrics) the real frames' hand row last."""
    rows = metrics | ({REAL: hands[REAL]} if hands else {})
    return tables.markdown_table(rows, columns(metrics))


def write_report(result: EvalResult, out: Path) -> None:
    """``out`` (JSON: every row, the conditions, the notes), the same as a table beside it
    (``.md``) and as a page (``.html``)."""
    from ..core.atomic import atomic_file

    out = Path(out)
    doc = {"rows": result.metrics, "conditions": result.conditions, "notes": result.notes}
    if result.hands:
        doc["hands"] = result.hands
    if result.reference:
        doc["paper"] = result.reference
    with atomic_file(out) as tmp:
        tmp.write_text(strict_json(doc))
    conditions = "".join(f"- {k}: {v}\n" for k, v in result.conditions.items())
    paper_note = "The paper's figures (Framer, arXiv 2410.18978, Table 1):"
    with atomic_file(out.with_suffix(".md")) as tmp:
        paper = (f"\n{paper_note}\n\n" + markdown_table(result.reference) + "\n"
                 if result.reference else "")
        tmp.write_text(markdown_table(result.metrics, result.hands) + "\n" + paper + "\n"
                       + conditions + "".join(f"- {n}\n" for n in result.notes))
    rows = result.metrics | ({REAL: result.hands[REAL]} if result.hands else {})
    parts = [tables.html_table(rows, columns(result.metrics))]
    if result.hands:
        parts.append(f"<p>Hand metrics from {result.hands['source']} landmarks "
                     "(docs/evaluation.md).</p>")
    if result.reference:
        parts += [f"<p>{paper_note}</p>",
                  tables.html_table(result.reference, columns(result.reference))]
    parts += [tables.html_conditions(result.conditions), tables.html_list(result.notes)]
    tables.write_page(out.with_suffix(".html"), "Evaluation", parts)
