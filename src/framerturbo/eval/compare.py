"""One ``evaluate`` call, several rows: the model, each ``--lora`` on it, ``--compare base`` and
other models — all on the same clips, cut and conditioned as training cuts and conditions them,
in one report with the baselines.

Where the clip settings come from, strongest first: the command's flags, the ``[data]`` section
of ``--config`` (a TOML, a run folder or a shipped name), the model's record (its size, frames,
fps — clips are then sampled at that rate — and motion bucket).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..core.settings import DataConfig
from .evaluate import (EvalResult, load_eval_clips, own_tracks, score_baselines, score_model,
                       write_report)
from .hands import REAL, endpoint_hand_tracks, hand_rows, resolve_source
from .networks import MetricNetworks, learned_metrics


@dataclass
class Row:
    label: str
    model: str
    lora: str | None = None  # a LoRA folder
    scale: float = 1.0

    def describe(self) -> dict:
        kind = "lora" if self.lora else "model"
        return {"kind": kind, "model": self.model} | (
            {"lora": self.lora, "scale": self.scale} if self.lora else {})


def plan_rows(model: str, loras: list[str], compare: list[str]) -> list[Row]:
    """Base rows first (before any adapter is loaded), then one row per LoRA, each labelled by
    what it is; without --lora the model itself is the row."""
    from ..models.adapters import find_lora_dir, parse_lora_spec

    import difflib

    for m in compare:
        if m != "base" and not Path(m).exists() and difflib.get_close_matches(m, ["base"], 1, 0.6):
            raise ValueError(f"--compare {m}: no such model folder — did you mean --compare base "
                             "(the model without the LoRA)?")
    rows = [Row(f"base ({_name(model)})", model)] if not loras or "base" in compare else []
    rows += [Row(f"model ({_name(m)})", m) for m in compare if m != "base"]
    for spec in loras:
        path, scale = parse_lora_spec(spec)
        folder = find_lora_dir(path)
        name = folder.parent.name if folder.name == "lora" else folder.name
        rows.append(Row(f"lora {name}" + ("" if scale == 1 else f" ×{scale:g}"), model,
                        str(folder), scale))
    seen: dict[str, int] = {}
    for row in rows:  # unique labels, so no row overwrites another
        seen[row.label] = seen.get(row.label, 0) + 1
        if seen[row.label] > 1:
            row.label += f" #{seen[row.label]}"
    return rows


def _name(model: str) -> str:
    return Path(str(model).rstrip("/")).name or str(model)


def clip_settings(args, record, cfg) -> DataConfig:
    """Flags ← config [data] ← model record, validated as a training config is."""
    from ..core.config import Config, validate

    if cfg is not None:
        d = dataclasses.replace(cfg.data)
    else:
        d = DataConfig(height=record.height, width=record.width, num_frames=record.num_frames,
                       target_fps=float(record.fps), motion_bucket=str(record.motion_bucket))
    flags = {"height": args.height, "width": args.width, "num_frames": args.num_frames,
             "resize": args.resize, "window_overlap": args.overlap,
             "fps_id": args.fps, "motion_bucket": args.motion_bucket}
    for key, value in flags.items():
        if value is not None:
            setattr(d, key, value)
    if args.stride is not None:
        d.stride, d.target_fps = args.stride, 0.0  # a stride means: not a fixed rate
    if args.target_fps is not None:
        d.target_fps = args.target_fps
    validate(Config(data=d))
    return d


def run_comparison(args: argparse.Namespace, load_pipe) -> EvalResult:
    """The whole ``evaluate`` command: ``load_pipe(model, settings)`` gives a pipeline."""
    from ..core.config import load_config
    from ..models.adapters import load_loras
    from ..models.record import (guidance_choice, keep_static_choice, read_record,
                                 sampling_choice)
    from ..models.schedulers import TURBO, canonical_name

    cfg = load_config(args.config) if args.config else None
    if args.model is None:
        args.model = cfg.model.pretrained if cfg else "micro"
        args.svd = args.svd or (cfg.model.svd if cfg else None) or None
    data = args.data or (cfg.data.validation_sources if cfg else None)
    if not data:
        raise ValueError("give --data (clips to evaluate), or a --config with "
                         "data.validation_sources")
    record = read_record(args.model)
    turbo = getattr(args, "turbo", None)
    sampler, steps = sampling_choice(record, args.sampler, args.steps, turbo is not None)
    args.sampler, args.steps = sampler, steps
    guidance = guidance_choice(record, getattr(args, "guidance", None))
    keep_static = keep_static_choice(record, getattr(args, "keep_static", None))
    protocol = getattr(args, "protocol", None)
    hands = getattr(args, "hand_metrics", None)
    if protocol:
        clips, skipped, settings, result = _protocol_setup(args, record, data)
    else:
        settings = clip_settings(args, record, cfg)
        clips, skipped = load_eval_clips(data if isinstance(data, list) else [data], settings,
                                         args.max_clips, tracks=args.tracks, hands=hands)
        result = EvalResult(conditions={
            "clips": len(clips), "data": data, "settings from": _origin(args, cfg),
            "size": f"{settings.width}x{settings.height}", "num_frames": settings.num_frames,
            "resize": settings.resize,
            "spacing": (f"{settings.target_fps:g} fps" if settings.target_fps
                        else f"stride {settings.stride}"),
            "window_overlap": settings.window_overlap, "fps conditioning": settings.fps_id,
            "motion_bucket": settings.motion_bucket})
    result.conditions |= {"sampler": sampler, "steps": steps, "seed": args.seed,
                          "tracks": args.tracks,
                          "guidance": None if canonical_name(sampler) == TURBO else guidance,
                          "keep_static": keep_static}
    if args.tracks:  # the ControlNet's strength the model's record gives its tracks
        result.conditions["control_scale"] = record.control_scale
    if turbo is not None:  # every row carries the turbo LoRA (the pipeline loader adds it)
        result.conditions["turbo"] = turbo or "shipped with the model"
    hand_source = resolve_source(hands, [c.landmarks for c in clips]) if hands else None
    nets = MetricNetworks.load(getattr(args, "lpips_weights", None),
                               getattr(args, "inception", None), getattr(args, "i3d", None),
                               device=getattr(args, "metrics_device", "cpu"))
    # with hand metrics, each model row is also run steered by its clips' endpoint hands (the
    # hand-control row of the table); not beside --tracks, which steers every row
    hand_plans = (endpoint_hand_tracks(clips, hand_source)
                  if hand_source and not args.tracks else None)
    if hand_plans is not None:
        result.conditions["hand control"] = "tracks between the endpoints' hands (still ends)"
        result.conditions["control_scale"] = record.control_scale
    sampling = dict(sampler=sampler, steps=steps, guidance=guidance, seed=args.seed,
                    keep_static=keep_static,
                    size=(settings.height, settings.width) if protocol else None)
    pipes: dict[str, object] = {}
    for row in plan_rows(args.model, args.lora, args.compare):
        if row.model not in pipes:
            pipes[row.model] = load_pipe(row.model, settings)
            pipes[row.model].set_progress_bar_config(disable=True)
        pipe = pipes[row.model]
        names = load_loras(pipe.unet, [(row.lora, row.scale)]) if row.lora else []
        try:
            scored = score_model(pipe, clips, row.label,
                                 tracks=own_tracks(clips) if args.tracks else None, **sampling)
            scored.metrics[row.label] |= row.describe()
            result.merge(scored)
            if hand_plans is not None and pipe.controlnet is None:
                note = f"{row.model}: no ControlNet, so no hand-control row"
                result.notes += [note] if note not in result.notes else []
            elif hand_plans is not None:
                label = f"{row.label} + hand control"
                steered = score_model(pipe, clips, label, tracks=hand_plans, **sampling)
                steered.metrics[label] |= row.describe() | {"control": "hands"}
                result.merge(steered)
        finally:
            if names:
                pipe.unet.delete_adapters(names)
    baselines = score_baselines(clips, with_hard_cut=hand_source is not None)
    for label in baselines.metrics:
        baselines.metrics[label]["kind"] = "baseline"
    result.merge(baselines)
    real, cache = [c.frames for c in clips], {}
    for label, videos in result.outputs.items():
        result.metrics[label] |= learned_metrics(nets, videos, real, cache)
    if hand_source:
        add_hand_rows(result, clips, hand_source)
    result.notes += skipped + nets.notes
    write_report(result, Path(args.out))
    return result


def add_hand_rows(result: EvalResult, clips, source: str) -> None:
    """Hand metrics of every row's videos (``eval/hands.py``) into its metrics; the real
    frames' row and the landmark source into ``result.hands``."""
    truths = [c.landmarks for c in clips] if source == "synthetic" else None
    rows = hand_rows(result.outputs, [c.frames for c in clips], truths, source)
    for label, row in rows.items():
        if label in result.metrics:
            result.metrics[label] |= {k: v for k, v in row.items() if k != "n_transitions"}
    result.hands = {"source": source, REAL: rows[REAL]}


def _protocol_setup(args, record, data):
    """``--protocol``: the benchmark's examples, generated at the model's size (or --height/
    --width) with its fps and motion bucket, scored at the benchmark's size."""
    from ..core.config import Config, validate
    from .protocols import PAPER, PROTOCOLS, protocol_clips

    spec = PROTOCOLS[args.protocol]
    if args.num_frames not in (None, spec.frames):
        raise ValueError(f"--protocol {args.protocol} fixes {spec.frames} frames per example; "
                         "drop --num-frames")
    fps = float(args.fps) if args.fps not in (None, "data") else float(record.fps)
    motion = float(args.motion_bucket) if args.motion_bucket not in (None, "auto") else float(
        record.motion_bucket)
    clips, notes = protocol_clips(args.protocol, data[0] if isinstance(data, list) else data,
                                  args.max_clips, fps, motion)
    settings = DataConfig(height=args.height or record.height, width=args.width or record.width,
                          num_frames=spec.frames)
    validate(Config(data=settings))
    h, w = clips[0].frames.shape[1:3]
    result = EvalResult(conditions={
        "protocol": spec.name, "clips": len(clips), "data": data,
        "inputs": f"frames 0 and {spec.frames - 1}",
        "scored": f"frames 1–{spec.frames - 2} (PSNR/SSIM/LPIPS/FID); all {spec.frames} (FVD)",
        "generation size": f"{settings.width}x{settings.height}", "scored at": f"{w}x{h}",
        "fps conditioning": fps, "motion_bucket": motion}, reference=PAPER[args.protocol])
    return clips, notes, settings, result


def _origin(args, cfg) -> str:
    base = f"config {args.config}" if cfg else f"model record ({args.model})"
    flags = [f for f in ("height", "width", "num_frames", "resize", "stride", "target_fps",
                         "fps", "motion_bucket", "overlap") if getattr(args, f) is not None]
    return base + (f" + flags {', '.join(flags)}" if flags else "")
