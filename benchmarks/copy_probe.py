"""Does the denoiser copy what the endpoints show? One-step denoising of real clips, per σ

For held-out clips, the true latents z are noised to z + σ·n and denoised in one conditional
pass (the endpoints encoded as the sampler encodes them, σ_c 0.02). The error of D(z + σ·n; σ)
against z is reported as the fraction of the added noise's variance that remains, split into
*static* latent pixels (no frame of the real clip moves any pixel of the cell: the answer is in
the endpoints' conditioning latents) and *moving* ones. A denoiser that copies the endpoints
drives the static fraction towards zero at every σ; one that only denoises its input keeps it
near the moving one. The column `copy_start` is what copying the start frame's latent into
every middle frame would leave (its error over σ²).

    python benchmarks/copy_probe.py --data data/signer-val --max-clips 8
    python benchmarks/copy_probe.py --tiny
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import (  # noqa: E402
    device_and_name,
    held_out_clips,
    held_out_parser,
    print_table,
    record_results,
    tiny_signer_smoke,
)
from where_it_loses import static_mask  # noqa: E402

SIGMAS = [0.05, 0.2, 0.5, 1.0, 2.0, 5.0, 20.0]


def static_latent_mask(frames: np.ndarray, factor: int) -> torch.Tensor:
    """(h, w) True where every pixel of the latent cell is static over the whole real clip."""
    still = torch.from_numpy(static_mask(frames))
    h, w = still.shape
    return still.reshape(h // factor, factor, w // factor, factor).all(dim=3).all(dim=1)


@torch.no_grad()
def probe_clip(pipe, clip, sigmas, seed: int) -> dict:
    """Remaining noise fraction per σ on the generated frames' static and moving latents."""
    from framerturbo.denoising.denoiser import FramerDenoiser
    from framerturbo.denoising.encoding import encode_target_latents, pixels_from_uint8

    g = torch.Generator().manual_seed(seed)
    pixels = pixels_from_uint8(torch.from_numpy(clip.frames).permute(0, 3, 1, 2))[None]
    z = encode_target_latents(pipe.vae, pixels)  # (1, F, 4, h, w), scaled
    noise = torch.randn((2, *pixels.shape[2:]), generator=g)
    cond = pipe.condition(pixels[:, 0], pixels[:, -1], (noise[:1], noise[1:]),
                          num_frames=z.shape[1], fps=clip.fps, motion_bucket_id=clip.motion_bucket)
    denoiser = FramerDenoiser(pipe.unet)
    still = static_latent_mask(clip.frames, pixels.shape[-1] // z.shape[-1])
    middle = slice(1, -1)
    out = {}
    copy = (z[:, :1] - z[:, middle]) ** 2  # the start latent copied into every middle frame
    for sigma in sigmas:
        n = torch.randn(z.shape, generator=g)
        d = denoiser(z + sigma * n, sigma, cond).denoised
        err = ((d - z)[:, middle] ** 2) / sigma ** 2  # (1, F-2, 4, h, w)
        out[sigma] = (err[..., still].mean().item() if still.any() else float("nan"),
                      err[..., ~still].mean().item() if (~still).any() else float("nan"),
                      ((copy / sigma ** 2)[..., still].mean().item()
                       if still.any() else float("nan")))
    return {"static_share": still.float().mean().item(), "by_sigma": out}


def main(argv=None) -> int:
    from framerturbo.sampling.pipeline import FramerPipeline

    args = held_out_parser(__doc__, max_clips=8).parse_args(argv)
    device, card = device_and_name(args.tiny)
    if args.tiny:  # random micro model, one generated signer clip
        return tiny_signer_smoke(main, 1)
    pipe = FramerPipeline.from_framer(args.model, device=device, dtype="fp32")
    record = pipe.record  # the model's framerturbo.json, read by from_framer
    results = []
    for source in args.data:
        clips, _ = held_out_clips([source], args.max_clips, record, 1)
        probes = [probe_clip(pipe, c, SIGMAS, args.seed + i) for i, c in enumerate(clips)]
        share = np.mean([pr["static_share"] for pr in probes])
        name = Path(source).name
        print(f"\n{name} ({len(clips)} clips, {share:.0%} of latent pixels static); "
              "remaining noise fraction E|D − z|² / σ² on the generated frames:")
        rows = []
        for sigma in SIGMAS:
            parts = np.array([pr["by_sigma"][sigma] for pr in probes])
            static, moving, copy = np.nanmean(parts, axis=0)
            rows.append({"data": name, "sigma": sigma, "static": static, "moving": moving,
                         "copy_start": copy})
        print_table(rows, ["sigma", "static", "moving", "copy_start"])
        results += rows
    record_results(args, "copy_probe", card, results,
                   {"model": args.model, "seed": args.seed, "max_clips": args.max_clips})
    return 0


if __name__ == "__main__":
    sys.exit(main())
