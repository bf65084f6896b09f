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
    p.add_argument("--lora", action="append", default=[], metavar="DIR[:SCALE]",
                   help="LoRA folder from `framerturbo train` (its lora/), optional scale; "
                        "repeat to stack several; scale 0 = base model")
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
    if args.lora:
        from .adapters import load_loras, parse_lora_spec

        load_loras(pipe.unet, [parse_lora_spec(x) for x in args.lora])
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
    p.add_argument("--vae", help="use this trained VAE folder instead of a random one")
    p.add_argument("--from-model", help="take unet/controlnet/... from this folder where present")
    p.add_argument("--fp16", action="store_true", help="store the weights in fp16")
    p.set_defaults(func=_run_new_model)


def _run_new_model(args) -> int:
    import torch

    from .models.loading import load_components, random_micro_components, save_components

    parts = random_micro_components(seed=args.seed)
    random_parts = {"unet", "controlnet", "vae", "image_encoder"}
    if args.from_model:
        loaded = {k: v for k, v in load_components(args.from_model, device="cpu",
                                                   dtype="fp32").items() if v is not None}
        parts |= loaded
        random_parts -= set(loaded)
    if args.vae:
        from diffusers import AutoencoderKLTemporalDecoder

        parts["vae"] = AutoencoderKLTemporalDecoder.from_pretrained(args.vae)
        random_parts.discard("vae")
    folder = save_components(parts, args.out, dtype=torch.float16 if args.fp16 else None)
    note = f" (random weights: {', '.join(sorted(random_parts))})" if random_parts else ""
    print(f"wrote {folder}{note}")
    return 0


def _add_config_args(p) -> None:
    p.add_argument("--config", help="TOML config (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="override config values, e.g. train.lr=5e-5")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config and exit")


def _load_config(args):
    from .config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(cfg.to_toml())
    return cfg


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="fine-tune Framer (LoRA or full) on your clips",
                       description="Train with the EDM objective on the sampler's conditioning. "
                                   "Also runs under `accelerate launch -m framerturbo train`.")
    _add_config_args(p)
    p.add_argument("--resume", nargs="?", const="latest",
                   help="continue from the latest checkpoint of the run (or a given folder)")
    p.add_argument("--stop-at-step", type=int,
                   help="checkpoint and stop at this step (resume later with --resume)")
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    cfg = _load_config(args)
    if args.print_config:
        return 0
    from .train.loop import train

    run = train(cfg, resume=args.resume, stop_at_step=args.stop_at_step)
    print(f"run folder: {run}")
    return 0


def _add_cache(sub) -> None:
    p = sub.add_parser("cache", help="precompute latents + CLIP tokens for training",
                       description="Build (or verify and complete) the latent cache for a config.")
    _add_config_args(p)
    p.set_defaults(func=_run_cache)


def _run_cache(args) -> int:
    cfg = _load_config(args)
    if args.print_config:
        return 0
    if not cfg.data.cache_dir:
        raise ValueError("data.cache_dir is not set — add it to the config or pass "
                         "data.cache_dir=DIR")
    from .data.cache import build_cache
    from .models.loading import load_components
    from .train.setup import make_datasets

    train_set, _ = make_datasets(cfg)
    parts = load_components(cfg.model.pretrained, cfg.model.svd or None, controlnet=False,
                            dtype="fp32" if cfg.model.base_dtype == "fp16" else cfg.model.base_dtype)
    fe = parts["feature_extractor"]
    folder = build_cache(cfg, train_set, parts["vae"], parts["image_encoder"],
                         getattr(fe, "image_mean", None), getattr(fe, "image_std", None))
    print(f"cache ready: {folder} ({len(train_set)} clips, "
          f"{len(train_set.skipped.reasons)} sources skipped)")
    return 0


def _add_check_data(sub) -> None:
    p = sub.add_parser("check-data", help="report which clips are usable for training")
    p.add_argument("data", nargs="+", help="video folders, frame folders, .jsonl manifests")
    p.add_argument("--num-frames", type=int, default=14)
    p.add_argument("--stride", type=int, default=4)
    p.add_argument("--target-fps", type=float, default=0.0)
    p.add_argument("--sampling", default="random", choices=["random", "uniform", "every-window"])
    p.add_argument("--min-side", type=int, default=64, help="smaller videos count as tiny")
    p.add_argument("--static-threshold", type=float, default=0.5,
                   help="mean grey-level change per frame below which a clip is static")
    p.add_argument("--json", default="data_report.json", help="report file (data_report.json)")
    p.set_defaults(func=_run_check_data)


def _run_check_data(args) -> int:
    import json

    from .data.check import check_source, format_table, summarise
    from .data.sources import discover
    from .video_io import atomic_path

    from tqdm.auto import tqdm

    reports = [check_source(src, args.num_frames, args.stride, args.target_fps, args.sampling,
                            args.min_side, args.static_threshold)
               for src in tqdm(discover(args.data), desc="check", unit="clip")]
    summary = summarise(reports)
    print(format_table(reports))
    print(" ".join(f"{k}={v}" for k, v in summary["counts"].items()))
    out = Path(args.json)
    tmp = atomic_path(out)
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out)
    print(f"report: {out}")
    return 0 if summary["counts"]["usable"] else EXIT_USAGE


def _add_tracks(sub) -> None:
    p = sub.add_parser("tracks", help="compute point tracks for training clips (OpenCV KLT)")
    p.add_argument("data", nargs="+", help="video folders, frame folders, .jsonl manifests")
    p.add_argument("--tracker", default="klt", help="klt, or module:function for another tracker")
    p.add_argument("--overwrite", action="store_true", help="recompute existing track files")
    p.set_defaults(func=_run_tracks)


def _run_tracks(args) -> int:
    from tqdm.auto import tqdm

    from .data.sources import default_tracks_path, discover
    from .data.tracking import load_tracker, track_video

    tracker = load_tracker(args.tracker)
    done = failed = 0
    for src in tqdm(discover(args.data), desc="tracks", unit="clip"):
        out = src.tracks or default_tracks_path(src.path)
        if out.exists() and not args.overwrite:
            continue
        try:
            track_video(src.path, out, tracker)
            done += 1
        except ValueError as e:
            print(f"warning: {e}", file=sys.stderr)
            failed += 1
    print(f"tracks written for {done} clips ({failed} failed)")
    return 0


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="write procedural clips with ground-truth tracks",
                       description="Procedural video worlds (deterministic from --seed): "
                                   "'shapes' (textured moving shapes) or 'signer' (an "
                                   "articulated figure gesturing).")
    p.add_argument("--domain", required=True, choices=["shapes", "signer"])
    p.add_argument("--n", type=int, default=16, help="number of clips (16)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-frames", type=int, default=9)
    p.add_argument("--size", type=int, default=64, help="square frame size in pixels (64)")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run_synth)


def _run_synth(args) -> int:
    from .data.synthetic import write_dataset

    paths = write_dataset(args.domain, args.n, args.out, args.num_frames, args.size, args.fps,
                          args.seed)
    print(f"wrote {len(paths)} {args.domain} clips to {args.out}")
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score interpolation of held-out clips vs. baselines",
                       description="Interpolate each clip from its first and last frame and "
                                   "compare the middle frames with the real ones (PSNR, SSIM), "
                                   "next to cross-fade and optical-flow baselines.")
    p.add_argument("--model", required=True, help="as for interpolate")
    p.add_argument("--svd")
    p.add_argument("--lora", action="append", default=[], metavar="DIR[:SCALE]")
    p.add_argument("--data", required=True, help="clips: folder, frame folders or .jsonl")
    p.add_argument("--out", default="metrics.json", help="JSON report (+ .md table beside it)")
    p.add_argument("--num-frames", type=int, default=9, help="frames per clip incl. ends (9)")
    p.add_argument("--height", type=int, default=320)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--tracks", action="store_true", help="steer with the clips' true tracks")
    p.add_argument("--sampler", default="euler")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="evaluate at most this many clips")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    from .eval.evaluate import evaluate, load_eval_clips, markdown_table, write_report
    from .pipeline import FramerPipeline
    from .schedulers import canonical_name

    canonical_name(args.sampler)
    clips = load_eval_clips(args.data, args.num_frames, args.height, args.width, args.limit)
    pipe = FramerPipeline.from_framer(args.model, args.svd, device=args.device,
                                      dtype=args.dtype, controlnet=args.tracks)
    if args.lora:
        from .adapters import load_loras, parse_lora_spec

        load_loras(pipe.unet, [parse_lora_spec(x) for x in args.lora])
    result = evaluate(pipe, clips, use_tracks=args.tracks, sampler=args.sampler,
                      steps=args.steps, seed=args.seed)
    write_report(result, Path(args.out))
    print(markdown_table(result.metrics))
    for note in result.notes:
        print(f"note: {note}")
    print(f"report: {args.out}")
    return 0


def _add_train_vae(sub) -> None:
    p = sub.add_parser("train-vae", help="train the micro model's temporal VAE (recipe stage 1)")
    p.add_argument("--data", nargs="+", required=True, help="clip folders / manifests")
    p.add_argument("--out", required=True, help="folder for the VAE (diffusers layout)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--frames", type=int, default=5, help="frames per training clip")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run_train_vae)


def _run_train_vae(args) -> int:
    from .train.vae import train_vae

    train_vae(args.data, args.out, steps=args.steps, frames=args.frames, batch=args.batch,
              size=args.size, lr=args.lr, seed=args.seed)
    print(f"wrote {args.out}")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="plots + samples of a training run as one HTML page")
    p.add_argument("run_dir", help="a run folder written by `framerturbo train`")
    p.add_argument("-o", "--output", help="HTML file (RUN_DIR/report.html)")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from .report import build_report

    print(f"wrote {build_report(args.run_dir, args.output)}")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the whole loop on the embedded micro model (CPU, minutes)",
                       description="Synthesise signer clips, evaluate the micro model and the "
                                   "baselines, fine-tune a LoRA, evaluate again, write GIFs, "
                                   "metrics.json and report.html.")
    p.add_argument("--out", default="demo-out", help="output folder (demo-out)")
    p.add_argument("--quick", action="store_true", help="a tiny version (under a minute)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framerturbo",
        description="Fine-tune, run and evaluate Framer frame interpolation.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"framerturbo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(sub)
    _add_interpolate(sub)
    _add_train(sub)
    _add_cache(sub)
    _add_check_data(sub)
    _add_tracks(sub)
    _add_synth(sub)
    _add_evaluate(sub)
    _add_train_vae(sub)
    _add_report(sub)
    _add_new_model(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    from .models.loading import ModelNotFoundError

    try:
        return args.func(args)
    except (ValueError, ModelNotFoundError, OSError, FloatingPointError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        print(f"framerturbo: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("framerturbo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
