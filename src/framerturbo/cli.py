"""The ``framerturbo`` command line: thin wrappers over the Python API.

User errors (missing files, bad options) end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

EXIT_USAGE = 2


def _quiet_libraries() -> None:
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()


def _add_interpolate(sub) -> None:
    p = sub.add_parser("interpolate", help="generate the frames between a start and an end image",
                       description="Interpolate between two images with Framer.")
    p.add_argument("start", help="start frame (PNG/JPEG)")
    p.add_argument("end", help="end frame (PNG/JPEG)")
    p.add_argument("-o", "--output", required=True,
                   help="output: .mp4, .gif, or a folder name for PNG frames")
    p.add_argument("--model", required=True,
                   help="Framer folder or Hub id (unet/ [+ controlnet/]); a self-contained folder "
                        "needs no --svd. 'random-micro' = tiny model with RANDOM weights")
    p.add_argument("--svd", help="SVD-xt folder or Hub id for vae/, image_encoder/, "
                                 "feature_extractor/, scheduler/ when --model lacks them")
    p.add_argument("--num-frames", type=int, default=14, help="frames incl. both ends (14)")
    p.add_argument("--sampler", default="euler", help="euler (default) or dpm++")
    p.add_argument("--steps", type=int, help="denoising steps (euler 30, dpm++ 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0); same seed, same frames")
    p.add_argument("--guidance", type=float, nargs=2, metavar=("MIN", "MAX"), default=(1.0, 3.0),
                   help="per-frame CFG ramp (1.0 3.0); MAX <= 1 turns CFG off")
    p.add_argument("--middle-max-guidance", action="store_true",
                   help="ramp the guidance up to the middle frame and down again")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--tracks", help="trajectory JSON (see docs/quickstart.md)")
    group.add_argument("--autopilot", action="store_true",
                       help="trajectories from SIFT matches, refined while sampling")
    p.add_argument("--control-scale", type=float,
                   help="ControlNet strength (1.0 with --tracks, 0.5 with --autopilot)")
    p.add_argument("--control-steps", type=float, nargs=2, metavar=("FROM", "TO"),
                   default=(0.0, 1.0), help="fraction of steps with control (0 1)")
    p.add_argument("--height", type=int, default=320)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--fps", type=int, default=7, help="output fps; conditions the model as fps-1")
    p.add_argument("--motion-bucket", type=int, default=100, help="motion bucket id (100)")
    p.add_argument("--noise-aug", type=float, default=0.02,
                   help="endpoint noise augmentation σ (0.02)")
    p.add_argument("--decode-chunk", type=int, help="frames per VAE decode call (all)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, …")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), fp32, fp16, bf16")
    p.set_defaults(func=_run_interpolate)


def _run_interpolate(args) -> int:
    import torch

    from .models.loading import RANDOM_MICRO
    from .pipeline import FramerPipeline
    from .schedulers import canonical_name
    from .tracks import load_tracks
    from .video_io import InputError, load_image, write_frames

    out = Path(args.output)
    if out.suffix.lower() not in ("", ".mp4", ".gif"):
        raise InputError(f"{out}: unknown output type {out.suffix!r} — use .mp4, .gif, or a "
                         "folder name (PNG frames)")
    canonical_name(args.sampler)
    start, end = load_image(args.start), load_image(args.end)
    tracks = None
    if args.tracks:
        tracks = load_tracks(args.tracks)
        if tracks.image_size is None:
            tracks.image_size = start.size  # points are in start-image pixels

    t0 = time.perf_counter()
    pipe = FramerPipeline.from_framer(args.model, args.svd, device=args.device, dtype=args.dtype,
                                      controlnet=bool(args.tracks or args.autopilot))
    t_load = time.perf_counter() - t0
    pipe.check_size(args.height, args.width)
    if args.model == RANDOM_MICRO:
        print("note: --model random-micro has RANDOM weights: the output shows the pipeline "
              "working, not a real interpolation", file=sys.stderr)
    for path, img in ((args.start, start), (args.end, end)):
        if img.size != (args.width, args.height):
            print(f"warning: {path} is {img.size[0]}x{img.size[1]}; resized to "
                  f"{args.width}x{args.height}", file=sys.stderr)
    scale = args.control_scale if args.control_scale is not None else (
        0.5 if args.autopilot else 1.0)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        result = pipe(start, end, num_frames=args.num_frames, height=args.height, width=args.width,
                      num_inference_steps=args.steps, sampler=args.sampler,
                      min_guidance_scale=args.guidance[0], max_guidance_scale=args.guidance[1],
                      middle_max_guidance=args.middle_max_guidance, fps=args.fps,
                      motion_bucket_id=args.motion_bucket, noise_aug_strength=args.noise_aug,
                      tracks=tracks, autopilot=args.autopilot, control_scale=scale,
                      control_step_range=tuple(args.control_steps), generator=generator,
                      decode_chunk_size=args.decode_chunk, output_type="np")
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    t_sample = time.perf_counter() - t0
    write_frames(result.frames[0], out, fps=args.fps)
    print(f"wrote {out} ({args.num_frames} frames, {args.width}x{args.height}); "
          f"load {t_load:.1f}s, sampling {t_sample:.1f}s")
    return 0


def _add_new_model(sub) -> None:
    p = sub.add_parser("new-model", help="write a model folder with random weights",
                       description="Write a self-contained Framer folder (released layout) "
                                   "with RANDOM weights, e.g. to test a setup.")
    p.add_argument("--preset", choices=["micro"], default="micro")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run_new_model)


def _run_new_model(args) -> int:
    from .models.loading import random_micro_components, save_components

    folder = save_components(random_micro_components(seed=args.seed), args.out)
    print(f"wrote {folder} (micro Framer, random weights)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framerturbo",
        description="Fine-tune, run and evaluate Framer frame interpolation.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"framerturbo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_interpolate(sub)
    _add_new_model(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    from .models.loading import ModelNotFoundError

    try:
        return args.func(args)
    except (ValueError, ModelNotFoundError, OSError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        print(f"framerturbo: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("framerturbo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
