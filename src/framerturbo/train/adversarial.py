"""Adversarial refinement of the turbo distillation: sharper 1–2-step samples (SF-V / OSV style).

A consistency model's one-step estimate is a blurred average; published one-step video models
add a discriminator. Here it is latent and cheap, because the teacher is already in memory:

    x_d   = x + σ_d·ε_d                       σ_d ~ LogNormal(disc_p_mean, disc_p_std), one per
                                              clip, the same σ_d and ε_d for real and generated
    φ(x)  = the frozen base UNet's encoder features of x_d (LoRA off; conv_in → down blocks →
            mid block, with the clip's own conditioning), one map per resolution level + mid
    D(x)  = per level: a spatial head (patch logits per frame) and a temporal head (logits per
            frame from the pooled features, mixed along time) — small trainable convolutions

    generator (student):  L = consistency + λ·mean(−D(x̂))                    (hinge generator loss)
    discriminator:        mean(relu(1 − D(x₀))) + mean(relu(1 + D(sg x̂)))
                          + r1_weight·mean((D(x₀ + σ_r·n) − D(x₀))²)        (approximate R1)

x̂ is what ``distill.adversarial_on`` names: "grid", the student's consistency estimate
f_θ(x_hi, σ_n) the distillation already computes; "max", one more student pass from σ_max,
f_θ(x₀ + σ_max·ε', σ_max) — the 1-step sample (docs/turbo.md measures both). x₀ is the clip's
real latents. The discriminator steps once per optimizer step, after the student, on the step's
micro-batches (its own AdamW, gradients averaged across processes). Every draw comes from the
step's generator, and the heads and their optimizer are in the checkpoint, so resume is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core import edm
from ..denoising import conditioning as C
from ..models.adapters import adapters_off
from ..models.encoder import prepare_encoder_inputs, run_down_path, run_mid_block

WEIGHTS = "discriminator.safetensors"  # in a checkpoint folder, next to target.safetensors


@dataclass
class Judged:
    """One micro-batch kept for the discriminator's update: the real latents, the generated
    sample, the frozen encoder's features of the latter (computed once, in the generator's
    pass), the conditioning and the draw."""

    real: torch.Tensor
    fake: torch.Tensor
    fake_features: list[torch.Tensor]
    cond: C.FramerConditioning
    draw: AdversarialDraw


@dataclass
class AdversarialDraw:
    """The discriminator's noise for one micro-batch: σ_d (B,), ε_d, the R1 perturbation, and
    the ε of the student's 1-step sample (``adversarial_on = "max"``)."""

    sigma: torch.Tensor
    noise: torch.Tensor
    perturbation: torch.Tensor
    start: torch.Tensor

    @classmethod
    def draw(cls, latents: torch.Tensor, generator: torch.Generator, p_mean: float,
             p_std: float) -> AdversarialDraw:
        sigma = edm.sample_sigmas(latents.shape[0], p_mean, p_std, generator=generator)
        noise = torch.randn(latents.shape, generator=generator)
        perturbation = torch.randn(latents.shape, generator=generator)
        start = torch.randn(latents.shape, generator=generator)
        return cls(*(t.to(latents.device) for t in (sigma, noise, perturbation, start)))


def level_features(unet, x: torch.Tensor, sigma: torch.Tensor, cond: C.FramerConditioning,
                   dtype: torch.dtype | None = None) -> list[torch.Tensor]:
    """The encoder half of ``unet`` at (x, σ): each down block's output before its downsampler,
    then the mid block's, each shaped (B, F, C, h, w). The caller decides LoRA on/off and grad.
    ``dtype``: the frozen base's (diffusers' ``unet.dtype`` walks every module: a caller that
    runs this every step reads it once, as FramerDenoiser does)."""
    dtype = dtype or unet.dtype
    sample = C.unet_input(edm.scale_input(x, sigma.to(x)), cond).to(dtype)
    inputs = prepare_encoder_inputs(unet, sample, edm.c_noise(sigma),
                                    cond.image_embeddings.to(dtype),
                                    cond.added_time_ids.to(dtype))
    hidden, skips = run_down_path(unet, unet.conv_in(sample.flatten(0, 1)), inputs)
    features, start = [], 1  # skips[0] is conv_in's output
    for block in unet.down_blocks:
        count = len(block.resnets) + (1 if block.downsamplers is not None else 0)
        features.append(skips[start + len(block.resnets) - 1])
        start += count
    features.append(run_mid_block(unet, hidden, inputs))
    b, f = inputs.batch_size, inputs.num_frames
    return [h.reshape(b, f, *h.shape[1:]).float() for h in features]


class FeatureHeads(nn.Module):
    """One spatial and one temporal head per feature level; ``forward`` returns every logit map."""

    def __init__(self, channels: list[int], width: int = 64):
        super().__init__()

        def spatial(c):
            return nn.Sequential(nn.Conv2d(c, width, 3, padding=1),
                                 nn.GroupNorm(min(8, width), width), nn.SiLU(),
                                 nn.Conv2d(width, 1, 1))

        def temporal(c):
            return nn.Sequential(nn.Conv1d(c, width, 3, padding=1), nn.SiLU(),
                                 nn.Conv1d(width, 1, 1))

        self.spatial = nn.ModuleList(spatial(c) for c in channels)
        self.temporal = nn.ModuleList(temporal(c) for c in channels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        logits = []
        for h, s, t in zip(features, self.spatial, self.temporal):
            b, f = h.shape[:2]
            logits.append(s(h.flatten(0, 1)).reshape(b, -1))  # (B, F·h·w) patch logits
            logits.append(t(h.mean(dim=(3, 4)).transpose(1, 2)).reshape(b, -1))  # (B, F)
        return logits


def feature_channels(unet) -> list[int]:
    """Channels of :func:`level_features`' maps: each down block's, then the mid block's."""
    widths = list(unet.config.block_out_channels)
    return widths + [widths[-1]]


def hinge_discriminator(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample hinge loss, mean over every logit of every head, shape (B,)."""
    terms = [F.relu(1 - r).mean(dim=1) + F.relu(1 + g).mean(dim=1) for r, g in zip(real, fake)]
    return torch.stack(terms).mean(dim=0)


def hinge_generator(fake: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample −mean D(generated), shape (B,)."""
    return -torch.stack([g.mean(dim=1) for g in fake]).mean(dim=0)


def r1_penalty(clean: list[torch.Tensor], perturbed: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample mean squared logit change under a small input perturbation (R1 without the
    double backward), shape (B,)."""
    return torch.stack([((p - c) ** 2).mean(dim=1) for c, p in zip(clean, perturbed)]).mean(dim=0)


class Adversary:
    """The discriminator of one distillation run: heads, optimizer, and the step's stash of
    :class:`Judged` micro-batches that its update reads."""

    def __init__(self, cfg, unet, seed: int, device):
        from ..core.seeding import stable_seed

        self.d, self.unet = cfg.distill, unet
        with torch.random.fork_rng(devices=[]):  # heads drawn from the run's seed only
            torch.manual_seed(stable_seed("discriminator", seed))
            self.heads = FeatureHeads(feature_channels(unet), self.d.disc_width).to(device)
        self.optimizer = torch.optim.AdamW(self.heads.parameters(), lr=self.d.disc_lr,
                                           betas=(0.0, 0.99), weight_decay=0.0)
        self.stash: list[Judged] = []
        self.last: dict[str, float] = {}
        self.dtype = unet.dtype  # read once: level_features runs three times per micro-batch

    def draw(self, latents: torch.Tensor, generator: torch.Generator) -> AdversarialDraw:
        return AdversarialDraw.draw(latents, generator, self.d.disc_p_mean, self.d.disc_p_std)

    def features(self, x0: torch.Tensor, draw: AdversarialDraw, cond, extra=None):
        """φ at x0 + σ_d·ε_d (+ ``extra``), on the frozen base model (every LoRA layer off)."""
        x = edm.add_noise(x0 if extra is None else x0 + extra, draw.noise, draw.sigma)
        with adapters_off(self.unet):
            return level_features(self.unet, x, draw.sigma, cond, self.dtype)

    def generator_loss(self, estimate: torch.Tensor, real: torch.Tensor, cond,
                       draw: AdversarialDraw) -> torch.Tensor:
        """−D(estimate) per sample (gradients flow into the student's estimate, not the heads),
        and the micro-batch is kept for the discriminator's update."""
        features = self.features(estimate, draw, cond)
        self.heads.requires_grad_(False)
        try:
            loss = hinge_generator(self.heads(features))
        finally:
            self.heads.requires_grad_(True)
        self.keep(real, estimate, cond, draw, [f.detach() for f in features])
        return loss

    def keep(self, real: torch.Tensor, fake: torch.Tensor, cond, draw: AdversarialDraw,
             fake_features: list[torch.Tensor] | None = None) -> None:
        """Stash a micro-batch for the next :meth:`step` (the generated sample's features are
        computed here unless the caller has them)."""
        if fake_features is None:
            with torch.no_grad():
                fake_features = self.features(fake, draw, cond)
        self.stash.append(Judged(real.detach(), fake.detach(), fake_features, cond, draw))

    def step(self, accelerator) -> None:
        """One discriminator update on the stashed micro-batches, then the stash is cleared."""
        if not self.stash:
            return
        self.optimizer.zero_grad(set_to_none=True)
        n = len(self.stash)
        totals = {"adv/d_loss": 0.0, "adv/r1": 0.0, "adv/d_real": 0.0, "adv/d_fake": 0.0}
        for kept in self.stash:
            with torch.no_grad():
                f_real = self.features(kept.real, kept.draw, kept.cond)
                f_pert = (self.features(kept.real, kept.draw, kept.cond,
                                        self.d.r1_sigma * kept.draw.perturbation)
                          if self.d.r1_weight > 0 else None)
            l_real, l_fake = self.heads(f_real), self.heads(kept.fake_features)
            loss = hinge_discriminator(l_real, l_fake).mean()
            r1 = (r1_penalty(l_real, self.heads(f_pert)).mean() if f_pert is not None
                  else torch.zeros(()))
            ((loss + self.d.r1_weight * r1) / n).backward()
            for key, value in (("adv/d_loss", loss), ("adv/r1", r1),
                               ("adv/d_real", torch.cat(l_real, 1).mean()),
                               ("adv/d_fake", torch.cat(l_fake, 1).mean())):
                totals[key] += value.item() / n
        if accelerator.num_processes > 1:  # every rank's heads stay identical
            for p in self.heads.parameters():
                p.grad = accelerator.reduce(p.grad, reduction="mean")
        self.optimizer.step()
        self.stash.clear()
        self.last = totals

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(head weights, optimizer state) for a checkpoint."""
        return ({k: v.detach().cpu() for k, v in self.heads.state_dict().items()},
                self.optimizer.state_dict())

    def load_state(self, weights: dict[str, torch.Tensor], optimizer_state: dict) -> None:
        self.heads.load_state_dict(weights)
        self.optimizer.load_state_dict(optimizer_state)
