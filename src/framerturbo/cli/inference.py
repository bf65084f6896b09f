"""interpolate (one pair or a batch), stitch, demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import (
    EXIT_USAGE,
    FRAMES,
    MODEL_DEFAULT,
    STEPS,
    add_keep_static_arg,
    add_model_args,
    add_sampling_args,
    add_size_args,
    add_turbo_arg,
    apply_model_defaults,
    load_pipeline,
    parse_turbo_spec,
    sampling_kwargs,
    warnings_to_stderr,
)


def register(sub) -> None:
    _add_demo(sub)
    _add_interpolate(sub)
    _add_stitch(sub)
    _add_app(sub)


def _add_interpolate(sub) -> None:
    p = sub.add_parser("interpolate", help="generate the frames between a start and an end image",
                       description="Interpolate between two images with Framer, or between "
                                   "many pairs with --pairs.")
    p.add_argument("start", nargs="?", help="start frame (PNG/JPEG)")
    p.add_argument("end", nargs="?", help="end frame (PNG/JPEG)")
    p.add_argument("-o", "--output", required=True,
                   help="output: .mp4, .gif, or a folder name for PNG frames (with --pairs: "
                        "the output folder)")
    p.add_argument("--pairs", help="a folder of {id}_start/{id}_end images or a .jsonl list")
    p.add_argument("--format", choices=["mp4", "gif", "png"], default="mp4",
                   help="output format per pair with --pairs (mp4)")
    add_model_args(p)
    add_sampling_args(p)
    p.add_argument("--num-frames", type=FRAMES, help=f"frames incl. both ends {MODEL_DEFAULT}")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--tracks", help="trajectory JSON (see docs/quickstart.md)")
    group.add_argument("--autopilot", action="store_true",
                       help="trajectories from SIFT matches, refined while sampling")
    group.add_argument("--tracks-from-hands", action="store_true",
                       help="tracks for the wrists, fingertips and elbows MediaPipe finds in "
                            "both images (matched by handedness; the [sign] extra)")
    p.add_argument("--control-scale", type=float,
                   help="ControlNet strength (default: the model's with --tracks or "
                        "--tracks-from-hands, from its framerturbo.json: 1 for Framer, 2 for "
                        "the micro model; 0.5 with --autopilot)")
    p.add_argument("--control-steps", type=float, nargs=2, metavar=("FROM", "TO"),
                   default=(0.0, 1.0), help="fraction of steps with control (0 1)")
    p.add_argument("--resize", choices=["pad", "crop", "squash"], default="pad",
                   help="images of another aspect than the model's size: pad = letterboxed "
                        "and the padding cut off the output (its aspect kept, as stitch does), "
                        "crop = centre-cropped to the model's aspect, squash = stretched (pad)")
    p.set_defaults(func=_run_interpolate, precheck=_check_interpolate_inputs)


def _interpolate_pair(pipe, args, start_path, end_path, tracks_path, out: Path,
                      said: set | None = None):
    """One pair → ``out``; returns the sampling time and the output's (height, width).
    ``said``: notes already printed (a batch says each kind once, not once per pair)."""
    import torch

    from ..core.tracks import load_tracks
    from ..media.files import load_image, write_frames
    from ..sampling.framing import framing_notes

    start, end = load_image(start_path), load_image(end_path)
    tracks = None
    if getattr(args, "tracks_from_hands", False):
        tracks = _tracks_from_hands(start, end, args.num_frames)
    elif tracks_path:
        tracks = load_tracks(tracks_path)
        if tracks.image_size is None:
            tracks.image_size = start.size  # points are in start-image pixels
    notes = framing_notes(start.size[::-1], end.size[::-1], args.height, args.width,
                          args.resize)
    batch = said is not None
    for note in [n for n in notes if not batch or n not in said]:
        print(f"note: {start_path}: {note}" + (" (said once for the batch)" if batch else ""),
              file=sys.stderr)
        if batch:
            said.add(note)
    t0 = time.perf_counter()
    with warnings_to_stderr():
        result = pipe(start, end, num_frames=args.num_frames, height=args.height,
                      width=args.width, tracks=tracks, resize=args.resize,
                      autopilot=args.autopilot,
                      control_scale=args.control_scale,
                      control_step_range=tuple(args.control_steps),
                      generator=torch.Generator(device="cpu").manual_seed(args.seed),
                      output_type="np", **sampling_kwargs(args))
    elapsed = time.perf_counter() - t0
    if args.autopilot and result.tracks[0] is not None:
        print(f"note: autopilot steered by {result.tracks[0].shape[1]} tracks from SIFT "
              "matches", file=sys.stderr)
    frames = result.frames[0]  # with pad: the bars already cut off
    write_frames(frames, out, fps=args.fps)
    return elapsed, frames.shape[1:3]


def _tracks_from_hands(start, end, num_frames: int):
    """Hermite hand tracks between two photos (still: zero end velocities), in start pixels."""
    import numpy as np

    from ..data.handpaths import hand_tracks
    from ..data.landmarks import MediaPipeSource

    source = MediaPipeSource()
    a, b = (source.extract(np.asarray(img)[None], video=False) for img in (start, end))
    plan = hand_tracks(a, b, num_frames - 2)
    for note in plan.notes:
        print(f"warning: {note}", file=sys.stderr)
    if not plan.tracks.tracks:
        print("warning: no hands found in both images: interpolating without tracks",
              file=sys.stderr)
        return None
    print(f"hand tracks: {len(plan.tracks.tracks)} (wrists, fingertips, elbows of the hands "
          "found in both images)", file=sys.stderr)
    return plan.tracks


def _check_interpolate_inputs(args) -> None:
    """Every input and the output checked before the model libraries load (seconds): a typo
    in a path is one line at once. ``main`` runs it before ``_run_interpolate``."""
    from ..media.files import InputError, check_writable, load_image

    if args.pairs:
        return
    if not (args.start and args.end):
        if args.turbo and Path(args.turbo.rsplit(":", 1)[0]).is_file():
            raise InputError(f"--turbo took {args.turbo} as its LoRA folder: put a bare --turbo "
                             "after START END (or write --turbo= before them)")
        raise InputError("give START and END images, or --pairs DIR|LIST.jsonl")
    out = Path(args.output)
    if out.suffix.lower() not in ("", ".mp4", ".gif"):
        raise InputError(f"{out}: unknown output type {out.suffix!r} — use .mp4, .gif, or a "
                         "folder name (PNG frames)")
    check_writable(out)  # fail fast, before loading the model
    load_image(args.start), load_image(args.end)
    if args.tracks_from_hands:
        from ..data.landmarks import require_mediapipe

        require_mediapipe()
    if args.tracks:
        from ..core.tracks import load_tracks

        load_tracks(args.tracks)


def _run_interpolate(args) -> int:
    apply_model_defaults(args)
    if args.pairs:
        return _run_batch(args)
    out = Path(args.output)
    t0 = time.perf_counter()
    pipe = load_pipeline(args, controlnet=bool(args.tracks or args.autopilot
                                               or args.tracks_from_hands), notice=True, fuse=True)
    t_load = time.perf_counter() - t0
    t_sample, (height, width) = _interpolate_pair(pipe, args, args.start, args.end, args.tracks,
                                                  out)
    print(f"wrote {out} ({args.num_frames} frames, {width}x{height}); "
          f"load {t_load:.1f}s, sampling {t_sample:.1f}s")
    return 0


def _run_batch(args) -> int:
    from ..tasks.batch import discover_pairs, run_batch

    pairs, problems = discover_pairs(args.pairs)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not pairs:
        raise ValueError(f"{args.pairs}: no start/end pairs found")
    any_tracks = (args.autopilot or args.tracks or args.tracks_from_hands
                  or any(p.tracks for p in pairs))
    pipe = load_pipeline(args, controlnet=bool(any_tracks), notice=True, fuse=True)
    pipe.set_progress_bar_config(disable=True)
    said: set[str] = set()
    summary = run_batch(
        lambda pair, out: _interpolate_pair(pipe, args, pair.start, pair.end,
                                            pair.tracks or args.tracks, out, said),
        pairs, args.output, args.format)
    for pid, reason in summary.failed.items():
        print(f"failed: {pid}: {reason}", file=sys.stderr)
    print(summary.line() + (f", {len(problems)} not understood (the warnings above)"
                            if problems else ""))
    return EXIT_USAGE if summary.failed or problems else 0


def _add_stitch(sub) -> None:
    p = sub.add_parser("stitch", help="join clips with generated transitions",
                       description="Join clips with N generated frames between each pair "
                                   "(last usable frame → first usable frame of the next).")
    p.add_argument("clips", nargs="+", help="video clips, in order")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4/.gif) or folder")
    add_stitch_options(p)
    p.set_defaults(func=_run_stitch, precheck=_check_stitch)


def _frames_or_auto(value: str):
    if value == "auto":
        return value
    try:
        frames = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of frames or 'auto'") \
            from None
    if frames < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (or 'auto'), got {value}")
    return frames


def add_stitch_options(p) -> None:
    """Everything `stitch` takes besides its clips and output (``sentence`` shares it)."""
    p.add_argument("--transition-frames", type=_frames_or_auto, default=12,
                   help="new frames between consecutive clips (12), or 'auto': the hands' "
                        "travel over the signing speed, clamped to --auto-range")
    p.add_argument("--auto-range", type=STEPS, nargs=2, metavar=("MIN", "MAX"), default=(4, 24),
                   help="bounds of --transition-frames auto (4 24)")
    p.add_argument("--trim", choices=["none", "static", "hands"], default=None,
                   help="drop head/tail frames: static = motionless (grey level), hands = both "
                        "hands at rest (low and still, or unseen)")
    p.add_argument("--trim-static", action="store_true", help="same as --trim static")
    p.add_argument("--trim-threshold", type=float, default=0.5,
                   help="mean grey-level change per frame below which a frame counts as static")
    p.add_argument("--control", choices=["none", "hands"], default="none",
                   help="hands = steer each transition along the hands' paths (ControlNet)")
    p.add_argument("--control-scale", type=float, default=None,
                   help="ControlNet strength with --control hands (default: the model's, from "
                        "its framerturbo.json: 1 for Framer, 2 for the micro model)")
    p.add_argument("--landmarks", choices=["mediapipe", "ground-truth", "synthetic"],
                   default="mediapipe",
                   help="landmark source for the hand options: mediapipe (the [sign] extra) or "
                        "ground-truth (= synthetic: synthetic signer clips' .tracks.npz)")
    p.add_argument("--fit", choices=["crop", "pad"], default="crop",
                   help="clips of another aspect than the first: crop = centre-cropped to its "
                        "aspect, pad = letterboxed whole (nothing cut off: hands low in the "
                        "frame stay in view) (default: %(default)s)")
    p.add_argument("--report", action="store_true",
                   help="also write OUTPUT.metrics.json and OUTPUT.report.html: per transition, "
                        "hands found in it vs in the clips and the jerk of the hand paths "
                        "through it, for this stitch, Framer with/without hand control (the "
                        "other one generated for the report) and hard cut/cross-fade/flow "
                        "(uses --landmarks)")
    add_model_args(p)
    add_sampling_args(p)


def _stitch_plan(args) -> tuple[str, bool]:
    """The trim mode, and whether the clips' hand landmarks are needed."""
    if args.trim_static and args.trim not in (None, "static"):
        raise ValueError("give --trim or --trim-static, not both")
    trim = "static" if args.trim_static and args.trim is None else (args.trim or "none")
    low, high = args.auto_range
    if low > high:
        raise ValueError(f"--auto-range MIN MAX: MIN must not exceed MAX, got {low} {high}")
    hands = (trim == "hands" or args.control == "hands" or args.transition_frames == "auto"
             or args.report)
    return trim, hands


def check_stitch_inputs(args, clips: list[str]) -> None:
    """The options, the [sign] extra when hands are needed, at least two readable clips and a
    writable output: what :func:`run_stitch_clips` needs checked before it is called (`stitch`
    checks in its precheck, before the model libraries load; `sentence` once its glosses are
    resolved)."""
    for clip in clips:
        if Path(clip).is_dir():
            raise ValueError(f"{clip} is a folder: give its clips as files, in order "
                             f"(e.g. {Path(clip) / '*.mp4'})")
    if len(clips) < 2:
        raise ValueError(f"stitch joins clips: give at least two, got {len(clips)}")
    _, hands = _stitch_plan(args)
    if hands and args.landmarks == "mediapipe":
        from ..data.landmarks import require_mediapipe

        require_mediapipe()  # one line saying what to install
    from ..media.files import check_writable
    from ..media.video import probe

    check_writable(args.output)
    for clip in clips:
        probe(clip)


def run_stitch_clips(args, clips: list[str]) -> int:
    """`stitch` on ``clips`` (checked by :func:`check_stitch_inputs`) with the options of
    :func:`add_stitch_options`."""
    from ..tasks.stitch import stitch

    trim, hands = _stitch_plan(args)
    source = None
    if hands:
        from ..data.landmarks import get_source

        source = get_source(args.landmarks)
    fps = args.fps  # unset: transitions are conditioned on the clips' own rate
    apply_model_defaults(args)
    # the report shows Framer with and without hand control: both need the ControlNet
    pipe = load_pipeline(args, controlnet=args.control == "hands" or args.report, notice=True,
                         fuse=True)
    kwargs = sampling_kwargs(args) | {"seed": args.seed, "fps": fps}
    if args.control == "hands":
        kwargs["control_scale"] = args.control_scale
    with warnings_to_stderr():
        segments = stitch(pipe, clips, args.output,
                          transition_frames=args.transition_frames, trim=trim,
                          trim_threshold=args.trim_threshold, control=args.control,
                          landmarks=source, auto_range=tuple(args.auto_range),
                          height=args.height, width=args.width, sample_kwargs=kwargs,
                          report=args.report, fit=args.fit)
    frames = segments[-1].end_frame + 1
    joins = len(clips) - 1
    print(f"wrote {args.output} ({frames} frames: {len(clips)} clips, {joins} "
          f"transition{'' if joins == 1 else 's'}) and {args.output}.json")
    if args.report:
        out = Path(args.output)
        _print_stitch_report(out.with_name(out.name + ".metrics.json"))
    return 0


def _print_stitch_report(metrics: Path) -> None:
    import json

    from ..eval.hands import HAND_COLUMNS
    from ..eval.tables import markdown_table

    doc = json.loads(metrics.read_text())
    columns = [c for c in HAND_COLUMNS if any(c[0] in r for r in doc["rows"].values())]
    print(markdown_table(doc["rows"], columns))
    print(f"report: {metrics} and {metrics.name.replace('.metrics.json', '.report.html')}")


def _check_stitch(args) -> None:
    check_stitch_inputs(args, args.clips)


def _run_stitch(args) -> int:
    return run_stitch_clips(args, args.clips)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the whole loop on the embedded micro model (CPU, minutes)",
                       description="Synthesise signer clips, evaluate the micro model and the "
                                   "baselines, fine-tune a LoRA, evaluate again, write GIFs, "
                                   "metrics.json and report.html.")
    p.add_argument("--out", default="demo-out", help="output folder (demo-out)")
    p.add_argument("--quick", action="store_true", help="a tiny version (under a minute)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run_demo, runs_on="cpu")


def _run_demo(args) -> int:
    from ..tasks.demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0


def _add_app(sub) -> None:
    p = sub.add_parser("app", help="web UI on 127.0.0.1 (needs the [app] extra)",
                       description="Gradio app: upload two frames, click trajectory points, "
                                   "interpolate. Binds 127.0.0.1 unless --host is given.")
    p.add_argument("--model", default="micro", help="as for interpolate (default: micro)")
    p.add_argument("--svd")
    p.add_argument("--lora", action="append", default=[], metavar="[NAME=]DIR",
                   help="a LoRA the UI may select (repeatable)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--max-upload-mb", type=int, default=20, help="upload size limit (20 MB)")
    add_size_args(p, frames=True)
    p.add_argument("--steps", type=STEPS, help=f"default steps {MODEL_DEFAULT}")
    p.add_argument("--sampler", help=f"default sampler {MODEL_DEFAULT}")
    add_keep_static_arg(p)
    add_turbo_arg(p)
    p.set_defaults(func=_run_app)


def _run_app(args) -> int:
    try:
        from .app import launch
    except ImportError as e:
        raise ValueError(f"the app needs Gradio ({e.name} missing) — pip install "
                         "'framerturbo[app]'") from None
    from ..models.adapters import find_lora_dir
    from ..sampling.pipeline import FramerPipeline

    loras = {}
    for spec in args.lora:
        name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
        folder = find_lora_dir(path)
        loras[name or (folder.parent.name if folder.name == "lora" else folder.name)] = str(folder)
    from ..models.adapters import find_turbo_dir
    from ..models.record import keep_static_choice
    from ..models.schedulers import DEFAULT_STEPS, canonical_name

    record = apply_model_defaults(args)
    sampler = canonical_name(args.sampler)
    turbo = parse_turbo_spec(args.turbo) if args.turbo is not None else None
    if turbo:
        find_turbo_dir(turbo[0], args.model)  # one line before the model loads
    pipe = FramerPipeline.from_framer(args.model, args.svd, device=args.device, dtype=args.dtype)
    if turbo:
        pipe.load_turbo(*turbo)
    pipe.set_progress_bar_config(disable=False)
    print(f"serving on http://{args.host}:{args.port}")
    launch(pipe, loras, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
           defaults={"height": args.height, "width": args.width, "frames": args.num_frames,
                     "steps": args.steps or DEFAULT_STEPS[sampler], "sampler": sampler,
                     "fps": record.fps, "motion_bucket": record.motion_bucket,
                     "guidance": record.guidance,
                     "keep_static": keep_static_choice(record, args.keep_static),
                     "control_scale": record.control_scale}
           | ({"turbo_scale": turbo[1]} if turbo else {}))
    return 0
