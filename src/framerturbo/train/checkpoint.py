"""Training checkpoints: written atomically, rotated, and complete enough to resume exactly.

A checkpoint folder ``checkpoints/step-00000300/`` holds the trainable weights (safetensors), the
optimizer and LR-schedule states, the EMA weights (when on), the distillation's target EMA
(``target.safetensors``, when on), the adversarial distillation's discriminator
(``discriminator.safetensors`` + its optimizer, when on) and ``state.json`` (step, samples
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

from ..core.atomic import anything, atomic_dir, remove_stale
from ..core.config import Config
from ..models import adapters

PREFIX = "step-"
TARGET = "target.safetensors"  # the consistency target's EMA weights (train/consistency.py)
DISCRIMINATOR = "discriminator.safetensors"  # the adversarial heads (train/adversarial.py)
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
                    engine_dir: Path | None = None,
                    target: dict[str, torch.Tensor] | None = None,
                    discriminator: tuple[dict[str, torch.Tensor], dict] | None = None) -> Path:
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    remove_stale(root, PREFIX)  # what a killed save left behind
    for stale in root.glob(f".{ENGINE}-*"):
        if stale != engine_dir:
            shutil.rmtree(stale, ignore_errors=True)
    with atomic_dir(final, replace_if=anything) as tmp:
        if engine_dir is not None:
            os.replace(engine_dir, tmp / ENGINE)
        save_file({k: v.contiguous() for k, v in trainable.items()}, tmp / "trainable.safetensors")
        if ema is not None:
            save_file({k: v.contiguous() for k, v in ema.items()}, tmp / "ema.safetensors")
        if target is not None:
            save_file({k: v.contiguous() for k, v in target.items()}, tmp / TARGET)
        states = {"optimizer": optimizer_state, "scheduler": scheduler_state}
        if discriminator is not None:
            save_file({k: v.contiguous() for k, v in discriminator[0].items()},
                      tmp / DISCRIMINATOR)
            states["discriminator"] = discriminator[1]
        torch.save(states, tmp / "optimizer.pt")
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
        "target": load_file(path / TARGET) if (path / TARGET).exists() else None,
        "discriminator": ((load_file(path / DISCRIMINATOR), opt["discriminator"])
                          if (path / DISCRIMINATOR).exists() else None),
        "optimizer": opt["optimizer"],
        "scheduler": opt["scheduler"],
        "state": json.loads((path / "state.json").read_text()),
    }


# --- the run's state: what trains, saved and restored through the engine ---------------------

SHARDED = ("DEEPSPEED", "FSDP")  # engines that shard weights or optimizer state across ranks


def named_trainable(models):
    for group, model in (("unet", models.unet), ("controlnet", models.controlnet)):
        if group in models.trainable:
            for n, p in model.named_parameters():
                if p.requires_grad:
                    yield f"{group}.{n}", p


def load_trainable(models, tensors: dict[str, torch.Tensor]) -> None:
    named = dict(named_trainable(models))
    missing = set(named) - set(tensors)
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} trainable tensors (e.g. "
                         f"{sorted(missing)[0]}) — was it written with another lora/control "
                         "configuration?")
    with torch.no_grad():
        for n, p in named.items():
            p.copy_(tensors[n])


def save(run_dir, step, models, wrapped, optimizer, scheduler, ema, cfg, accelerator, skipped,
         target=None, adversary=None):
    accelerator.wait_for_everyone()
    engine = None
    if accelerator.distributed_type in SHARDED:
        # every rank writes its shard next to the checkpoint; the main rank then moves it in,
        # so the checkpoint still appears all at once
        engine = engine_staging_dir(run_dir, step)
        accelerator.save_state(str(engine))
        weights = {}
        for group, engine_model in wrapped.items():
            full = accelerator.get_state_dict(engine_model)  # gathered, unwrapped; collective
            weights |= {f"{group}.{k}": v.cpu() for k, v in full.items()}
        trainable = {n: weights[n] for n, _ in named_trainable(models)}
        accelerator.wait_for_everyone()
    else:
        trainable = {n: p.detach().cpu() for n, p in named_trainable(models)}
    if accelerator.is_main_process:
        save_checkpoint(run_dir, step, trainable,
                             {} if engine else optimizer.state_dict(), scheduler.state_dict(),
                             {"skipped_samples": skipped}, ema=None if ema is None else
                             {k: v.cpu() for k, v in ema.items()},
                             keep=cfg.train.keep_checkpoints, engine_dir=engine,
                             target=None if target is None else
                             {k: v.cpu() for k, v in target.items()},
                             discriminator=None if adversary is None else adversary.state())
    accelerator.wait_for_everyone()


def restore(run_dir: Path, resume: str | None, models, optimizer, scheduler, ema, accelerator,
            target: dict[str, torch.Tensor] | None = None, adversary=None):
    """Load the checkpoint ``resume`` names into the models, optimizer, LR schedule, EMA and
    (in place) the distillation target and discriminator; returns (step, ema) — (0, ema) for a
    fresh run."""
    source = resolve_resume(run_dir, resume) if resume else None
    if source is None:
        if resume:
            accelerator.print(f"no checkpoint in {checkpoint_dir(run_dir)}; starting at step 0")
        return 0, ema
    state = load_checkpoint(source)
    load_trainable(models, state["trainable"])
    if (source / ENGINE).is_dir():  # DeepSpeed/FSDP: each rank's shard of the state
        accelerator.load_state(str(source / ENGINE))
    else:
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if ema is not None and state["ema"] is not None:
        ema = {k: v.to(accelerator.device) for k, v in state["ema"].items()}
    if target is not None:
        if state["target"] is None or set(state["target"]) != set(target):
            raise ValueError(f"{source}: no matching {TARGET} — was it written by `framerturbo "
                             "train`, or with another distill.target_ema / lora setting?")
        with torch.no_grad():
            for k, v in target.items():
                v.copy_(state["target"][k])
    if adversary is not None:
        if state["discriminator"] is None:
            raise ValueError(f"{source}: no {DISCRIMINATOR} — it was written without "
                             "distill.adversarial_weight; resume it with the weight at 0, or "
                             "start a new run")
        adversary.load_state(*state["discriminator"])
    step = state["state"]["step"]
    accelerator.print(f"resumed from {source} at step {step}")
    return step, ema


def export_result(run_dir: Path, models, ema, cfg: Config, lora_extra: dict | None = None) -> None:
    """The run's product: LoRA folders (``lora/``, ``controlnet_lora/``) or, for full training,
    a self-contained model folder (``model/``); EMA weights replace the raw ones when on.
    ``lora_extra``: text files written inside ``lora/`` (a turbo LoRA's ``turbo.json``)."""
    from ..models.loading import load_components, save_components
    from ..models.record import record_from_config

    if ema is not None:
        load_trainable(models, ema)
    if cfg.lora.mode == "lora":
        adapters.save_lora(models.unet, run_dir / "lora", extra=lora_extra)
    if cfg.control.train == "lora":
        adapters.save_lora(models.controlnet, run_dir / "controlnet_lora")
    if cfg.lora.mode == "full" or cfg.control.train == "full":
        parts = load_components(cfg.model.pretrained, cfg.model.svd or None,
                                controlnet=models.controlnet is not None, device="cpu",
                                dtype="fp32")
        if cfg.lora.mode == "full":
            parts["unet"] = models.unet.to("cpu", torch.float32)
        if cfg.control.train == "full":
            parts["controlnet"] = models.controlnet.to("cpu", torch.float32)
        save_components(parts, run_dir / "model", record=record_from_config(cfg))
