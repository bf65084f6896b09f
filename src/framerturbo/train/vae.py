"""Training the micro model's temporal VAE for reconstruction (the first stage of the micro
recipe; the released model uses SVD-xt's VAE unchanged).

Loss: L1 + MSE on pixels of short clips decoded by the temporal decoder, plus a small KL term
that keeps the latent distribution usable for diffusion. With ``decoder_only`` (and ``init``, a
trained VAE) only the decoder trains, so the latents a UNet was trained on, and their scaling
factor, stay exactly as they were. Deterministic in (seed, step), and
resumable exactly: every ``checkpoint_every`` steps the folder ``out`` holds the VAE and
``training_state.pt`` (optimizer, schedule, step), each written atomically, and a rerun of the
same command continues from there. ``metrics.jsonl`` records the loss curve and, with
``val_data``, the held-out reconstruction PSNR/SSIM of each validation set.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..core.atomic import atomic_dir, atomic_file, check_replaceable
from ..core.seeding import stable_seed
from ..data.dataset import ClipDataset, ClipSettings
from ..data.sources import discover
from ..eval.metrics import frame_metrics
from ..media.files import to_uint8
from ..models.configs import config as model_config

logger = logging.getLogger(__name__)

STATE = "training_state.pt"
LOG = "metrics.jsonl"


def _new_vae(size: int, down_blocks: int, width: int | None):
    from ..models.vae import FramerVAE

    base = model_config("micro-vae")
    channels = base["block_out_channels"][:down_blocks]
    if width:  # the two deeper blocks' width; the first stays at 32 (full resolution is costly)
        channels = [channels[0]] + [width] * (down_blocks - 1)
    return FramerVAE(**{**base, "sample_size": size,
                        "down_block_types": base["down_block_types"][:down_blocks],
                        "block_out_channels": channels})


def _dataset(data, frames, size, seed) -> ClipDataset:
    dataset = ClipDataset(discover(data), ClipSettings(num_frames=frames, height=size,
                                                       width=size, stride=1, seed=seed))
    if len(dataset) == 0:
        raise ValueError(f"no usable clips in {data}")
    return dataset


def train_vae(data: list[str], out: str | Path, *, steps: int = 3000, frames: int = 5,
              batch: int = 2, size: int = 64, lr: float = 1e-3, kl_weight: float = 1e-6,
              seed: int = 0, down_blocks: int = 4, width: int | None = None,
              val_data: list[str] = (), val_clips: int = 8, checkpoint_every: int = 500,
              init: str | Path | None = None, decoder_only: bool = False,
              progress: bool = True):
    """Train a :class:`FramerVAE` on clips from ``data``; saves to ``out`` (resuming from it when
    it holds a training state). ``down_blocks`` 4 gives the released ×8 spatial factor, 3 gives
    ×4 (the pipeline reads the factor from the config). ``init``: start from this VAE (a VAE
    folder or a model folder with ``vae/``; its architecture wins over ``down_blocks``/
    ``width``); ``decoder_only``: freeze the encoder and keep its scaling factor."""
    from tqdm.auto import tqdm

    from ..models.vae import FramerVAE

    out = Path(out)
    check_replaceable(out, _vae_run_folder)  # before a step runs, not at the first save
    if steps < 2:
        raise ValueError(f"--steps must be at least 2 (the one-cycle schedule warms up, then "
                         f"decays), got {steps}")
    if decoder_only and init is None:
        raise ValueError("--decoder-only needs --init: the trained VAE whose encoder to keep")
    dataset = _dataset(data, frames, size, seed)
    validation = {Path(v).name: _dataset([v], 9, size, seed) for v in val_data}
    torch.manual_seed(seed)
    vae = _new_vae(size, down_blocks, width) if init is None else _load_init(init)
    state = torch.load(out / STATE, weights_only=False) if (out / STATE).exists() else None
    if state is not None:
        if state["steps"] != steps:
            raise ValueError(f"{out / STATE} is a {state['steps']}-step run; rerun with "
                             f"--steps {state['steps']} to resume, or choose a new --out")
        vae = FramerVAE.from_pretrained(out).train()  # from_pretrained returns eval mode
    if decoder_only:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    trainable = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    # warm-up over 5 % of the steps, ending at least half a step in: OneCycleLR's phases end
    # at pct·steps − 1 and steps − 1 and it divides by their lengths, so 20 steps at 5 % (a
    # zero-length warm-up) raised ZeroDivisionError
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps,
                                                   pct_start=max(0.05, 1.5 / steps))
    start = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])  # after the schedule set its first lr
        schedule.load_state_dict(state["schedule"])
        start = state["step"]
        _forget_after(out, start)
        logger.info("resuming the VAE from step %d of %d", start, steps)
    bar = tqdm(range(start, steps), desc="vae", unit="step", disable=not progress,
               initial=start, total=steps)
    losses = []
    for step in bar:
        loss = _step(vae, dataset, optimizer, step, seed, batch, frames, kl_weight,
                     decoder_only)
        schedule.step()
        losses.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}")
        done = step + 1
        if done % 50 == 0 or done == steps:
            row = {"step": done, "loss": float(np.mean(losses))}
            losses = []
            if validation and (done % checkpoint_every == 0 or done == steps):
                row |= {f"{name}/{k}": v for name, ds in validation.items()
                        for k, v in reconstruction(vae, ds, val_clips).items()}
            _log(out, row)
        if done % checkpoint_every == 0 and done < steps:
            _checkpoint(vae, optimizer, schedule, done, steps, out)
    if not decoder_only:  # a frozen encoder keeps the scale its UNet was trained at
        calibrate_scaling(vae, dataset)
    _save(vae, out)  # the finished VAE (and its curve), without a training state
    return vae


def _load_init(init: str | Path):
    from ..models.vae import FramerVAE

    folder = Path(init) / "vae" if (Path(init) / "vae" / "config.json").exists() else Path(init)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"no VAE in {init} (expected config.json there or in vae/)")
    return FramerVAE.from_pretrained(folder).train()


def _step(vae, dataset, optimizer, step, seed, batch, frames, kl_weight,
          decoder_only=False) -> float:
    g = torch.Generator().manual_seed(stable_seed("vae", seed, step))
    idx = torch.randint(len(dataset), (batch,), generator=g).tolist()
    clips = torch.stack([dataset[(i, step)]["frames"] for i in idx])  # (B, F, 3, H, W)
    x = clips.flatten(0, 1).float() / 127.5 - 1
    with torch.set_grad_enabled(not decoder_only):
        posterior = vae.encode(x).latent_dist
        z = posterior.sample(generator=g)
    recon = vae.decode(z, num_frames=frames).sample
    loss = (recon - x).abs().mean() + ((recon - x) ** 2).mean()
    if not decoder_only:
        loss = loss + kl_weight * posterior.kl().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def _checkpoint(vae, optimizer, schedule, step, steps, out: Path) -> None:
    _save(vae, out, {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                     "step": step, "steps": steps})


def _vae_run_folder(folder: Path) -> bool:
    """A folder this trainer wrote (its VAE, curve or state): what a new save may replace."""
    return any((folder / name).is_file() for name in ("config.json", LOG, STATE))


def _save(vae, out: Path, state: dict | None = None) -> None:
    """The VAE, its curve and (while training) its state, as one atomic folder replacement."""
    with atomic_dir(out, replace_if=_vae_run_folder) as tmp:
        vae.save_pretrained(tmp)
        if state is not None:
            torch.save(state, tmp / STATE)
        if (out / LOG).exists():
            (tmp / LOG).write_bytes((out / LOG).read_bytes())


def _forget_after(out: Path, step: int) -> None:
    """Drop curve rows a crashed run wrote after its last checkpoint (they are redone)."""
    if (out / LOG).exists():
        rows = [r for r in (out / LOG).read_text().splitlines() if json.loads(r)["step"] <= step]
        with atomic_file(out / LOG) as tmp:
            tmp.write_text("".join(r + "\n" for r in rows))


def _log(out: Path, row: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    old = (out / LOG).read_text() if (out / LOG).exists() else ""
    with atomic_file(out / LOG) as tmp:
        tmp.write_text(old + json.dumps(row) + "\n")


@torch.no_grad()
def reconstruction(vae, dataset: ClipDataset, clips: int = 8) -> dict[str, float]:
    """PSNR/SSIM of ``mode()`` reconstructions of the first ``clips`` clips, all frames — the
    ceiling any diffusion model over this VAE can reach."""
    scores = []
    for i in range(min(clips, len(dataset))):
        frames = dataset[(i, 0)]["frames"]
        x = frames.float() / 127.5 - 1
        recon = vae.decode(vae.encode(x).latent_dist.mode(), num_frames=len(x)).sample
        pred = to_uint8(((recon + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy())
        scores.append(frame_metrics(pred, frames.permute(0, 2, 3, 1).numpy()))
    return {k: float(np.mean([s[k] for s in scores])) for k in ("psnr", "ssim")}


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
