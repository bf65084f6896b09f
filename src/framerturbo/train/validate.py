"""Validation on fixed held-out clips: eval loss at fixed σ values (fixed noise) — with a
ControlNet, also without the tracks (the gap shows whether it learned to use them) — and, when
``validation.sample`` is set, PSNR/SSIM of sampled middle frames against the real ones, with a GIF
grid (real | generated) per validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.seeding import stable_seed
from ..data.batching import collate
from ..denoising.denoiser import FramerDenoiser
from ..denoising.encoding import encode_batch
from ..media.files import to_uint8, write_gif
from .objective import StepNoise, diffusion_loss, predict
from .setup import validation_sampling


@torch.no_grad()
def validate(cfg, models, val_set, run_dir: Path, step: int, device) -> dict:
    vae, image_encoder = _encoders(cfg, models, device)
    was_training = models.unet.training
    models.unet.eval()
    out: dict[str, float] = {}
    items = [val_set[(i, 0)] for i in range(len(val_set))]
    batch = encode_batch(vae, image_encoder, collate(items), cfg.objective.cond_aug_mean,
                         cfg.objective.cond_aug_std)
    denoiser = FramerDenoiser(models.unet, models.controlnet)
    with_tracks = models.controlnet is not None and batch.heatmaps is not None
    for sigma in cfg.validation.sigmas:
        g = torch.Generator().manual_seed(stable_seed("val", sigma))
        noise = torch.randn(batch.latents.shape, generator=g).to(device)
        loss = fixed_sigma_loss(denoiser, batch, sigma, noise, cfg.control.scale)
        out[f"val/loss_sigma_{sigma:g}"] = float(loss.mean())
        if with_tracks:
            # the same draw without the tracks: the gap is what the ControlNet takes from them
            loss = fixed_sigma_loss(denoiser, batch, sigma, noise, 0.0)
            out[f"val/loss_sigma_{sigma:g}_no_tracks"] = float(loss.mean())
    if cfg.validation.sample:
        out |= _sample_metrics(cfg, models, vae, image_encoder, items, run_dir, step)
    models.unet.train(was_training)
    return out


def fixed_sigma_loss(denoiser: FramerDenoiser, batch, sigma: float, noise: torch.Tensor,
                     control_scale: float) -> torch.Tensor:
    """Per-sample EDM loss at one σ with the given noise and no conditioning dropout: the
    held-out measure (comparable across steps, runs and models)."""
    b, device = batch.latents.shape[0], batch.latents.device
    off = torch.zeros(b, dtype=torch.bool, device=device)
    draw = StepNoise(torch.full((b,), float(sigma), device=device), noise, off, off)
    return diffusion_loss(predict(denoiser, batch, draw, control_scale).output, batch, draw)


def _encoders(cfg, models, device):
    if models.vae is not None:
        return models.vae, models.image_encoder
    from ..models.loading import load_components  # cached training: load them only now

    parts = load_components(cfg.model.pretrained, cfg.model.svd or None, controlnet=False,
                            device=device, dtype=cfg.model.base_dtype)
    models.vae, models.image_encoder = parts["vae"], parts["image_encoder"]
    return models.vae, models.image_encoder


def _sample_metrics(cfg, models, vae, image_encoder, items, run_dir, step) -> dict:
    from ..eval.metrics import frame_metrics
    from ..models.record import read_record
    from ..models.schedulers import make_scheduler
    from ..sampling.pipeline import FramerPipeline

    pipe = FramerPipeline(vae=vae, image_encoder=image_encoder, unet=models.unet,
                          scheduler=make_scheduler("euler"),
                          feature_extractor=models.feature_extractor,
                          controlnet=None)  # held-out clips carry no tracks
    pipe.set_progress_bar_config(disable=True)
    if cfg.objective.kind == "consistency":  # the turbo sampler on the run's own σ grid
        from .consistency import sampler_grid

        pipe.turbo_grid = sampler_grid(cfg)
    sampler, steps, guidance = validation_sampling(cfg)
    keep_static = read_record(cfg.model.pretrained).keep_static  # as `evaluate` samples it
    psnr, ssim, grid = [], [], []
    for i, item in enumerate(items):
        frames = item["frames"].float() / 255  # (F, 3, H, W)
        result = pipe(frames[0], frames[-1], num_frames=len(frames), height=frames.shape[2],
                      width=frames.shape[3], num_inference_steps=steps, sampler=sampler,
                      min_guidance_scale=guidance[0], max_guidance_scale=guidance[1],
                      fps=int(round(item["fps"])),
                      motion_bucket_id=item["motion_bucket"], keep_static=keep_static,
                      generator=torch.Generator().manual_seed(stable_seed("val-sample", i)),
                      output_type="pt").frames[0]
        real, fake = frames[1:-1], result[1:-1].float()
        scores = frame_metrics(fake.permute(0, 2, 3, 1).numpy(), real.permute(0, 2, 3, 1).numpy())
        psnr.append(scores["psnr"])
        ssim.append(scores["ssim"])
        grid.append(torch.cat([frames, result.float()], dim=3))  # side by side
    video = torch.cat(grid, dim=2).permute(0, 2, 3, 1).numpy()
    samples = Path(run_dir) / "samples"
    samples.mkdir(exist_ok=True)
    gif = samples / f"step-{step:08d}.gif"
    write_gif(video, gif, fps=7)
    middle = to_uint8(video[len(video) // 2])
    return {"val/psnr": float(np.mean(psnr)), "val/ssim": float(np.mean(ssim)),
            "val/samples": middle, "val/samples_gif": gif}  # image + file: trackers only
