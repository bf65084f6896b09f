"""The hand finder for synthetic signer frames: a small fully convolutional net that draws one
heat-map per hand (its palm centre), trained on the signer renderer's own frames.

Why a learned finder: sign-production work reads generated signing with a pose estimator, and
MediaPipe cannot read 64×64 cartoon hands. The template matcher used before it put the hands of
*real* frames 9–11 px from the truth, so it scored the real in-between frames worse than a
cross-fade and could not measure what hand control gains (docs/sign-language.md). This net is
trained on renderer frames from seeds that no protocol uses (:data:`TRAIN_SEED` on), blurred,
noised and colour-jittered so that soft generated frames read too, with faded and cross-faded
frames whose ghost hands it must not report (:func:`ghost_weight`), and is validated on real
frames of held-out seeds. Its weights ship in ``assets/hand-finder/`` and are rebuilt by
``framerturbo train-hand-finder``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data.landmarks import PALM, ClipLandmarks, empty

TRAIN_SEED = 50_000_000  # training clips: seeds TRAIN_SEED, TRAIN_SEED + 1, …
SIZE = 64  # the frame size the net reads; other sizes are resized to it and back
THRESHOLD = 0.5  # a hand is found where its heat-map peaks at ≥ half the target's 1.0
HEATMAP_SIGMA = 1.5  # px, the target blob around each palm
FRAMES = 9  # per training clip
CHANNELS = (16, 32, 48, 64)  # the U-Net's widths, 64 → 8 px
WEIGHTS = "hand_finder.safetensors"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "assets" / "hand-finder"


def _net(channels=CHANNELS):
    """A four-level U-Net (64 → 8 px and back): the 8×8 level sees the whole figure, which
    tells the figure's right hand from its left; the 64×64 output places each palm."""
    import torch
    from torch import nn

    def block(cin, cout, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(4, cout), nn.SiLU(),
                             nn.Conv2d(cout, cout, 3, 1, 1), nn.GroupNorm(4, cout), nn.SiLU())

    class HandHeatmapNet(nn.Module):
        def __init__(self):
            super().__init__()
            c1, c2, c3, c4 = channels
            self.down = nn.ModuleList([block(3, c1), block(c1, c2, 2), block(c2, c3, 2),
                                       block(c3, c4, 2)])
            self.up = nn.ModuleList([block(c4 + c3, c3), block(c3 + c2, c2), block(c2 + c1, c1)])
            self.head = nn.Conv2d(c1, 2, 1)

        def forward(self, x):  # (B, 3, 64, 64) in [-1, 1] → (B, 2, 64, 64) heat-maps
            skips = []
            for layer in self.down:
                x = layer(x)
                skips.append(x)
            for layer, skip in zip(self.up, reversed(skips[:-1])):
                x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="nearest")
                x = layer(torch.cat([x, skip], 1))
            return self.head(x)

    return HandHeatmapNet()


def _to_input(frames: np.ndarray):
    import torch

    from ..denoising.encoding import pixels_from_uint8

    return pixels_from_uint8(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2))


def decode_peaks(heat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, 2, H, W) heat-maps → palms (F, 2, 2) in pixels (NaN where not found) and confidences
    (F, 2): each map's peak, refined to the weighted centre of its positive 3×3 neighbourhood."""
    f, hands, h, w = heat.shape
    palms, conf = np.full((f, hands, 2), np.nan), np.zeros((f, hands))
    for i in range(f):
        for hand in range(hands):
            m = heat[i, hand]
            y, x = np.unravel_index(int(np.argmax(m)), m.shape)
            if m[y, x] < THRESHOLD:
                continue
            y0, y1, x0, x1 = max(y - 1, 0), min(y + 2, h), max(x - 1, 0), min(x + 2, w)
            patch = np.clip(m[y0:y1, x0:x1], 0, None)
            yy, xx = np.mgrid[y0:y1, x0:x1]
            palms[i, hand] = [(xx * patch).sum() / patch.sum(), (yy * patch).sum() / patch.sum()]
            conf[i, hand] = min(float(m[y, x]), 1.0)
    return palms, conf


class SignerHandNet:
    """Finds the synthetic signer's palms in any frames (``detect``), generated or real."""

    def __init__(self, model):
        self.model = model.eval()

    @classmethod
    def load(cls, folder: str | Path = DEFAULT_DIR) -> "SignerHandNet":
        from safetensors.torch import load_file

        path = Path(folder) / WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no hand finder weights — rebuild them with "
                                    f"`framerturbo train-hand-finder --out {folder}`")
        config = json.loads((Path(folder) / "config.json").read_text())
        model = _net(tuple(config["channels"]))
        model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
        return cls(model)

    def heatmaps(self, frames: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model(_to_input(frames)).numpy()

    def detect(self, frames: np.ndarray, fps: float = 8.0) -> ClipLandmarks:
        import cv2

        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4:
            raise TypeError(f"the hand finder reads (F, H, W, 3) uint8 frames, got "
                            f"{frames.dtype} {frames.shape}")
        h, w = frames.shape[1:3]
        small = frames if (h, w) == (SIZE, SIZE) else np.stack(
            [cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for f in frames])
        palms, conf = decode_peaks(self.heatmaps(small))
        scale = np.array([w / SIZE, h / SIZE])  # pixel centres: (x + 0.5)·s − 0.5
        out = empty(len(frames), (w, h), fps, "signer-hand-net")
        out.hands[:, :, PALM] = (palms + 0.5) * scale - 0.5
        out.hand_conf[:] = conf
        return out


@lru_cache(maxsize=1)
def packaged_finder() -> SignerHandNet:
    """The shipped finder, loaded once per process."""
    return SignerHandNet.load(DEFAULT_DIR)


# ------------------------------------------------------------------------------------ training
def render_training_set(clips: int, seed: int = TRAIN_SEED):
    """Frames (N, 64, 64, 3) and their palms (N, 2, 2; NaN where out of view) from ``clips``
    renderer clips, alternating the base and the close-up (``signer-close``) styles."""
    from ..data.landmarks import from_signer_tracks
    from ..data.synthetic import CLOSE, SignerStyle, render_signer

    frames, palms = [], []
    for i in range(clips):
        clip = render_signer(seed + i, FRAMES, SIZE, style=CLOSE if i % 2 else SignerStyle())
        marks = from_signer_tracks(clip.tracks, (SIZE, SIZE), 8.0)
        frames.append(clip.frames)
        palms.append(np.where(marks.hand_conf[..., None] > 0, marks.hands[:, :, PALM], np.nan))
    return np.concatenate(frames), np.concatenate(palms)


def target_heatmaps(palms, size: int = SIZE):
    """(B, 2, size, size): a unit Gaussian blob at each palm in view, zeros elsewhere."""
    import torch

    grid = torch.arange(size, dtype=torch.float32)
    p = torch.as_tensor(palms, dtype=torch.float32)
    seen = torch.isfinite(p).all(-1)
    p = torch.nan_to_num(p, nan=-1e4)
    dx = (grid[None, None, None, :] - p[..., 0, None, None]) ** 2
    dy = (grid[None, None, :, None] - p[..., 1, None, None]) ** 2
    return torch.exp(-(dx + dy) / (2 * HEATMAP_SIGMA**2)) * seen[..., None, None]


def ghost_weight(opacity):
    """The target peak of a hand drawn at ``opacity``: 0 up to one half, 1 at full opacity,
    so a hand under three quarters of its contrast — a ghost — peaks below :data:`THRESHOLD`."""
    return ((opacity - 0.5) / 0.5).clamp(0, 1)


def _ghosts(x, palms, x_other, palms_other, generator):
    """Half the images stay whole; a quarter fade toward their background colour and a quarter
    blend with another frame of their clip (a cross-fade), at an opacity drawn from [0.25, 1].
    Returns the images and their target heat-maps, each hand weighted by :func:`ghost_weight`
    (a cross-time blend whose two palms lie within 6 px of each other looks like one solid
    hand, so it is faded instead)."""
    import torch

    b = x.shape[0]
    mode = torch.rand(b, generator=generator)
    gap = torch.linalg.vector_norm(torch.as_tensor(palms - palms_other), dim=-1)  # (B, 2)
    apart = torch.nan_to_num(gap, nan=1e4).ge(6.0).all(1)
    cross = (mode >= 0.75) & apart
    alpha = torch.where(mode < 0.5, torch.ones(b), 0.25 + 0.75 * torch.rand(b, generator=generator))
    background = x[:, :, :1, :1].expand_as(x)
    other = torch.where(cross[:, None, None, None], x_other, background)
    a = alpha[:, None, None, None]
    images = a * x + (1 - a) * other
    target = (ghost_weight(alpha)[:, None, None, None] * target_heatmaps(palms)
              + (ghost_weight(1 - alpha) * cross)[:, None, None, None]
              * target_heatmaps(palms_other))
    return images, target


def _degrade(x, generator):
    """Blur (σ up to 1.5 px), noise and colour jitter, drawn per image: generated frames are
    softer and shifted in colour, and the finder must still read them."""
    import torch

    b = x.shape[0]
    sigma = torch.rand(b, generator=generator) * 1.5
    radius = 3
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t[None] ** 2 / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    k = k / k.sum(1, keepdim=True)  # (B, 7); σ → 0 gives the identity
    x = x.permute(1, 0, 2, 3)  # (3, B, H, W): one depthwise kernel per image
    x = torch.nn.functional.conv2d(x, k[:, None, None, :].contiguous(), padding=(0, radius),
                                   groups=b)
    x = torch.nn.functional.conv2d(x, k[:, None, :, None].contiguous(), padding=(radius, 0),
                                   groups=b)
    x = x.permute(1, 0, 2, 3)
    gain = 1 + 0.2 * (torch.rand(b, 3, 1, 1, generator=generator) - 0.5)
    shift = 0.2 * (torch.rand(b, 3, 1, 1, generator=generator) - 0.5)
    noise = torch.randn(x.shape, generator=generator) * 0.04 * torch.rand(b, 1, 1, 1,
                                                                          generator=generator)
    return (x * gain + shift + noise).clamp(-1, 1)


def train_hand_finder(out: str | Path, steps: int = 3000, clips: int = 600, batch: int = 32,
                      lr: float = 2e-3, seed: int = TRAIN_SEED, progress: bool = True) -> dict:
    """Train the finder on ``clips`` renderer clips and write ``out``/{weights, config.json}
    (fp16, atomically). Deterministic from ``seed``; returns the config it wrote."""
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from ..core.atomic import atomic_file

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    frames, palms = render_training_set(clips, seed)
    x_all = _to_input(frames)
    model = _net()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    losses = []
    bar = tqdm(range(steps), desc="hand finder", disable=not progress)
    for _ in bar:
        idx = torch.randint(len(x_all), (batch,), generator=generator)
        other = idx - idx % FRAMES + torch.randint(FRAMES, (batch,), generator=generator)
        images, target = _ghosts(x_all[idx], palms[idx.numpy()], x_all[other],
                                 palms[other.numpy()], generator)
        pred = model(_degrade(images, generator))
        loss = torch.nn.functional.mse_loss(pred, target) * 100  # blobs are a few pixels
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"channels": list(CHANNELS), "steps": steps, "clips": clips, "batch": batch,
              "lr": lr, "seed": seed, "heatmap_sigma": HEATMAP_SIGMA, "threshold": THRESHOLD,
              "final_loss": float(np.mean(losses[-100:]))}
    with atomic_file(out / WEIGHTS) as tmp:
        save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    with atomic_file(out / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=1))
    return config
