"""The training loop: one readable recipe on top of accelerate.

Order of operations per optimizer step: for each of ``grad_accum`` micro-batches → load (cached
latents, or frames encoded by the VAE/CLIP) → draw σ, ε and dropout from a generator seeded by
(seed, step, micro-batch, rank) → loss → backward (gradient sync only on the last micro-batch)
→ clip → optimizer → LR schedule → EMA → log → checkpoint / validate.

Because the data order and every random draw are functions of (seed, step), a run resumed from a
checkpoint continues exactly as the unbroken run would have.

The objective is the config's: ``objective.kind = "diffusion"`` (EDM v-loss, objective.py) or
``"consistency"`` (the turbo distillation, consistency.py, `framerturbo distill`) — the same
data, cache, checkpoints, resume and validation either way.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..core.config import Config
from ..core.seeding import stable_seed
from ..data.batching import AddressSampler, collate
from ..data.buckets import bucket_counts
from ..data.cache import open_cache
from ..data.splits import make_datasets
from ..denoising.denoiser import FramerDenoiser
from ..denoising.encoding import EncodedBatch, encode_batch
from . import checkpoint as ckpt
from . import run_card, trackers
from .consistency import ConsistencyObjective, turbo_info
from .metrics_log import MetricsLog, ThroughputMeter, sigma_buckets
from .objective import StepNoise, diffusion_loss, hold_still, predict
from .setup import (load_models, make_optimizer, resolve_heatmap_size,
                    resolve_sampling_defaults)
from .validate import validate

logger = logging.getLogger(__name__)


def train(cfg: Config, resume: str | None = None, stop_at_step: int | None = None) -> Path:
    """Run (or resume) training; returns the run folder."""
    check_launch_precision(cfg)
    trackers.check_trackers(cfg.train.report_to)
    run_dir = Path(cfg.train.output_dir)
    accelerator = Accelerator(mixed_precision=cfg.train.mixed_precision,
                              gradient_accumulation_steps=cfg.train.grad_accum,
                              cpu=not torch.cuda.is_available(), project_dir=str(run_dir),
                              log_with=trackers.log_with(cfg, run_dir, resume) or None)
    check_engine(cfg, accelerator)
    if cfg.control.use:
        resolve_heatmap_size(cfg)  # before config.toml and the data: both record it
    resolve_sampling_defaults(cfg)  # before config.toml: it records them
    device, is_main = accelerator.device, accelerator.is_main_process
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(cfg.to_toml())

    # 1. data, 2. models, 3. optimizer + LR schedule, 4. engine, 5. resume
    cached = open_cache(cfg) if cfg.data.cache_dir else None
    train_set, val_set = (cached.train, cached.validation) if cached else make_datasets(cfg)
    models = load_models(cfg, device, need_encoders=cached is None)
    params = [p for group in models.trainable.values() for p in group]
    optimizer, scheduler = make_optimizer(cfg, params, device)
    wrapped, optimizer = prepare_engine(accelerator, models, optimizer)
    denoiser = FramerDenoiser(wrapped.get("unet", models.unet),
                              wrapped.get("controlnet", models.controlnet), core=models.unet)
    ema = {n: p.detach().clone() for n, p in ckpt.named_trainable(models)} \
        if cfg.train.ema_decay > 0 else None
    distiller = make_distiller(cfg, accelerator, denoiser, models)
    target = distiller.target if distiller is not None else None
    adversary = distiller.adversary if distiller is not None else None
    step, ema = ckpt.restore(run_dir, resume, models, optimizer, scheduler, ema, accelerator,
                             target=target, adversary=adversary)

    batches = batch_stream(train_set, cfg, accelerator, step)
    log = open_metrics_log(run_dir, step, accelerator, cfg, train_set)
    rate = ThroughputMeter(cfg.train.grad_accum * cfg.train.batch_size * accelerator.num_processes)
    skipped, nan_skips = 0, 0
    last_step = min(cfg.train.max_steps, stop_at_step or cfg.train.max_steps)
    bar = tqdm(total=cfg.train.max_steps, initial=step, disable=not is_main, desc="train",
               unit="step", dynamic_ncols=True)
    save = lambda at: ckpt.save(run_dir, at, models, wrapped, optimizer, scheduler, ema,  # noqa: E731
                                cfg, accelerator, skipped, target=target, adversary=adversary)
    while step < last_step:
        # forward + backward over the micro-batches of one optimizer step
        losses, sigmas, skips = accumulate_gradients(cfg, accelerator, denoiser, wrapped, models,
                                                     batches, step, device, distiller)
        skipped += skips
        step_loss = losses.mean().item()
        if not math.isfinite(step_loss):
            optimizer.zero_grad(set_to_none=True)
            if cfg.train.on_nan != "skip":
                save(step)
                raise FloatingPointError(
                    f"loss became {step_loss} at step {step + 1}; the last good state is saved "
                    f"in {ckpt.checkpoint_dir(run_dir)} — lower train.lr or set "
                    "train.on_nan = \"skip\"")
            nan_skips += 1  # the step's data is consumed; keep the schedule aligned
            if distiller is not None:
                distiller.skip_step()  # no discriminator update on a non-finite estimate
        else:
            grad_norm = accelerator.clip_grad_norm_(params, cfg.train.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            update_ema(ema, models, cfg.train.ema_decay)
            if distiller is not None:
                distiller.after_optimizer_step(accelerator)
        scheduler.step()
        step += 1
        bar.update()
        if not math.isfinite(step_loss):
            continue
        bar.set_postfix(loss=f"{step_loss:.4f}")

        values = {"loss": step_loss, "lr": scheduler.get_last_lr()[0],
                  "grad_norm": float("nan") if grad_norm is None else float(grad_norm),
                  "skipped_samples": skipped, "nan_skipped_steps": nan_skips,
                  **sigma_buckets(sigmas, losses),
                  **(distiller.metrics() if distiller is not None else {})}
        rate.count()
        if step % cfg.train.log_every == 0 or step == last_step:
            values |= rate.since_last_log()
        log.log(step, values)
        if step % cfg.train.checkpoint_every == 0 or step == last_step:
            save(step)
        if val_set is not None and is_main and (
                (cfg.validation.every and step % cfg.validation.every == 0)
                or step == cfg.train.max_steps):
            log.log(step, validate(cfg, models, val_set, run_dir, step, device))
    bar.close()
    finish_run(run_dir, step, cfg, accelerator, models, ema, params, log, train_set, val_set)
    return run_dir


def make_distiller(cfg: Config, accelerator, denoiser, models) -> ConsistencyObjective | None:
    """The consistency objective when the config asks for it (None: the diffusion loss)."""
    if cfg.objective.kind != "consistency":
        return None
    if accelerator.distributed_type in ckpt.SHARDED:
        raise ValueError("distillation runs its teacher on the unwrapped UNet, which DeepSpeed/"
                         "FSDP shard — launch it with plain DDP (a LoRA fits on every GPU)")
    lora = dict(ckpt.named_trainable(models))  # the checkpoint's names: "unet.…"
    return ConsistencyObjective(cfg, denoiser, models.unet, models.controlnet, lora)


def batch_stream(train_set, cfg: Config, accelerator, step: int):
    """The endless stream of this process's micro-batches, from micro-batch ``step·grad_accum``
    on (a seeded order per epoch, one bucket per batch when buckets are on)."""
    sampler = AddressSampler(len(train_set), cfg.train.batch_size, accelerator.process_index,
                             accelerator.num_processes, cfg.train.seed,
                             start=step * cfg.train.grad_accum, groups=train_set.bucket_keys())
    return iter(DataLoader(train_set, batch_sampler=sampler, collate_fn=collate,
                           num_workers=cfg.data.num_workers))


def open_metrics_log(run_dir: Path, step: int, accelerator, cfg: Config, train_set) -> MetricsLog:
    """metrics.jsonl + the configured trackers; the clips per bucket go in first."""
    log = MetricsLog(run_dir, step, accelerator.is_main_process,
                     trackers.start(accelerator, cfg, run_dir, step))
    if train_set.bucket_keys() is not None:  # clips per (W, H, F) bucket, in the run log
        counts = bucket_counts(train_set.bucket_keys())
        logger.info("buckets (WxHxF: clips): %s", counts)
        log.log(step, {"data/buckets": counts})
    return log


def finish_run(run_dir: Path, step: int, cfg: Config, accelerator, models, ema, params, log,
               train_set, val_set) -> None:
    """Rank checksums, close the logs, export the result when the run is complete, write the
    model cards, and release accelerate's state."""
    if accelerator.num_processes > 1:
        log.log(step, rank_checksums(accelerator, params, accelerator.device))
    log.close()
    if step >= cfg.train.max_steps and accelerator.is_main_process:
        extra = ({"turbo.json": json.dumps(turbo_info(cfg), indent=1)}
                 if cfg.objective.kind == "consistency" else None)
        ckpt.export_result(run_dir, models, ema, cfg, lora_extra=extra)
    if accelerator.is_main_process:  # the model cards (README.md) of the run and its products
        run_card.write_run_cards(run_dir, run_card.facts(
            cfg, run_dir, step, train_set, val_set, accelerator.num_processes,
            sum(p.numel() for p in models.trainable.get("unet", []))))
    accelerator.wait_for_everyone()
    if accelerator.num_processes > 1:
        # gloo's worker thread still frees the barrier's work after the barrier returns, and that
        # takes the GIL; the DDP reducer (freed when train() returns) holds the last reference to
        # the process group, whose destructor joins that thread under the GIL — a deadlock if it
        # comes first (seen once in CI). Sleeping releases the GIL for the worker to finish.
        time.sleep(0.5)
    accelerator.end_training()
    AcceleratorState._reset_state()  # a later train() in this process may pick other precision


def accumulate_gradients(cfg: Config, accelerator, denoiser, wrapped, models, batches, step: int,
                         device, distiller: ConsistencyObjective | None = None):
    """One optimizer step's micro-batches: load → draw σ, ε, dropout (or the distillation's
    grid index, ε, tracks) from (seed, step, micro, rank) → loss → backward. Returns the
    gathered per-sample losses and σs and the skip count."""
    losses, sigmas, skipped = [], [], 0
    for micro in range(cfg.train.grad_accum):
        raw = next(batches)
        skipped += sum(raw.get("skipped", [0]))
        batch = _to_encoded(raw, models, cfg, device)
        seed = stable_seed("step", cfg.train.seed, step, micro, accelerator.process_index)
        torch.manual_seed(seed)  # LoRA dropout and anything else using the global RNG
        if distiller is not None:
            cdraw = distiller.draw(batch, torch.Generator().manual_seed(seed))
            with accelerator.accumulate(*wrapped.values()), accelerator.autocast():
                per_sample, sigma = distiller.loss(batch, cdraw)
                accelerator.backward(per_sample.mean())
            losses.append(per_sample.detach())
            sigmas.append(sigma.detach())
            continue
        draw = StepNoise.draw(batch.latents, torch.Generator().manual_seed(seed),
                              cfg.objective.p_mean, cfg.objective.p_std,
                              cfg.objective.conditioning_dropout, cfg.objective.still_clips)
        batch = hold_still(batch, draw.still)
        # gradients sync (and, under DeepSpeed, the engine steps) on the last micro-batch
        with accelerator.accumulate(*wrapped.values()), accelerator.autocast():
            output = predict(denoiser, batch, draw, cfg.control.scale).output
            per_sample = diffusion_loss(output, batch, draw, cfg.objective.loss_frames)
            accelerator.backward(per_sample.mean())  # divided by grad_accum inside
        losses.append(per_sample.detach())
        sigmas.append(draw.sigma.detach())
    return (accelerator.gather(torch.cat(losses)), accelerator.gather(torch.cat(sigmas)),
            skipped)


def prepare_engine(accelerator, models, optimizer):
    """Model(s) and optimizer prepared together, as every engine (DDP, DeepSpeed, FSDP) needs;
    the LR schedule stays ours: one step per optimizer step, whatever the number of processes."""
    if accelerator.distributed_type in ckpt.SHARDED and len(models.trainable) > 1:
        raise ValueError("DeepSpeed/FSDP train one model at a time — set lora.mode = \"none\" "
                         "or control.train = \"none\", or launch with plain DDP")
    *prepared, optimizer = accelerator.prepare(*(getattr(models, n) for n in models.trainable),
                                               optimizer)
    return dict(zip(models.trainable, prepared)), optimizer


@torch.no_grad()
def update_ema(ema, models, decay: float) -> None:
    if ema is not None:
        for n, p in ckpt.named_trainable(models):
            ema[n].lerp_(p.detach(), 1 - decay)


def rank_checksums(accelerator, params, device) -> dict:
    """Every rank must hold the same weights; the log says whether they do."""
    sums = torch.tensor([float(p.detach().double().sum()) for p in params], device=device)
    gathered = accelerator.gather(sums[None]).cpu()
    return {"rank_weight_checksums": gathered.sum(dim=1).tolist(),
            "ranks_identical": bool((gathered == gathered[0]).all())}


def check_launch_precision(cfg: Config) -> None:
    """``accelerate launch --config_file`` passes its precision in the environment; a launch
    config that disagrees with ``train.mixed_precision`` is a mistake, not a choice."""
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if launched and launched != cfg.train.mixed_precision:
        raise ValueError(f"the accelerate launch config says mixed_precision {launched!r} but "
                         f"train.mixed_precision = {cfg.train.mixed_precision!r} — make them "
                         "agree (the shipped accelerate/*.yaml use bf16, as the GPU configs do; `framerturbo configs`)")


def check_engine(cfg: Config, accelerator) -> None:
    """DeepSpeed runs accumulation and clipping itself, from its own config: those numbers
    must be the training config's, or the run silently trains something else."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    ds = plugin.deepspeed_config
    for key, ours, name in (("gradient_accumulation_steps", cfg.train.grad_accum, "grad_accum"),
                            ("gradient_clipping", cfg.train.max_grad_norm, "max_grad_norm")):
        theirs = ds.get(key, "auto")
        if theirs != "auto" and float(theirs) != float(ours):
            raise ValueError(f"the DeepSpeed config sets {key} = {theirs} but train.{name} = "
                             f"{ours} — make them agree")


def _to_encoded(raw: dict, models, cfg: Config, device) -> EncodedBatch:
    if "latents" in raw:  # from the cache
        return EncodedBatch(**{k: (torch.as_tensor(raw[k]).to(device) if raw.get(k) is not None
                                   else None) for k in EncodedBatch.__dataclass_fields__})
    mean = getattr(models.feature_extractor, "image_mean", None)
    std = getattr(models.feature_extractor, "image_std", None)
    batch = encode_batch(models.vae, models.image_encoder, raw, cfg.objective.cond_aug_mean,
                         cfg.objective.cond_aug_std, *(x for x in (mean, std) if x))
    return batch.to(device)


