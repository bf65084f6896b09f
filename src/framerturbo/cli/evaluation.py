"""evaluate, report."""

from __future__ import annotations

from pathlib import Path

from .common import add_model_args, load_pipeline


def register(sub) -> None:
    _add_evaluate(sub)
    _add_report(sub)
    _add_export(sub)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score interpolation of held-out clips vs. baselines",
                       description="Interpolate each clip from its first and last frame and "
                                   "compare the middle frames with the real ones (PSNR, SSIM), "
                                   "next to cross-fade and optical-flow baselines.")
    add_model_args(p)
    p.add_argument("--data", required=True, help="clips: folder, frame folders or .jsonl")
    p.add_argument("--out", default="metrics.json", help="JSON report (+ .md table beside it)")
    p.add_argument("--num-frames", type=int, default=9, help="frames per clip incl. ends (9)")
    p.add_argument("--height", type=int, default=320)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--tracks", action="store_true", help="steer with the clips' true tracks")
    p.add_argument("--sampler", default="euler", help="euler (default) or dpm++")
    p.add_argument("--steps", type=int, help="denoising steps (euler 30, dpm++ 12)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="evaluate at most this many clips")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    from ..eval.evaluate import evaluate, load_eval_clips, markdown_table, write_report

    clips = load_eval_clips(args.data, args.num_frames, args.height, args.width, args.limit)
    pipe = load_pipeline(args, controlnet=args.tracks)
    result = evaluate(pipe, clips, use_tracks=args.tracks, sampler=args.sampler,
                      steps=args.steps, seed=args.seed)
    write_report(result, Path(args.out))
    print(markdown_table(result.metrics))
    for note in result.notes:
        print(f"note: {note}")
    print(f"report: {args.out}")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="plots + samples of a training run as one HTML page")
    p.add_argument("run_dir", help="a run folder written by `framerturbo train`")
    p.add_argument("-o", "--output", help="HTML file (RUN_DIR/report.html)")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from ..tasks.report import build_report

    print(f"wrote {build_report(args.run_dir, args.output)}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a trained LoRA: peft, merged, or comfyui",
                       description="Export a LoRA (a run folder or its lora/) as a PEFT adapter, "
                                   "a merged Framer folder, or one ComfyUI safetensors file.")
    p.add_argument("run", help="run folder or LoRA folder")
    p.add_argument("--format", required=True, choices=["peft", "merged", "comfyui"])
    p.add_argument("-o", "--output", required=True,
                   help="folder (peft, merged) or .safetensors file (comfyui)")
    p.add_argument("--model", required=True, help="the base model the LoRA was trained on")
    p.add_argument("--svd", help="SVD-xt folder when --model lacks vae/ etc.")
    p.add_argument("--scale", type=float, default=1.0, help="LoRA scale to merge at (1.0)")
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from ..tasks.export import export

    print(f"wrote {export(args.run, args.format, args.output, args.model, args.svd, args.scale)}")
    return 0
