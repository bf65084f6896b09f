"""The training loop: one readable recipe on top of accelerate.

Order of operations per optimizer step: for each of ``grad_accum`` micro-batches → load (cached
latents, or frames encoded by the VAE/CLIP) → draw σ, ε and dropout from a generator seeded by
(seed, step, micro-batch, rank) → loss → backward (gradient sync only on the last micro-batch)
→ clip → optimizer → LR schedule → EMA → log → checkpoint / validate.

Because the data order and every random draw are functions of (seed, step), a run resumed from a
checkpoint continues exactly as the unbroken run would have.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler

from .. import adapters, edm
from ..atomic import atomic_file
from ..config import Config
from ..seeding import stable_seed
from . import checkpoint as ckpt
from ..denoiser import FramerDenoiser
from ..encoding import EncodedBatch, encode_batch
from .objective import StepNoise, diffusion_loss, predict
from .setup import load_models, make_datasets, make_optimizer

logger = logging.getLogger(__name__)
SHARDED = ("DEEPSPEED", "FSDP")  # engines that shard weights or optimizer state across ranks


class AddressSampler(Sampler):
    """Batches of (index, epoch) for one process, from micro-batch ``start`` on: the global
    order is a fresh permutation per epoch, seeded; process r takes its slice of each global
    micro-batch."""

    def __init__(self, size: int, batch: int, rank: int, world: int, seed: int, start: int):
        self.size, self.batch, self.rank, self.world = size, batch, rank, world
        self.seed, self.start = seed, start
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(stable_seed("order", self.seed, epoch))
            self._perms = {epoch: torch.randperm(self.size, generator=g)}
        return self._perms[epoch]

    def addresses(self, micro: int) -> list[tuple[int, int]]:
        first = (micro * self.world + self.rank) * self.batch
        out = []
        for flat in range(first, first + self.batch):
            epoch = flat // self.size
            out.append((int(self._perm(epoch)[flat % self.size]), epoch))
        return out

    def __iter__(self):
        micro = self.start
        while True:
            yield self.addresses(micro)
            micro += 1

    def __len__(self):  # effectively endless; the loop stops at max_steps
        return 2**62


def collate(items: list[dict]) -> dict:
    out = {}
    for key in items[0]:
        values = [it[key] for it in items]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out


class MetricsLog:
    """metrics.jsonl (what ``report`` and the resume test read) + TensorBoard when installed."""

    def __init__(self, run_dir: Path, step: int, enabled: bool):
        self.path, self.enabled = run_dir / "metrics.jsonl", enabled
        self.writer = None
        if not enabled:
            return
        if self.path.exists():  # keep what precedes the checkpoint we resume from
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= step:
                        keep.append(line)
                except (json.JSONDecodeError, KeyError, TypeError):
                    pass  # a line cut short by a crash
            with atomic_file(self.path) as tmp:
                tmp.write_text("".join(k + "\n" for k in keep))
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            logger.info("tensorboard is not installed; metrics go to metrics.jsonl only")

    def log(self, step: int, values: dict) -> None:
        """Numbers go to both; images (H, W, 3 uint8 arrays) only to TensorBoard."""
        if not self.enabled:
            return
        images = {k: v for k, v in values.items() if hasattr(v, "shape")}
        scalars = {k: v for k, v in values.items() if k not in images}
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        if self.writer is not None:
            for k, v in scalars.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.writer.add_scalar(k, v, step)
            for k, v in images.items():
                self.writer.add_image(k, v, step, dataformats="HWC")

    def close(self):
        if self.writer is not None:
            self.writer.close()


def train(cfg: Config, resume: str | None = None, stop_at_step: int | None = None) -> Path:
    """Run (or resume) training; returns the run folder."""
    from accelerate import Accelerator

    check_launch_precision(cfg)
    accelerator = Accelerator(mixed_precision=cfg.train.mixed_precision,
                              gradient_accumulation_steps=cfg.train.grad_accum,
                              cpu=not torch.cuda.is_available())
    check_engine(cfg, accelerator)
    run_dir = Path(cfg.train.output_dir)
    is_main = accelerator.is_main_process
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(cfg.to_toml())
    device = accelerator.device

    from ..data.cache import open_cache  # noqa: PLC0415 - data layer, imported on use

    cached = open_cache(cfg) if cfg.data.cache_dir else None
    train_set, val_set = (cached.train, cached.validation) if cached else make_datasets(cfg)
    models = load_models(cfg, device, need_encoders=cached is None)
    params = [p for group in models.trainable.values() for p in group]
    optimizer, scheduler = make_optimizer(cfg, params, device)
    if accelerator.distributed_type in SHARDED and len(models.trainable) > 1:
        raise ValueError("DeepSpeed/FSDP train one model at a time — set lora.mode = \"none\" "
                         "or control.train = \"none\", or launch with plain DDP")
    # model(s) and optimizer together, as every engine (DDP, DeepSpeed, FSDP) needs them; the LR
    # schedule stays ours: one step per optimizer step, whatever the number of processes
    *prepared, optimizer = accelerator.prepare(*(getattr(models, n) for n in models.trainable),
                                               optimizer)
    wrapped = dict(zip(models.trainable, prepared))
    unet = wrapped.get("unet", models.unet)
    controlnet = wrapped.get("controlnet", models.controlnet)
    denoiser = FramerDenoiser(unet, controlnet, core=models.unet)
    ema = {n: p.detach().clone() for n, p in _named_trainable(models)} \
        if cfg.train.ema_decay > 0 else None

    step = 0
    source = ckpt.resolve_resume(run_dir, resume) if resume else None
    if source is not None:
        state = ckpt.load_checkpoint(source)
        _load_trainable(models, state["trainable"])
        if (source / ckpt.ENGINE).is_dir():  # DeepSpeed/FSDP: each rank's shard of the state
            accelerator.load_state(str(source / ckpt.ENGINE))
        else:
            optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state["ema"] is not None:
            ema = {k: v.to(device) for k, v in state["ema"].items()}
        step = state["state"]["step"]
        accelerator.print(f"resumed from {source} at step {step}")
    elif resume:
        accelerator.print(f"no checkpoint in {ckpt.checkpoint_dir(run_dir)}; starting at step 0")

    ga, world, rank = cfg.train.grad_accum, accelerator.num_processes, accelerator.process_index
    sampler = AddressSampler(len(train_set), cfg.train.batch_size, rank, world, cfg.train.seed,
                             start=step * ga)
    loader = iter(DataLoader(train_set, batch_sampler=sampler, collate_fn=collate,
                             num_workers=cfg.data.num_workers))
    log = MetricsLog(run_dir, step, is_main)
    skipped, nan_skips, window, t_start = 0, 0, [], time.perf_counter()
    last_step = min(cfg.train.max_steps, stop_at_step or cfg.train.max_steps)

    from tqdm.auto import tqdm
    bar = tqdm(total=cfg.train.max_steps, initial=step, disable=not is_main, desc="train",
               unit="step", dynamic_ncols=True)
    while step < last_step:
        losses, sigmas = [], []
        for micro in range(ga):
            raw = next(loader)
            skipped += sum(raw.get("skipped", [0]))
            batch = _to_encoded(raw, models, cfg, device)
            seed = stable_seed("step", cfg.train.seed, step, micro, rank)
            torch.manual_seed(seed)  # LoRA dropout and anything else using the global RNG
            draw = StepNoise.draw(batch.latents, torch.Generator().manual_seed(seed),
                                  cfg.objective.p_mean, cfg.objective.p_std,
                                  cfg.objective.conditioning_dropout)
            # gradients sync (and, under DeepSpeed, the engine steps) on the last micro-batch
            with accelerator.accumulate(*wrapped.values()), accelerator.autocast():
                output = predict(denoiser, batch, draw, cfg.control.scale).output
                per_sample = diffusion_loss(output, batch, draw, cfg.objective.loss_frames)
                loss = per_sample.mean()
                accelerator.backward(loss)  # divided by grad_accum inside
            losses.append(per_sample.detach())
            sigmas.append(draw.sigma.detach())

        step_loss = accelerator.gather(torch.cat(losses)).mean().item()
        if not math.isfinite(step_loss):
            optimizer.zero_grad(set_to_none=True)
            if cfg.train.on_nan == "skip":
                nan_skips += 1
                step += 1  # the step's data is consumed; keep the schedule aligned
                scheduler.step()
                bar.update()
                continue
            _save(run_dir, step, models, wrapped, optimizer, scheduler, ema, cfg, accelerator,
                  skipped)
            raise FloatingPointError(f"loss became {step_loss} at step {step + 1}; the last "
                                     f"good state is saved in {ckpt.checkpoint_dir(run_dir)} — "
                                     "lower train.lr or set train.on_nan = \"skip\"")
        grad_norm = accelerator.clip_grad_norm_(params, cfg.train.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            with torch.no_grad():
                for n, p in _named_trainable(models):
                    ema[n].lerp_(p.detach(), 1 - cfg.train.ema_decay)
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{step_loss:.4f}")

        values = {"loss": step_loss, "lr": scheduler.get_last_lr()[0],
                  "grad_norm": float("nan") if grad_norm is None else float(grad_norm),
                  "skipped_samples": skipped,
                  "nan_skipped_steps": nan_skips}
        values |= _sigma_buckets(accelerator.gather(torch.cat(sigmas)),
                                 accelerator.gather(torch.cat(losses)))
        window.append(values)
        if step % cfg.train.log_every == 0 or step == last_step:
            elapsed = time.perf_counter() - t_start
            values["samples_per_s"] = len(window) * ga * cfg.train.batch_size * world / elapsed
            if torch.cuda.is_available():
                values["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
            window, t_start = [], time.perf_counter()
        log.log(step, values)
        if step % cfg.train.checkpoint_every == 0 or step == last_step:
            _save(run_dir, step, models, wrapped, optimizer, scheduler, ema, cfg, accelerator,
                  skipped)
        if val_set is not None and is_main and (
                (cfg.validation.every and step % cfg.validation.every == 0)
                or step == cfg.train.max_steps):
            from .validate import validate  # noqa: PLC0415

            log.log(step, validate(cfg, models, val_set, run_dir, step, device))
    bar.close()
    if world > 1:  # every rank must hold the same weights; say so in the log
        sums = torch.tensor([float(p.detach().double().sum()) for p in params], device=device)
        gathered = accelerator.gather(sums[None]).cpu()
        log.log(step, {"rank_weight_checksums": gathered.sum(dim=1).tolist(),
                       "ranks_identical": bool((gathered == gathered[0]).all())})
    log.close()
    if step >= cfg.train.max_steps and is_main:
        export_result(run_dir, models, ema, cfg)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()  # a later train() in this process may pick other precision
    return run_dir


def check_launch_precision(cfg: Config) -> None:
    """``accelerate launch --config_file`` passes its precision in the environment; a launch
    config that disagrees with ``train.mixed_precision`` is a mistake, not a choice."""
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if launched and launched != cfg.train.mixed_precision:
        raise ValueError(f"the accelerate launch config says mixed_precision {launched!r} but "
                         f"train.mixed_precision = {cfg.train.mixed_precision!r} — make them "
                         "agree (configs/accelerate/*.yaml use bf16, as the GPU configs do)")


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


def _named_trainable(models):
    for group, model in (("unet", models.unet), ("controlnet", models.controlnet)):
        if group in models.trainable:
            for n, p in model.named_parameters():
                if p.requires_grad:
                    yield f"{group}.{n}", p


def _load_trainable(models, tensors: dict[str, torch.Tensor]) -> None:
    named = dict(_named_trainable(models))
    missing = set(named) - set(tensors)
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} trainable tensors (e.g. "
                         f"{sorted(missing)[0]}) — was it written with another lora/control "
                         "configuration?")
    with torch.no_grad():
        for n, p in named.items():
            p.copy_(tensors[n])


def _save(run_dir, step, models, wrapped, optimizer, scheduler, ema, cfg, accelerator, skipped):
    accelerator.wait_for_everyone()
    engine = None
    if accelerator.distributed_type in SHARDED:
        # every rank writes its shard next to the checkpoint; the main rank then moves it in,
        # so the checkpoint still appears all at once
        engine = ckpt.engine_staging_dir(run_dir, step)
        accelerator.save_state(str(engine))
        weights = {}
        for group, engine_model in wrapped.items():
            full = accelerator.get_state_dict(engine_model)  # gathered, unwrapped; collective
            weights |= {f"{group}.{k}": v.cpu() for k, v in full.items()}
        trainable = {n: weights[n] for n, _ in _named_trainable(models)}
        accelerator.wait_for_everyone()
    else:
        trainable = {n: p.detach().cpu() for n, p in _named_trainable(models)}
    if accelerator.is_main_process:
        ckpt.save_checkpoint(run_dir, step, trainable,
                             {} if engine else optimizer.state_dict(), scheduler.state_dict(),
                             {"skipped_samples": skipped}, ema=None if ema is None else
                             {k: v.cpu() for k, v in ema.items()},
                             keep=cfg.train.keep_checkpoints, engine_dir=engine)
    accelerator.wait_for_everyone()


def _sigma_buckets(sigmas: torch.Tensor, losses: torch.Tensor) -> dict:
    out: dict[str, list] = {}
    for s, l in zip(sigmas.tolist(), losses.tolist()):
        out.setdefault(f"loss_sigma/{edm.log_sigma_bucket(s)}", []).append(l)
    return {k: sum(v) / len(v) for k, v in out.items()}


def export_result(run_dir: Path, models, ema, cfg: Config) -> None:
    """The run's product: LoRA folders (``lora/``, ``controlnet_lora/``) or, for full training,
    a self-contained model folder (``model/``); EMA weights replace the raw ones when on."""
    from ..models.loading import load_components, save_components

    if ema is not None:
        _load_trainable(models, ema)
    if cfg.lora.mode == "lora":
        adapters.save_lora(models.unet, run_dir / "lora")
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
        save_components(parts, run_dir / "model")
