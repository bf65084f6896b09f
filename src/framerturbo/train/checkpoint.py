"""Training checkpoints: written atomically, rotated, and complete enough to resume exactly.

A checkpoint folder ``checkpoints/step-00000300/`` holds the trainable weights (safetensors), the
optimizer and LR-schedule states, the EMA weights (when on) and ``state.json`` (step, samples
seen). Every random choice of the run is a function of (seed, step), so no RNG state is needed.
The folder is written under a temporary name and renamed, so a crash mid-save never leaves a
half-checkpoint that ``--resume`` could pick up.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_dir, remove_stale

PREFIX = "step-"
ENGINE = "engine"  # DeepSpeed/FSDP: accelerate's per-rank state, inside the checkpoint folder


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.name.startswith(PREFIX) and (p / "state.json").is_file()]
    return sorted(done, key=lambda p: int(p.name[len(PREFIX):]))


def engine_staging_dir(run_dir: Path, step: int) -> Path:
    """Where all ranks of a sharded engine write their state before it moves into the
    checkpoint (a hidden name: never mistaken for a checkpoint, cleaned by the next save)."""
    return checkpoint_dir(run_dir) / f".{ENGINE}-{step:08d}"


def save_checkpoint(run_dir: Path, step: int, trainable: dict[str, torch.Tensor],
                    optimizer_state: dict, scheduler_state: dict, state: dict,
                    ema: dict[str, torch.Tensor] | None = None, keep: int = 3,
                    engine_dir: Path | None = None) -> Path:
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    remove_stale(root, PREFIX)  # what a killed save left behind
    for stale in root.glob(f".{ENGINE}-*"):
        if stale != engine_dir:
            shutil.rmtree(stale, ignore_errors=True)
    with atomic_dir(final) as tmp:
        if engine_dir is not None:
            os.replace(engine_dir, tmp / ENGINE)
        save_file({k: v.contiguous() for k, v in trainable.items()}, tmp / "trainable.safetensors")
        if ema is not None:
            save_file({k: v.contiguous() for k, v in ema.items()}, tmp / "ema.safetensors")
        torch.save({"optimizer": optimizer_state, "scheduler": scheduler_state},
                   tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(dict(state, step=step), indent=1))
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def resolve_resume(run_dir: Path, resume: str) -> Path | None:
    """``latest`` → newest complete checkpoint (None if there is none); else a path."""
    if resume == "latest":
        found = list_checkpoints(run_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path}: not a checkpoint folder (no state.json) — pass "
                                "--resume latest or a checkpoints/step-… folder")
    return path


def load_checkpoint(path: Path) -> dict:
    opt = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
    return {
        "trainable": load_file(path / "trainable.safetensors"),
        "ema": load_file(path / "ema.safetensors") if (path / "ema.safetensors").exists() else None,
        "optimizer": opt["optimizer"],
        "scheduler": opt["scheduler"],
        "state": json.loads((path / "state.json").read_text()),
    }
