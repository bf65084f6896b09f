"""Training the micro model's temporal VAE for reconstruction (the first stage of the micro
recipe; the released model uses SVD-xt's VAE unchanged).

Loss: L1 + MSE on pixels of short clips decoded by the temporal decoder, plus a small KL term
that keeps the latent distribution usable for diffusion. Deterministic in (seed, step).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..core.atomic import atomic_dir
from ..core.seeding import stable_seed
from ..data.dataset import ClipDataset, ClipSettings
from ..data.sources import discover
from ..models.configs import config as model_config

logger = logging.getLogger(__name__)


def save_atomically(model, folder: Path) -> None:
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)


def train_vae(data: list[str], out: str | Path, *, steps: int = 3000, frames: int = 5,
              batch: int = 2, size: int = 64, lr: float = 1e-3, kl_weight: float = 1e-6,
              seed: int = 0, down_blocks: int = 4, progress: bool = True):
    """Train an ``AutoencoderKLTemporalDecoder`` on clips from ``data``; saves to ``out``.
    ``down_blocks`` 4 gives the released ×8 spatial factor, 3 gives ×4 (the pipeline reads the
    factor from the config)."""
    from diffusers import AutoencoderKLTemporalDecoder
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    base = model_config("micro-vae")
    vae = AutoencoderKLTemporalDecoder(**{
        **base, "sample_size": size,
        "down_block_types": base["down_block_types"][:down_blocks],
        "block_out_channels": base["block_out_channels"][:down_blocks]})
    dataset = ClipDataset(discover(data), ClipSettings(num_frames=frames, height=size,
                                                       width=size, stride=1, seed=seed))
    if len(dataset) == 0:
        raise ValueError(f"no usable clips in {data}")
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps,
                                                   pct_start=0.05)
    out = Path(out)
    bar = tqdm(range(steps), desc="vae", unit="step", disable=not progress)
    for step in bar:
        g = torch.Generator().manual_seed(stable_seed("vae", seed, step))
        idx = torch.randint(len(dataset), (batch,), generator=g).tolist()
        clips = torch.stack([dataset[(i, step)]["frames"] for i in idx])  # (B, F, 3, H, W)
        x = clips.flatten(0, 1).float() / 127.5 - 1
        posterior = vae.encode(x).latent_dist
        z = posterior.sample(generator=g)
        recon = vae.decode(z, num_frames=frames).sample
        loss = ((recon - x).abs().mean() + ((recon - x) ** 2).mean()
                + kl_weight * posterior.kl().mean())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % 500 == 0 and step + 1 < steps:
            save_atomically(vae, out)
    calibrate_scaling(vae, dataset)
    save_atomically(vae, out)
    return vae


@torch.no_grad()
def calibrate_scaling(vae, dataset: ClipDataset, clips: int = 64) -> float:
    """Set ``scaling_factor`` so that scaled latents have unit variance (as SD/SVD's 0.18215
    does for their VAE): diffusion noise levels assume data of that scale."""
    n = min(clips, len(dataset))
    frames = torch.cat([dataset[(i, 0)]["frames"] for i in range(n)]).float() / 127.5 - 1
    latents = torch.cat([vae.encode(frames[i:i + 16]).latent_dist.mode()
                         for i in range(0, len(frames), 16)])
    factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=factor)
    logger.info("VAE scaling factor set to %.5f", factor)
    return factor
