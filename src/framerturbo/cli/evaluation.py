"""evaluate, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (MODEL_DEFAULT, STEPS, add_guidance_arg, add_keep_static_arg, add_model_args,
                     add_size_args, load_pipeline)

RESIZE = ("crop", "squash")  # as training's data.resize


def register(sub) -> None:
    _add_evaluate(sub)
    _add_report(sub)
    _add_export(sub)


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score interpolation of held-out clips vs. baselines",
        description="Cut every clip into windows exactly as training does, interpolate each "
                    "window from its first and last frame and compare the middle frames with "
                    "the real ones (PSNR, SSIM) — for the model, each --lora and each --compare "
                    "row, next to cross-fade and optical-flow baselines, in one report.")
    add_model_args(p)
    p.set_defaults(model=None)  # from --config's model.pretrained, else the embedded micro model
    p.add_argument("--data", help="clips: folders, frame folders or .jsonl (default: the "
                                  "config's data.validation_sources)")
    p.add_argument("--config", help="training config (path, run folder or shipped name) whose "
                                    "[data] settings cut and condition the clips")
    p.add_argument("--compare", action="append", default=[], metavar="base|MODEL",
                   help="also score the base model without LoRA (base) or another model folder; "
                        "repeatable")
    p.add_argument("--out", default="metrics.json", help="JSON report (+ .md table beside it)")
    add_size_args(p, frames=True)
    p.add_argument("--resize", choices=RESIZE, help="crop (keep aspect) or squash frames")
    p.add_argument("--stride", type=STEPS, help="source frames between sampled frames")
    p.add_argument("--target-fps", type=float, help="sample frames at this rate instead")
    p.add_argument("--fps", help="fps conditioning: 'data' (the sampled clip's rate) or a number")
    p.add_argument("--motion-bucket", help="'auto' (from each clip's motion) or a number")
    p.add_argument("--overlap", type=int, help="frames shared by consecutive windows (0)")
    p.add_argument("--max-clips", "--limit", dest="max_clips", type=STEPS,
                   help="evaluate at most this many windows (round-robin over the files)")
    p.add_argument("--tracks", action="store_true", help="steer with the clips' true tracks")
    p.add_argument("--sampler", help=f"euler, dpm++ or turbo {MODEL_DEFAULT}")
    p.add_argument("--steps", type=STEPS,
                   help="denoising steps (the model's; euler 30, dpm++ 12, turbo 4)")
    add_guidance_arg(p)
    add_keep_static_arg(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("data_path", nargs="?", metavar="DATA",
                   help="clips, or with --protocol the benchmark folder (same as --data)")
    p.add_argument("--protocol", choices=["davis7", "ucf7"],
                   help="Framer's benchmarks (VIDIM's DAVIS-7 / UCF101-7 folders): frames 0 and "
                        "8 in, 1–7 scored at 256×256, the paper's figures beside (docs/"
                        "evaluation.md)")
    p.add_argument("--lpips-weights", metavar="FILE",
                   help="LPIPS as TorchScript (lpips.LPIPS export or StyleGAN2-ADA vgg16.pt); "
                        "without it LPIPS is skipped")
    p.add_argument("--inception", metavar="FILE",
                   help="FID's Inception as TorchScript (inception-2015-12-05.pt); without it "
                        "FID is skipped")
    p.add_argument("--i3d", metavar="FILE",
                   help="FVD's I3D as TorchScript (i3d_torchscript.pt); without it FVD is "
                        "skipped")
    p.add_argument("--hand-metrics", choices=["auto", "mediapipe", "synthetic"],
                   help="add hand metrics per row (hands found vs the real frames, keypoint "
                        "error and DTW-MJE against them, jerk), landmarks from: synthetic (the "
                        "signer world's ground truth), mediapipe (the [sign] extra) or auto "
                        "(synthetic for synthetic signer clips, else mediapipe)")
    p.add_argument("--metrics-device", default="cpu",
                   help="where the LPIPS/Inception/I3D networks run (cpu, cuda)")
    p.set_defaults(func=_run_evaluate, precheck=_check_evaluate_inputs)


def _check_evaluate_inputs(args) -> None:
    """The data given and the [sign] extra checked before the model libraries load; ``main``
    runs it before ``_run_evaluate``."""
    if args.data and args.data_path:
        raise ValueError("give the data once: DATA or --data")
    if args.hand_metrics == "mediapipe":
        from ..data.landmarks import require_mediapipe

        require_mediapipe()  # one line saying what to install
    if (args.data or args.data_path) and not args.protocol:
        from ..data.sources import check_source_exists

        check_source_exists(args.data or args.data_path)


def _run_evaluate(args) -> int:
    from ..eval.compare import run_comparison
    from ..eval.evaluate import markdown_table

    def load(model, settings):
        return load_pipeline(argparse.Namespace(**vars(args) | {
            "model": model, "lora": [], "height": settings.height, "width": settings.width}),
            controlnet=args.tracks or bool(args.hand_metrics))  # hand control rows

    args.data = args.data or args.data_path
    result = run_comparison(args, load)
    print(markdown_table(result.metrics, result.hands))
    for note in result.notes:
        print(f"note: {note}")
    out = Path(args.out)
    print(f"report: {out} (+ {out.with_suffix('.md').name}, {out.with_suffix('.html').name})")
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
    p.add_argument("--model", help="the base model the LoRA was trained on (default: the one "
                                    "the run's config.toml names)")
    p.add_argument("--svd", help="SVD-xt folder when --model lacks vae/ etc. (default: the "
                                 "run's, with the run's --model)")
    p.add_argument("--scale", type=float, default=1.0, help="LoRA scale to merge at (1.0)")
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from ..tasks.export import export, trained_on

    model, svd = (args.model, args.svd) if args.model else trained_on(args.run, args.svd)
    print(f"wrote {export(args.run, args.format, args.output, model, svd, args.scale)}")
    return 0
