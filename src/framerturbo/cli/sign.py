"""landmarks, sentence, hand-eval, train-hand-finder: the sign-language commands
(docs/sign-language.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import (EXIT_USAGE, STEPS, add_guidance_arg, add_keep_static_arg, add_turbo_arg,
                     parse_turbo_spec)
from .inference import add_stitch_options, check_stitch_inputs, run_stitch_clips


def register(sub) -> None:
    _add_landmarks(sub)
    _add_sentence(sub)
    _add_hand_eval(sub)
    _add_train_hand_finder(sub)


def _add_landmarks(sub) -> None:
    p = sub.add_parser("landmarks", help="per-frame hand and arm landmarks beside each clip",
                       description="Write CLIP.landmarks.json (hands: 21 points with handedness; "
                                   "pose: shoulders, elbows, wrists; source pixels with "
                                   "confidences) beside each clip; clips whose bytes are "
                                   "unchanged are skipped.")
    p.add_argument("videos", nargs="+", metavar="VIDEO|DIR", help="clips or folders of clips")
    p.add_argument("--source", choices=["mediapipe", "ground-truth"], default="mediapipe",
                   help="mediapipe (the [sign] extra) or ground-truth (synthetic signer clips)")
    p.add_argument("--refresh", action="store_true", help="recompute cached landmarks")
    p.set_defaults(func=_run_landmarks)


def _run_landmarks(args) -> int:
    from ..data.landmarks import get_source, landmarks_for_video, landmarks_path
    from ..media.video import VIDEO_EXTS

    source = get_source(args.source)
    videos = []
    for item in map(Path, args.videos):
        if item.is_dir():
            videos += sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_EXTS)
        elif item.is_file():
            videos.append(item)
        else:
            raise ValueError(f"{item}: no such file or folder")
    if not videos:
        raise ValueError(f"{' '.join(args.videos)}: no video clips found")
    done = cached = failed = 0
    for video in videos:
        try:
            marks, hit = landmarks_for_video(video, source, refresh=args.refresh)
        except ValueError as e:
            if "pip install" in str(e):
                raise
            print(f"warning: {e}", file=sys.stderr)
            failed += 1
            continue
        cached += hit
        done += not hit
        hands = (marks.hand_conf > 0).mean(axis=0)
        print(f"{landmarks_path(video)}: {len(marks)} frames, left hand in {hands[0]:.0%}, "
              f"right hand in {hands[1]:.0%}" + (" (cached)" if hit else ""))
    print(f"landmarks: {done} written, {cached} unchanged, {failed} failed")
    return EXIT_USAGE if failed else 0


def _add_sentence(sub) -> None:
    p = sub.add_parser("sentence", help="a signed sentence from glosses and a lexicon of clips",
                       description="Look up each gloss in --lexicon (a folder of clips named by "
                                   "gloss, or a JSONL of {\"gloss\", \"path\"}) and stitch the "
                                   "clips; takes every option of `stitch`.")
    p.add_argument("glosses", help='glosses separated by spaces, e.g. "HELLO MY NAME"')
    p.add_argument("--lexicon", required=True, help="folder of GLOSS.mp4 clips or a .jsonl")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4/.gif) or folder")
    add_stitch_options(p)
    # a lexicon clip of another aspect is letterboxed, not cropped: cropping a signer cuts the
    # hands off (docs/sign-language.md, "Clips of another aspect")
    p.set_defaults(func=_run_sentence, fit="pad")


def _run_sentence(args) -> int:
    from ..tasks.sentence import resolve_glosses

    clips = resolve_glosses(args.glosses, args.lexicon)
    print("clips: " + " ".join(str(c) for c in clips))
    if len(clips) == 1:
        raise ValueError(f"a sentence needs at least two glosses — {args.glosses.strip()} alone "
                         f"is {clips[0]}, nothing to join")
    clips = [str(c) for c in clips]
    check_stitch_inputs(args, clips)
    return run_stitch_clips(args, clips)


def _add_hand_eval(sub) -> None:
    p = sub.add_parser("hand-eval", help="hand metrics of transitions on held-out synthetic "
                                         "signing (hard cut, cross-fade, flow, Framer with and "
                                         "without hand control)",
                       description="Cut transitions from continuous synthetic signer clips "
                                   "(seeds SEED … SEED+N−1) and score every row's hands: "
                                   "keypoint error, DTW-MJE, detection rate, jerk.")
    p.add_argument("--n", type=STEPS, default=8, help="transitions (8)")
    p.add_argument("--seed", type=int, default=9_000_000,
                   help="first seed (9000000: never used to train the micro model)")
    p.add_argument("--model", default="micro")
    p.add_argument("--svd")
    p.add_argument("--lora", action="append", default=[], metavar="DIR[:SCALE]",
                   help="a LoRA for the Framer rows (your signer's, from `framerturbo train`); "
                        "repeat to stack; stacks with --turbo")
    p.add_argument("--steps", type=STEPS,
                   help="denoising steps (the model's; another sampler: its own, e.g. dpm++ 12)")
    p.add_argument("--sampler", help="euler, dpm++ or turbo (default: the model's own, from its "
                                     "framerturbo.json; turbo with --turbo)")
    add_turbo_arg(p)
    add_guidance_arg(p)
    add_keep_static_arg(p)
    p.add_argument("--control-scale", type=float, default=None,
                   help="ControlNet strength of the control rows (default: the model's, from "
                        "its framerturbo.json: 1 for Framer, 2 for the micro model)")
    p.add_argument("--out", required=True, help="folder for metrics.json and report.html")
    p.set_defaults(func=_run_hand_eval, runs_on="cpu")


def _run_hand_eval(args) -> int:
    from ..eval.hand_protocol import evaluate_hand_transitions, markdown_table, write_report
    from ..models.adapters import find_lora_dir, load_loras, parse_lora_spec
    from ..models.record import (control_scale_choice, guidance_choice, keep_static_choice,
                                 read_record, sampling_choice)
    from ..models.schedulers import DEFAULT_STEPS, canonical_name
    from ..sampling.pipeline import FramerPipeline

    pipe = FramerPipeline.from_framer(args.model, args.svd, device="cpu", dtype="fp32",
                                      controlnet=True)
    pipe.set_progress_bar_config(disable=True)
    loras = [parse_lora_spec(x) for x in args.lora]
    if loras:
        load_loras(pipe, [(str(find_lora_dir(path)), scale) for path, scale in loras])
    turbo = args.turbo is not None
    if turbo:  # both Framer rows at the fast path; control is heat-maps, not adapters
        pipe.load_turbo(*parse_turbo_spec(args.turbo))
    if loras or turbo:
        pipe.fuse_adapters()
    record = read_record(args.model)
    args.sampler, steps = sampling_choice(record, args.sampler, args.steps, turbo=turbo)
    args.steps = steps or DEFAULT_STEPS[canonical_name(args.sampler)]
    guidance = guidance_choice(record, args.guidance)
    keep_static = keep_static_choice(record, args.keep_static)
    args.control_scale = control_scale_choice(record, args.control_scale)
    seeds = list(range(args.seed, args.seed + args.n))
    result = evaluate_hand_transitions(pipe, seeds, sampler=args.sampler, steps=args.steps,
                                       guidance=guidance, control_scale=args.control_scale,
                                       keep_static=keep_static)
    result["conditions"] = {"model": args.model, "seeds": [seeds[0], seeds[-1]],
                            "sampler": args.sampler, "steps": args.steps,
                            "guidance": None if canonical_name(args.sampler) == "turbo"
                            else guidance,
                            "control_scale": args.control_scale, "keep_static": keep_static,
                            "turbo": args.turbo if turbo else None, "lora": args.lora}
    metrics, page = write_report(result, args.out)
    print(markdown_table(result))
    print(f"wrote {metrics} and {page}")
    return 0


def _add_train_hand_finder(sub) -> None:
    from ..eval.hand_net import DEFAULT_DIR, TRAIN_SEED

    p = sub.add_parser("train-hand-finder",
                       help="train the net that finds the synthetic signer's hands (the hand "
                            "metrics' instrument)",
                       description="Train the hand finder on synthetic signer clips from seeds "
                                   "no protocol uses and write its weights (fp16) to OUT. The "
                                   f"package ships one in {DEFAULT_DIR.parent.name}/"
                                   f"{DEFAULT_DIR.name}/.")
    p.add_argument("--out", required=True, help="folder for hand_finder.safetensors + config.json")
    p.add_argument("--steps", type=STEPS, default=3000,
                   help="optimizer steps (3000: ≈ 9 min on 2 cores)")
    p.add_argument("--clips", type=STEPS, default=600, help="renderer clips of 9 frames (600)")
    p.add_argument("--batch", type=STEPS, default=32, help="frames per step (32)")
    p.add_argument("--seed", type=int, default=TRAIN_SEED,
                   help=f"first clip seed, and the seed of the draws ({TRAIN_SEED})")
    p.set_defaults(func=_run_train_hand_finder, runs_on="cpu")


def _run_train_hand_finder(args) -> int:
    from ..eval.hand_net import train_hand_finder

    config = train_hand_finder(args.out, steps=args.steps, clips=args.clips, batch=args.batch,
                               seed=args.seed)
    print(f"wrote {args.out} (final loss {config['final_loss']:.4f})")
    return 0
