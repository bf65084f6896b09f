"""Training set-up, step by step: models, what trains, optimizer + LR schedule, data."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..core.config import Config, ConfigError
from ..core.seeding import stable_seed
from ..models import adapters, levers
from ..models.loading import load_components, resolve_dtype

logger = logging.getLogger(__name__)


@dataclass
class Models:
    unet: torch.nn.Module
    controlnet: torch.nn.Module | None
    vae: torch.nn.Module | None  # None when training from the cache
    image_encoder: torch.nn.Module | None
    feature_extractor: object
    trainable: dict[str, list[torch.nn.Parameter]]  # "unet"/"controlnet" -> parameters


def resolve_heatmap_size(cfg: Config) -> None:
    """Fill ``control.heatmap_sigma`` / ``heatmap_radius`` left at 0 with the model's ControlNet's
    (the released 8 / 20 when it has none), before the data draws a heat-map: training must draw
    the heat-maps the ControlNet reads at inference. A σ without a radius gets 2.5 σ."""
    import json
    from pathlib import Path

    from ..core.tracks import HEATMAP_RADIUS, HEATMAP_SIGMA
    from ..models.names import resolve_model

    c = cfg.control
    if c.heatmap_sigma > 0:
        c.heatmap_radius = c.heatmap_radius or 2.5 * c.heatmap_sigma
        return
    path = Path(resolve_model(cfg.model.pretrained)) / "controlnet" / "config.json"
    own = json.loads(path.read_text()) if path.is_file() else {}
    c.heatmap_sigma = float(own.get("heatmap_sigma", HEATMAP_SIGMA))
    c.heatmap_radius = float(own.get("heatmap_radius", HEATMAP_RADIUS))


def validation_sampling(cfg: Config) -> tuple[str, int | None, tuple[float, float]]:
    """The sampler, steps and guidance ramp of validation's samples: the config's, else the base
    model's own defaults (its ``framerturbo.json``), as `evaluate` samples it."""
    from ..models.record import guidance_choice, read_record, sampling_choice

    v, record = cfg.validation, read_record(cfg.model.pretrained)
    sampler, steps = sampling_choice(record, v.sampler or None, v.steps or None)
    return sampler, steps, guidance_choice(record, v.guidance or None)


def teacher_guidance(cfg: Config) -> tuple[float, float]:
    """The distillation teacher's CFG ramp: the config's, else the base model's own, so the
    turbo LoRA learns the sampler the model is used with."""
    from ..models.record import guidance_choice, read_record

    d = cfg.distill
    given = (d.min_guidance, d.max_guidance) if d.max_guidance > 0 else None
    return guidance_choice(read_record(cfg.model.pretrained), given)


def resolve_sampling_defaults(cfg: Config) -> None:
    """Write what the config left to the model (validation's sampling, the teacher's guidance)
    into it, before config.toml is saved: the run then says what it used, and resumes with it
    even if the model's record changes."""
    v = cfg.validation
    sampler, steps, guidance = validation_sampling(cfg)
    v.sampler, v.steps, v.guidance = sampler, steps or 0, list(guidance)
    if cfg.objective.kind == "consistency":
        cfg.distill.min_guidance, cfg.distill.max_guidance = teacher_guidance(cfg)


def match_heatmap_size(controlnet, cfg: Config) -> None:
    """A loaded ControlNet reads the heat-maps it was trained on. Training it on others is a
    choice (its config then records the new size); sampling with others is an error."""
    c, own = cfg.control, controlnet.config
    wanted = {"heatmap_sigma": c.heatmap_sigma, "heatmap_radius": c.heatmap_radius}
    if all(own.get(k) == v for k, v in wanted.items()):
        return
    was = f"σ {own.get('heatmap_sigma')} / radius {own.get('heatmap_radius')} px"
    if c.train == "none":
        raise ConfigError(f"control.heatmap_sigma / heatmap_radius ({c.heatmap_sigma} / "
                          f"{c.heatmap_radius}) differ from the frozen ControlNet's ({was}) — "
                          "leave them at 0 to use the ControlNet's own")
    logger.warning("retraining the ControlNet on heat-maps of σ %g / radius %g px (it was "
                   "trained on %s)", c.heatmap_sigma, c.heatmap_radius, was)
    controlnet.register_to_config(**wanted)


def load_models(cfg: Config, device: torch.device, need_encoders: bool) -> Models:
    """New weights (LoRA A matrices, a ControlNet started from the UNet) are drawn after
    seeding from ``train.seed``, so two runs of one config start from the same weights."""
    base_dtype = resolve_dtype(cfg.model.base_dtype)
    if cfg.control.use:
        resolve_heatmap_size(cfg)  # (train() has done it before the data; idempotent)
    parts = load_components(cfg.model.pretrained, cfg.model.svd or None,
                            controlnet=cfg.control.use, device=device, dtype=base_dtype)
    torch.manual_seed(stable_seed("init", cfg.train.seed))  # new weights draw from here on
    if cfg.control.use and parts["controlnet"] is None:
        if cfg.control.train != "full":
            raise ConfigError("control.use = true but the model has no controlnet/ folder — "
                              "set control.train = \"full\" to start one from the UNet")
        from ..models import FramerControlNet

        logger.info("no controlnet/ in the model: starting one from the UNet's encoder")
        parts["controlnet"] = FramerControlNet.from_unet(
            parts["unet"], conditioning_embedding_out_channels=cfg.control.embedding_channels,
            heatmap_sigma=cfg.control.heatmap_sigma, heatmap_radius=cfg.control.heatmap_radius
        ).to(device)
    elif cfg.control.use:
        match_heatmap_size(parts["controlnet"], cfg)
    if not need_encoders:  # the cache holds everything they would compute
        parts["vae"] = parts["image_encoder"] = None
    unet, controlnet = parts["unet"], parts["controlnet"]
    for m in (unet, controlnet, parts["vae"], parts["image_encoder"]):
        if m is not None:
            m.requires_grad_(False)
    if parts["vae"] is not None and base_dtype == torch.float16:
        parts["vae"].to(torch.float32)  # SVD's VAE overflows in fp16 (force_upcast)

    trainable = {}
    if cfg.lora.mode != "none":
        trainable["unet"] = _trainable(unet, cfg.lora.mode, cfg)
    if controlnet is not None and cfg.control.train != "none":
        trainable["controlnet"] = _trainable(controlnet, cfg.control.train, cfg)
    if cfg.train.gradient_checkpointing:
        for model in (unet, controlnet):
            if model is not None:
                model.enable_gradient_checkpointing()
    levers.apply_kernels(unet, controlnet, cfg.model.attention, cfg.train.compile)
    return Models(unet, controlnet, parts["vae"], parts["image_encoder"],
                  parts["feature_extractor"], trainable)


def _trainable(model, mode: str, cfg: Config) -> list[torch.nn.Parameter]:
    if mode == "full":
        return adapters.trainable_full(model, cfg.lora.full_modules)
    regex = adapters.target_regex(cfg.lora.preset, cfg.lora.targets)
    return adapters.add_lora(model, cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout, regex)


def make_optimizer(cfg: Config, params: list[torch.nn.Parameter], device: torch.device):
    from diffusers.optimization import get_scheduler

    t = cfg.train
    optimizer_cls = torch.optim.AdamW
    if t.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError:
            bnb = None
        if bnb is not None and device.type == "cuda":
            optimizer_cls = bnb.optim.AdamW8bit
        else:
            logger.warning("train.use_8bit_adam needs bitsandbytes and CUDA; using AdamW")
    optimizer = optimizer_cls(params, lr=t.lr, weight_decay=t.weight_decay)
    # One scheduler step per optimizer step, in every process: the arithmetic is independent
    # of gradient accumulation and of the number of processes.
    scheduler = get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=t.warmup_steps,
                              num_training_steps=t.max_steps)
    return optimizer, scheduler
