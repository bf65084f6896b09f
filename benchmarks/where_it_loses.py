"""Where a model's in-betweens lose to cross-fade: the error split into static and moving pixels

A pixel is *static* when no frame of the real clip differs from its first frame by 12 or more
(of 255) in any channel — background, torso, whatever the clip never moves; the rest is
*moving*. For each row the mean squared error (0–255 scale) and the mean of the SSIM map over
each part of the generated frames, next to cross-fade (which reproduces static pixels exactly)
and the model's VAE round trip of the real frames (the floor any sample of the model sits on).
A model that loses on static pixels fails to copy what the endpoints already show; one that
loses only on moving pixels is drawing motion elsewhere than the truth (which cross-fade's
average never does). ``detail`` is the generated frames' fine detail over the real ones'
(``eval.metrics.detail_ratio``): PSNR and SSIM reward a blurred mean, so a sampler chosen on them
is read beside it.

    python benchmarks/where_it_loses.py --data data/signer-val --max-clips 24 \\
        --rows dpm++:12 euler:30 euler:15:1-3    # the model's guidance ramp unless given
    python benchmarks/where_it_loses.py --keep-static 0   # the UNet alone, no static paste-back
    python benchmarks/where_it_loses.py --tiny     # smoke test: random micro model, 2 clips
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import (  # noqa: E402
    device_and_name,
    held_out_clips,
    held_out_parser,
    print_table,
    record_results,
    tiny_signer_smoke,
    vae_round_trip,
)

COLUMNS = ["row", "psnr", "ssim", "detail", "static_mse", "far_static_mse", "moving_mse",
           "static_ssim", "moving_ssim"]
STILL = 12  # a pixel whose channels all stay within this of the first frame is static
FAR = 8  # static pixels farther than this (px) from any moving one: no motion nearby to misplace


def static_mask(frames: np.ndarray) -> np.ndarray:
    """(H, W) True where no frame differs from the first by STILL or more in any channel."""
    change = np.abs(frames.astype(np.int16) - frames[:1].astype(np.int16)).max(axis=(0, 3))
    return change < STILL


def split_scores(pred: np.ndarray, truth: np.ndarray, still: np.ndarray) -> dict:
    """MSE and SSIM-map means over the static and the moving pixels of (F, H, W, 3) frames, and
    the MSE over the static pixels far from motion (a model that draws its motion elsewhere
    than the truth spoils static pixels next to it; far from it only copying is asked for)."""
    from scipy.ndimage import distance_transform_edt
    from skimage.metrics import structural_similarity

    err = ((pred.astype(np.float64) - truth.astype(np.float64)) ** 2).mean(axis=-1)
    ssim = np.stack([structural_similarity(p, t, channel_axis=-1, data_range=255, full=True)[1]
                     .mean(axis=-1) for p, t in zip(pred, truth)])
    mask = np.broadcast_to(still, err.shape)
    far = np.broadcast_to(distance_transform_edt(still) > FAR, err.shape)
    part = lambda values, m: float(values[m].mean()) if m.any() else float("nan")  # noqa: E731
    return {"static_mse": part(err, mask), "far_static_mse": part(err, far),
            "moving_mse": part(err, ~mask),
            "static_ssim": part(ssim, mask), "moving_ssim": part(ssim, ~mask)}


def parse_row(spec: str, record) -> tuple[str, int, tuple[float, float]]:
    """``SAMPLER:STEPS`` or ``SAMPLER:STEPS:GMIN-GMAX`` (the guidance ramp; default: the model's
    own, its framerturbo.json)."""
    sampler, steps, *rest = spec.split(":")
    guidance = tuple(float(g) for g in rest[0].split("-")) if rest else record.guidance
    if len(guidance) != 2:
        raise SystemExit(f"--rows {spec}: the guidance is GMIN-GMAX, e.g. euler:10:1-2")
    return sampler, int(steps), guidance


def table(pipe, clips, rows: list[tuple[str, int, tuple[float, float]]], seed: int,
          keep_static: float | None = None) -> list[dict]:
    from framerturbo.eval.evaluate import score_baselines, score_model
    from framerturbo.eval.metrics import detail_ratio, frame_metrics

    videos = {}
    for sampler, steps, guidance in rows:
        label = f"{sampler}-{steps} g{guidance[0]:g}-{guidance[1]:g}"
        videos[label] = score_model(pipe, clips, label, sampler=sampler, steps=steps,
                                    guidance=guidance, seed=seed,
                                    keep_static=keep_static).outputs[label]
    videos["cross-fade"] = score_baselines(clips).outputs["crossfade"]
    videos["VAE round trip"] = [vae_round_trip(pipe.vae, c.frames) for c in clips]
    out = []
    for label, outputs in videos.items():
        per_clip = []
        for video, clip in zip(outputs, clips):
            truth = clip.frames[1:-1]
            per_clip.append(frame_metrics(video[1:-1], truth)
                            | {"detail": detail_ratio(video[1:-1], truth)}
                            | split_scores(video[1:-1], truth, static_mask(clip.frames)))
        out.append({"row": label, **{k: float(np.nanmean([c[k] for c in per_clip]))
                                     for k in COLUMNS[1:]}})
    return out


def main(argv=None) -> int:
    from framerturbo.models.record import read_record
    from framerturbo.models.schedulers import DEFAULT_STEPS, canonical_name
    from framerturbo.sampling.pipeline import FramerPipeline

    p = held_out_parser(__doc__, max_clips=24)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--rows", nargs="+", default=None,
                   help="SAMPLER:STEPS[:GMIN-GMAX] per model row (default: the model's own "
                        "sampler and steps, and euler:30; the guidance ramp is the model's "
                        "unless given)")
    p.add_argument("--keep-static", type=float, metavar="TAU",
                   help="the pipeline's static-pixel tolerance for every row (default: the "
                        "model's; 0: the UNet's frames alone)")
    args = p.parse_args(argv)
    device, card = device_and_name(args.tiny)
    if args.tiny:  # random micro model, two generated signer clips
        return tiny_signer_smoke(main, 2, "--rows", "euler:2")
    record = read_record(args.model)
    own = record.steps or DEFAULT_STEPS[canonical_name(record.sampler)]
    specs = args.rows or [f"{record.sampler}:{own}", "euler:30"]
    rows = [parse_row(spec, record) for spec in specs]
    pipe = FramerPipeline.from_framer(args.model, device=device, dtype="fp32")
    pipe.set_progress_bar_config(disable=True)
    results = []
    for source in args.data:
        clips, _ = held_out_clips([source], args.max_clips, record, args.stride)
        still = np.mean([static_mask(c.frames).mean() for c in clips])
        name = Path(source).name
        print(f"\n{name} ({len(clips)} clips, {still:.0%} of pixels static):")
        found = [{"data": name, **r}
                 for r in table(pipe, clips, rows, args.seed, args.keep_static)]
        print_table(found, COLUMNS)
        results += found
    record_results(args, "where_it_loses", card, results,
                   {"model": args.model, "seed": args.seed, "max_clips": args.max_clips,
                    "keep_static": record.keep_static if args.keep_static is None
                    else args.keep_static})
    return 0


if __name__ == "__main__":
    sys.exit(main())
