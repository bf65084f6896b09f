"""Choosing keep_static's τ: each clip sampled once with it off, then kept at every τ given

The model's own sampler and guidance, one sample per clip (keep_static off); each τ then applies
`sampling/keep_static.py` to those same frames (it runs after the decode, so this equals sampling
at that τ) and scores them as `where_it_loses.py` does: PSNR, SSIM, detail, and the error on
static and moving pixels — beside cross-fade. A τ that pastes the fade over what the sample drew
shows as moving-pixel SSIM falling below the UNet's own (τ = 0) row. Run it on tuning clips:

    python benchmarks/keep_static.py --data data/signer-tune data/photos-tune data/shapes-tune \\
        --max-clips 12 --taus 0 0.1 0.2 0.3 0.5 0.7
    python benchmarks/keep_static.py --tiny
"""

from __future__ import annotations

import sys
import warnings
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
from where_it_loses import COLUMNS, split_scores, static_mask  # noqa: E402


def kept(video: np.ndarray, frames: np.ndarray, tau: float) -> np.ndarray:
    """A uint8 (F, H, W, 3) sample with its static pixels kept against the clip's endpoints."""
    from framerturbo.media.files import to_uint8
    from framerturbo.sampling.keep_static import keep_static

    def as01(a):  # (…, H, W, 3) uint8 → (1, …, 3, H, W) in [0, 1]
        return torch.from_numpy(a).double().movedim(-1, -3)[None] / 255

    out = keep_static(as01(video), as01(frames[0]), as01(frames[-1]), tau)
    return to_uint8(out[0].movedim(-3, -1).numpy())


def scores(videos, clips) -> dict:
    from framerturbo.eval.metrics import detail_ratio, frame_metrics

    per_clip = [frame_metrics(v[1:-1], c.frames[1:-1])
                | {"detail": detail_ratio(v[1:-1], c.frames[1:-1])}
                | split_scores(v[1:-1], c.frames[1:-1], static_mask(c.frames))
                for v, c in zip(videos, clips)]
    with warnings.catch_warnings():  # a part no clip has (far-static pixels in a pan): nan
        warnings.simplefilter("ignore", RuntimeWarning)
        return {k: float(np.nanmean([c[k] for c in per_clip])) for k in COLUMNS[1:]}


def main(argv=None) -> int:
    from framerturbo.eval.evaluate import score_baselines, score_model
    from framerturbo.sampling.pipeline import FramerPipeline

    p = held_out_parser(__doc__, max_clips=12)
    p.add_argument("--taus", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5, 0.7])
    args = p.parse_args(argv)
    device, card = device_and_name(args.tiny)
    if args.tiny:  # random micro model, two generated signer clips
        return tiny_signer_smoke(main, 2, "--taus", "0", "0.5")
    pipe = FramerPipeline.from_framer(args.model, device=device, dtype="fp32")
    pipe.set_progress_bar_config(disable=True)
    record = pipe.record
    results = []
    for source in args.data:
        clips, _ = held_out_clips([source], args.max_clips, record, 1)
        samples = score_model(pipe, clips, "model", sampler=record.sampler, steps=record.steps,
                              guidance=record.guidance, seed=args.seed,
                              keep_static=0.0).outputs["model"]
        rows = [{"row": "cross-fade",
                 **scores(score_baselines(clips).outputs["crossfade"], clips)}]
        rows += [{"row": f"τ {tau:g}",
                  **scores([kept(v, c.frames, tau) for v, c in zip(samples, clips)], clips)}
                 for tau in args.taus]
        name = Path(source).name
        print(f"\n{name} ({len(clips)} clips):")
        print_table(rows, COLUMNS)
        results += [{"data": name, **r} for r in rows]
    record_results(args, "keep_static", card, results,
                   {"model": args.model, "seed": args.seed, "max_clips": args.max_clips})
    return 0


if __name__ == "__main__":
    sys.exit(main())
