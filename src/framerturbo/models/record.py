"""What a model folder was made for: its frame size, frame count, fps, motion bucket, sampler,
steps and guidance ramp — the defaults of every command that samples it (the user's flags
override them).

A saved folder records them in ``framerturbo.json``; a folder without one is taken to be the
released ``framer_512x320`` (512×320, 14 frames, fps 7, motion bucket 100), except a full
fine-tune inside a run folder (``RUN/model/``), whose ``RUN/config.toml`` says what it was
trained on.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

RECORD_FILE = "framerturbo.json"
FRAMER_GUIDANCE = (1.0, 3.0)  # the released pipeline's ramp, and every record's without one


@dataclass(frozen=True)
class ModelRecord:
    height: int
    width: int
    num_frames: int
    fps: float
    motion_bucket: int
    sampler: str
    steps: int | None = None  # None: the sampler's default
    guidance: tuple[float, float] = FRAMER_GUIDANCE  # the per-frame CFG ramp, first → last frame
    keep_static: float = 0.0  # τ of sampling/keep_static.py (0: off, the released pipeline's way)
    control_scale: float = 1.0  # the ControlNet's strength for given tracks (autopilot: 0.5)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


# Framer's released app steers its SIFT autopilot tracks at half strength (app.py forces 0.5):
# they are matched, not drawn, and may be wrong; a record's control_scale is for given tracks
AUTOPILOT_CONTROL_SCALE = 0.5

RELEASED = ModelRecord(height=320, width=512, num_frames=14, fps=7, motion_bucket=100,
                       sampler="euler", steps=30)
# the micro architecture's own frame size (trained at 64×64×9 on 8 fps procedural clips),
# sampler and guidance: of dpm++ 12 and euler 30, 15, 10 and 8, euler 10 was best or level-best
# in all three training worlds on tuning clips from seeds no training or held-out set uses, and
# at euler 10 a flat guidance of 1.5 beat Framer's 1 → 3 ramp there; keeping static pixels at
# τ = 0.5 had the best SSIM of τ 0.1–0.7 there without losing any on moving pixels, and its
# ControlNet at scale 2 followed true tracks best of 1–3 (docs/micro-model.md)
MICRO_SIZE = ModelRecord(height=64, width=64, num_frames=9, fps=8, motion_bucket=100,
                         sampler="euler", steps=10, guidance=(1.5, 1.5), keep_static=0.5,
                         control_scale=2.0)


def parse_record(path: Path) -> ModelRecord:
    """``framerturbo.json`` → record; a bad file is one error naming it and the fix."""
    try:
        doc = json.loads(Path(path).read_text())
        kwargs = {f.name: doc[f.name] for f in fields(ModelRecord) if f.name in doc}
        if "guidance" in kwargs:
            kwargs["guidance"] = tuple(kwargs["guidance"])
        record = ModelRecord(**kwargs)
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{path}: not a valid model record ({e.__class__.__name__}) — fix it "
                         "or delete it to use the released defaults") from None
    for key in ("height", "width", "num_frames", "motion_bucket"):
        value = getattr(record, key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{path}: {key} must be a positive integer, got {value!r}")
    if not isinstance(record.fps, (int, float)) or record.fps <= 0:
        raise ValueError(f"{path}: fps must be a positive number, got {record.fps!r}")
    check_guidance(record.guidance, path)
    check_keep_static(record.keep_static, f"{path}: keep_static")
    check_control_scale(record.control_scale, f"{path}: control_scale")
    return record


def check_guidance(guidance, where) -> tuple[float, float]:
    """A CFG ramp is two positive scales (first frame's, last frame's); else one error."""
    g = tuple(guidance)
    if len(g) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                              for v in g):
        raise ValueError(f"{where}: guidance must be [first frame's, last frame's] positive "
                         f"scales, e.g. [1.0, 3.0]; got {list(g)!r}")
    return g


def check_keep_static(tau, where: str = "keep_static") -> float:
    """The static-pixel tolerance τ is a number in [0, 1] (0: off); else one error saying so."""
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0.0 <= tau <= 1.0:
        raise ValueError(f"{where} must be a tolerance in [0, 1] on the 0–1 pixel scale "
                         f"(0 turns it off, e.g. 0.5), got {tau!r}")
    return float(tau)


def check_control_scale(scale, where: str = "control_scale") -> float:
    """The ControlNet's strength is a number ≥ 0 (0: tracks ignored); else one error."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale >= 0.0:
        raise ValueError(f"{where} must be a number ≥ 0 (1 is the ControlNet as trained, 0 "
                         f"ignores the tracks), got {scale!r}")
    return float(scale)


def write_record(folder: str | os.PathLike, record: ModelRecord) -> None:
    (Path(folder) / RECORD_FILE).write_text(record.to_json() + "\n")


def read_record(model: str | os.PathLike) -> ModelRecord:
    """The record of a model name, folder or Hub id (Hub ids: the released defaults)."""
    from .names import RANDOM_MICRO, resolve_model

    if str(model) == RANDOM_MICRO:
        return MICRO_SIZE
    folder = Path(resolve_model(model))
    if (folder / RECORD_FILE).is_file():
        return parse_record(folder / RECORD_FILE)
    run_config = folder.parent / "config.toml"
    if folder.name == "model" and run_config.is_file():
        from ..core.config import load_config

        return record_from_config(load_config(run_config))
    return RELEASED


def record_from_config(cfg) -> ModelRecord:
    """What a training run made its model for: the run's clip size and frames, its fps and
    motion bucket where they are fixed numbers (else the base model's), its validation sampling."""
    d = cfg.data
    base = read_record(cfg.model.pretrained)
    fps = float(d.fps_id) if d.fps_id != "data" else (d.target_fps or base.fps)
    bucket = base.motion_bucket if d.motion_bucket == "auto" else int(float(d.motion_bucket))
    v = cfg.validation
    sampler, steps = sampling_choice(base, v.sampler or None, v.steps or None)
    return replace(base, height=d.height, width=d.width, num_frames=d.num_frames, fps=fps,
                   motion_bucket=bucket, sampler=sampler, steps=steps,
                   guidance=guidance_choice(base, v.guidance or None))


def guidance_choice(record: ModelRecord, guidance) -> tuple[float, float]:
    """The CFG ramp a command samples with: the user's (MIN, MAX), else the model's."""
    return tuple(float(g) for g in guidance) if guidance is not None else record.guidance


def keep_static_choice(record: ModelRecord, tau) -> float:
    """The static-pixel τ a command samples with: the user's, else the model's."""
    return record.keep_static if tau is None else float(tau)


def control_scale_choice(record: ModelRecord, scale) -> float:
    """The ControlNet strength a command steers with: the user's, else the model's."""
    return record.control_scale if scale is None else float(scale)


def sampling_choice(record: ModelRecord, sampler: str | None, steps: int | None,
                    turbo: bool = False) -> tuple[str, int | None]:
    """The sampler and steps a command runs: the user's, else (with a turbo LoRA) ``turbo`` at
    its 4 steps, else the model's. A sampler other than the model's keeps its own step count
    (None: the pipeline's default for it)."""
    from .schedulers import DEFAULT_STEPS, TURBO, canonical_name

    if sampler is None:
        sampler = TURBO if turbo else record.sampler
    if steps is None:
        if canonical_name(sampler) == canonical_name(record.sampler):
            steps = record.steps
        elif canonical_name(sampler) == TURBO:
            steps = DEFAULT_STEPS[TURBO]
    return sampler, steps
