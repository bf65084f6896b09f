"""Latent consistency distillation: the objective that turns Framer into a few-step "turbo" LoRA.

On a Karras grid σ_0 = σ_max > … > σ_{N−1} = σ_min (``edm.karras_sigmas``), for clean latents x₀,
a grid index n ~ U{0, …, N−1−k} per sample and ε ~ N(0, I):

    x_hi  = x₀ + σ_n·ε                                   (σ_n: "σ_{n+k}" in ascending notation)
    x̂_lo  = k steps of the teacher's ODE solver from σ_n to σ_{n+k}, each (Euler)
            x ← x + (σ' − σ)·(x − D_w(x, σ))/σ          D_w: the frozen base (LoRA off), CFG
                                                         with Framer's per-frame ramp w
    f(x, σ) = c_skip(σ)·x + c_out(σ)·F(x, σ)            edm.consistency_denoised, f(x, σ_min) = x
    loss  = sqrt(mean(d²) + c²) − c,  d = f_θ(x_hi, σ_n) − f_θ⁻(x̂_lo, σ_{n+k})

θ is the student (base + LoRA), θ⁻ the target: an EMA of the LoRA weights swapped in under
no_grad (``distill.target_ema``; 0 = the current weights, stop-gradient). The mean runs over the
selected frames and all latent elements, so c is per √dim: the vector form sqrt(‖d‖² + C²) − C
of iCT with C = c·√dim, divided by √dim. The teacher shares the student's base weights: it is
the same UNet with its adapters disabled, no second copy. A batch with tracks feeds them, with
probability ``distill.track_fraction``, to the frozen ControlNet of teacher, student and target.
With ``distill.adversarial_weight`` > 0 a discriminator on the frozen base's encoder features
adds a hinge generator term to the student's loss (train/adversarial.py).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..core import edm
from ..core.config import Config, DistillConfig
from ..denoising import conditioning as C
from ..denoising.denoiser import FramerDenoiser
from ..denoising.encoding import EncodedBatch
from ..models.adapters import adapters_off, grid_settings
from .adversarial import Adversary, AdversarialDraw
from .objective import frame_weights
from .setup import teacher_guidance


def sigma_grid(d: DistillConfig) -> torch.Tensor:
    """The teacher's Karras σ grid, descending from σ_max to σ_min (N values, float64) — the
    ``euler`` sampler's σs at N steps (without its final 0)."""
    return edm.karras_sigmas(d.num_sigmas, d.sigma_min, d.sigma_max, d.rho)


@dataclass
class ConsistencyDraw:
    """Every random draw of one distillation step (so tests and resumes can reproduce it)."""

    index: torch.Tensor  # (B,) grid index n of x_hi; the target sits at n + k
    noise: torch.Tensor  # like the latents
    tracks: bool  # this batch feeds its heat-maps to the ControlNet
    adversarial: AdversarialDraw | None = None  # the discriminator's noise, when it is on

    @classmethod
    def draw(cls, latents: torch.Tensor, generator: torch.Generator, intervals: int,
             track_fraction: float, adversary: Adversary | None = None) -> ConsistencyDraw:
        b = latents.shape[0]
        index = torch.randint(0, intervals, (b,), generator=generator)
        noise = torch.randn(latents.shape, generator=generator)
        tracks = bool(torch.rand((), generator=generator) < track_fraction)
        adversarial = adversary.draw(latents, generator) if adversary is not None else None
        return cls(index.to(latents.device), noise.to(latents.device), tracks, adversarial)


@contextmanager
def swapped(params: dict[str, torch.nn.Parameter], tensors: dict[str, torch.Tensor] | None):
    """``tensors`` in place of the parameters' data for the duration (None: no swap)."""
    if tensors is None:
        yield
        return
    saved = {n: p.data for n, p in params.items()}
    try:
        for n, p in params.items():
            p.data = tensors[n]
        yield
    finally:
        for n, p in params.items():
            p.data = saved[n]


def euler_step(x: torch.Tensor, denoised: torch.Tensor, sigma, sigma_next) -> torch.Tensor:
    """x + (σ' − σ)·(x − D)/σ: the probability-flow ODE step the ``euler`` sampler takes."""
    s = edm.append_dims(torch.as_tensor(sigma, dtype=x.dtype, device=x.device), x.ndim)
    s_next = edm.append_dims(torch.as_tensor(sigma_next, dtype=x.dtype, device=x.device), x.ndim)
    return x + (s_next - s) * (x - denoised) / s


def teacher_step(teacher: FramerDenoiser, x: torch.Tensor, sigma, sigma_next,
                 cond: C.FramerConditioning, *, guidance=None, heatmaps=None,
                 control_scale: float = 1.0, solver: str = "euler") -> torch.Tensor:
    """One guided ODE step σ → σ' of the teacher (Euler, or Heun's second-order correction)."""
    call = {"guidance": guidance, "heatmaps": heatmaps, "control_scale": control_scale}
    d = teacher(x, sigma, cond, **call).denoised
    x_next = euler_step(x, d, sigma, sigma_next)
    if solver == "heun":  # σ' ≥ σ_min > 0 on the grid: the correction always applies
        d_next = teacher(x_next, sigma_next, cond, **call).denoised
        x_next = euler_step(x, (d + d_next) / 2, sigma, sigma_next)
    return x_next


def pseudo_huber(student: torch.Tensor, target: torch.Tensor, c: float,
                 loss_frames: str = "all") -> torch.Tensor:
    """Per-sample sqrt(mean(d²) + c²) − c over the selected frames, shape (B,)."""
    err = (student.float() - target.float()) ** 2  # (B, F, C, h, w)
    w = frame_weights(err.shape[1], loss_frames, err.device)
    mean_sq = (err.mean(dim=(2, 3, 4)) * w).sum(dim=1) / w.sum()
    return torch.sqrt(mean_sq + c * c) - c


class ConsistencyObjective:
    """The distillation loss for the loop: ``student`` is the (possibly DDP-wrapped) denoiser
    that gradients flow through; teacher and target passes run on the bare ``unet`` (shared
    weights) under no_grad. ``target`` holds the EMA LoRA tensors (None: stop-gradient online)."""

    def __init__(self, cfg: Config, student: FramerDenoiser, unet, controlnet,
                 lora: dict[str, torch.nn.Parameter]):
        from ..sampling.pipeline import guidance_weights

        self.d, self.control_scale, self.loss_frames = cfg.distill, cfg.control.scale, \
            cfg.objective.loss_frames
        self.student, self.unet, self.lora = student, unet, lora
        self.bare = FramerDenoiser(unet, controlnet)
        self.sigmas = sigma_grid(self.d).float()
        self.target = ({n: p.detach().clone() for n, p in lora.items()}
                       if self.d.target_ema > 0 else None)
        self.guidance_range = teacher_guidance(cfg)
        self._ramp = lambda frames: guidance_weights(*self.guidance_range, frames,
                                                     self.d.middle_max_guidance)
        self.adversary = (Adversary(cfg, unet, cfg.train.seed, unet.device)
                          if self.d.adversarial_weight > 0 else None)
        self._parts: dict[str, list[float]] = {}

    def draw(self, batch: EncodedBatch, generator: torch.Generator) -> ConsistencyDraw:
        return ConsistencyDraw.draw(batch.latents, generator, self.d.num_sigmas - self.d.skip,
                                    self.d.track_fraction, self.adversary)

    def guidance(self, frames: int, device) -> torch.Tensor | None:
        if self.guidance_range[1] <= 1.0:  # as the sampler: no CFG below a max scale of 1
            return None
        return self._ramp(frames).to(device)[None, :, None, None, None]

    @torch.no_grad()
    def target_of(self, batch: EncodedBatch, draw: ConsistencyDraw,
                  cond: C.FramerConditioning, x_hi: torch.Tensor) -> torch.Tensor:
        """f_θ⁻(x̂_lo, σ_{n+k}) with x̂_lo from k guided teacher steps starting at x_hi."""
        heatmaps = batch.heatmaps if draw.tracks else None
        sigmas = self.sigmas.to(x_hi.device)
        guidance = self.guidance(x_hi.shape[1], x_hi.device)
        x = x_hi
        with adapters_off(self.unet):
            for j in range(self.d.skip):
                x = teacher_step(self.bare, x, sigmas[draw.index + j], sigmas[draw.index + j + 1],
                                 cond, guidance=guidance, heatmaps=heatmaps,
                                 control_scale=self.control_scale, solver=self.d.solver)
        sigma_lo = sigmas[draw.index + self.d.skip]
        with swapped(self.lora, self.target):
            out = self.bare(x, sigma_lo, cond, heatmaps=heatmaps,
                            control_scale=self.control_scale).output
        return edm.consistency_denoised(x, out, sigma_lo, self.d.sigma_min)

    def loss(self, batch: EncodedBatch, draw: ConsistencyDraw) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-sample loss (B,), σ of the student's input (B,))."""
        cond = C.assemble(batch.endpoints, self.unet.mask_token, batch.latents.shape[1],
                          batch.fps, batch.motion_bucket)  # full conditioning: no dropout
        sigma_hi = self.sigmas.to(batch.latents.device)[draw.index]
        x_hi = edm.add_noise(batch.latents, draw.noise, sigma_hi)
        target = self.target_of(batch, draw, cond, x_hi)
        out = self.student(x_hi, sigma_hi, cond, heatmaps=batch.heatmaps if draw.tracks else None,
                           control_scale=self.control_scale).output
        estimate = edm.consistency_denoised(x_hi, out, sigma_hi, self.d.sigma_min)
        loss = pseudo_huber(estimate, target, self.d.huber_c, self.loss_frames)
        if self.adversary is None:
            return loss, sigma_hi
        judged = (estimate if self.d.adversarial_on == "grid" else
                  self.one_step_sample(batch, draw, cond))
        adversarial = self.adversary.generator_loss(judged, batch.latents, cond,
                                                    draw.adversarial)
        self._parts.setdefault("consistency", []).append(loss.detach().mean().item())
        self._parts.setdefault("adv/g_loss", []).append(adversarial.detach().mean().item())
        return loss + self.d.adversarial_weight * adversarial, sigma_hi

    def one_step_sample(self, batch: EncodedBatch, draw: ConsistencyDraw,
                        cond: C.FramerConditioning) -> torch.Tensor:
        """The student's estimate from x = x₀ + σ_max·ε — what the turbo sampler returns at one
        step (its first σ is the grid's σ_max), with gradients."""
        sigma = self.sigmas[:1].to(batch.latents.device).expand(batch.latents.shape[0])
        x = edm.add_noise(batch.latents, draw.adversarial.start, sigma)
        out = self.student(x, sigma, cond, heatmaps=batch.heatmaps if draw.tracks else None,
                           control_scale=self.control_scale).output
        return edm.consistency_denoised(x, out, sigma, self.d.sigma_min)

    @torch.no_grad()
    def update_target(self) -> None:
        """θ⁻ ← μ·θ⁻ + (1 − μ)·θ after each optimizer step."""
        if self.target is not None:
            for n, p in self.lora.items():
                self.target[n].lerp_(p.detach(), 1 - self.d.target_ema)

    def after_optimizer_step(self, accelerator) -> None:
        """The student has stepped: move the target EMA, then update the discriminator."""
        self.update_target()
        if self.adversary is not None:
            self.adversary.step(accelerator)

    def skip_step(self) -> None:
        """A skipped (non-finite) step: forget its micro-batches."""
        self._parts.clear()
        if self.adversary is not None:
            self.adversary.stash.clear()

    def metrics(self) -> dict[str, float]:
        """The step's loss parts and discriminator figures (empty without the adversary)."""
        if self.adversary is None:
            return {}
        parts = {k: sum(v) / len(v) for k, v in self._parts.items() if v}
        self._parts.clear()
        return parts | self.adversary.last


def grid_record(d: DistillConfig) -> dict:
    """The distillation's σ grid as ``turbo.json`` records it (and ``load_turbo`` reads it)."""
    return {"schedule": "karras", "num_sigmas": d.num_sigmas, "sigma_min": d.sigma_min,
            "sigma_max": d.sigma_max, "rho": d.rho, "skip": d.skip}


def sampler_grid(cfg: Config) -> dict:
    """The turbo sampler's grid for a distillation run's own validation samples: the grid its
    ``turbo.json`` will give ``load_turbo``, so validation samples as the product will."""
    return grid_settings(grid_record(cfg.distill))


def turbo_info(cfg: Config) -> dict:
    """What ``lora/turbo.json`` records: how to sample the LoRA and what it was distilled from."""
    d, (gmin, gmax) = cfg.distill, teacher_guidance(cfg)
    return {"kind": "turbo", "sampler": "turbo", "steps": d.steps, "guidance": None,
            "parametrisation": "consistency (edm.consistency_denoised)",
            "sigma_grid": grid_record(d),
            "teacher": {"model": cfg.model.pretrained, "solver": d.solver,
                        "min_guidance": gmin, "max_guidance": gmax,
                        "middle_max_guidance": d.middle_max_guidance},
            "target_ema": d.target_ema, "huber_c": d.huber_c, "track_fraction": d.track_fraction,
            "adversarial": None if d.adversarial_weight <= 0 else {
                "weight": d.adversarial_weight, "on": d.adversarial_on, "disc_lr": d.disc_lr,
                "disc_width": d.disc_width,
                "disc_sigma": [d.disc_p_mean, d.disc_p_std], "r1_weight": d.r1_weight,
                "r1_sigma": d.r1_sigma}}
