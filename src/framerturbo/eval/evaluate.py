"""Interpolate held-out clips from their endpoints and score the middle frames against the
real ones, next to the baselines on the same clips."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.sources import discover
from ..media.video import probe, read_frames_at, resize_frames
from .baselines import BASELINES
from .metrics import frame_metrics, lpips_status


@dataclass
class EvalClip:
    name: str
    frames: np.ndarray  # (F, H, W, 3) uint8
    tracks: np.ndarray | None = None  # (F, K, 2) generation pixels, visible throughout
    fps: float = 8.0


@dataclass
class EvalResult:
    metrics: dict[str, dict] = field(default_factory=dict)  # method -> {psnr, ssim, n_clips}
    outputs: dict[str, list[np.ndarray]] = field(default_factory=dict)  # method -> videos
    notes: list[str] = field(default_factory=list)


def load_eval_clips(data: str | Path, num_frames: int, height: int, width: int,
                    limit: int | None = None) -> list[EvalClip]:
    """The first ``num_frames`` frames of each source (consecutive), resized to the generation
    size, with their ground-truth tracks when a ``.tracks.npz`` exists."""
    clips = []
    for src in discover([data])[:limit]:
        info = probe(src.path)
        times = [k / info.fps for k in range(num_frames)]
        raw = read_frames_at(src.path, times, info.fps)
        frames = resize_frames(raw, height, width, "squash")
        tracks = None
        if src.tracks is not None:
            with np.load(src.tracks) as d:
                pts, vis = d["points"][:num_frames], d["visible"][:num_frames]
            keep = vis.all(axis=0)
            scale = np.array([width / raw.shape[2], height / raw.shape[1]])
            tracks = pts[:, keep] * scale if keep.any() else None
        clips.append(EvalClip(Path(src.path).name, frames, tracks, info.fps))
    if not clips:
        raise ValueError(f"{data}: no clips to evaluate")
    return clips


def evaluate(pipe, clips: list[EvalClip], *, use_tracks: bool = False, sampler: str = "euler",
             steps: int | None = None, seed: int = 0, guidance=(1.0, 3.0),
             baselines: bool = True, label: str = "model") -> EvalResult:
    """Scores of ``pipe`` (label) and the baselines on the middle frames of every clip."""
    result = EvalResult()
    methods = {label: None} | ({k: v for k, v in BASELINES.items()} if baselines else {})
    scores = {m: [] for m in methods}
    for m in methods:
        result.outputs[m] = []
    for i, clip in enumerate(clips):
        f, h, w = clip.frames.shape[:3]
        for m, fn in methods.items():
            if fn is None:
                out = pipe(clip.frames[0], clip.frames[-1], num_frames=f, height=h, width=w,
                           num_inference_steps=steps, sampler=sampler,
                           min_guidance_scale=guidance[0], max_guidance_scale=guidance[1],
                           fps=int(round(clip.fps)),
                           tracks=clip.tracks if use_tracks else None,
                           generator=torch.Generator().manual_seed(seed + i),
                           output_type="np").frames[0]
                video = (out * 255).round().astype(np.uint8)
            else:
                video = fn(clip.frames[0], clip.frames[-1], f)
            result.outputs[m].append(video)
            scores[m].append(frame_metrics(video[1:-1], clip.frames[1:-1]))
    for m, rows in scores.items():
        result.metrics[m] = {"psnr": float(np.mean([r["psnr"] for r in rows])),
                             "ssim": float(np.mean([r["ssim"] for r in rows])),
                             "n_clips": len(rows)}
    note = lpips_status()
    if note:
        result.notes.append(note)
    result.notes.append("FVD skipped: it needs the I3D network, which is not available offline")
    return result


def markdown_table(metrics: dict[str, dict]) -> str:
    lines = ["| method | PSNR (dB) | SSIM | clips |", "|---|---|---|---|"]
    for m, v in metrics.items():
        lines.append(f"| {m} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['n_clips']} |")
    return "\n".join(lines)


def write_report(result: EvalResult, out: Path) -> None:
    from ..core.atomic import atomic_file

    out = Path(out)
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps({**result.metrics, "notes": result.notes}, indent=1))
    with atomic_file(out.with_suffix(".md")) as tmp:
        tmp.write_text(markdown_table(result.metrics) + "\n\n" + "\n".join(
            f"- {n}" for n in result.notes) + "\n")
