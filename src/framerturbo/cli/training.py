"""train, distill, cache, train-vae, new-model."""

from __future__ import annotations

import sys

from .common import (STEPS, add_config_args, add_guidance_arg, add_keep_static_arg,
                     load_config_args)


def register(sub) -> None:
    _add_configs(sub)
    _add_train(sub)
    _add_distill(sub)
    _add_cache(sub)
    _add_train_vae(sub)
    _add_new_model(sub)


def _add_configs(sub) -> None:
    p = sub.add_parser("configs", help="list the shipped example configs, or print one's path",
                       description="The package's example configs: training TOMLs (use their "
                                   "names with --config) and accelerate/SLURM launch files.")
    p.add_argument("name", nargs="?", help="a shipped file, e.g. micro-lora or accelerate/ddp.yaml")
    p.set_defaults(func=_run_configs)


def _run_configs(args) -> int:
    from ..core.config import SHIPPED, config_path

    if args.name:
        path = SHIPPED / args.name
        print(path if path.is_file() else config_path(args.name))
        return 0
    for path in sorted(p for p in SHIPPED.rglob("*") if p.is_file()):
        rel = path.relative_to(SHIPPED)
        print(rel.with_suffix("") if path.suffix == ".toml" else rel)
    print(f"(in {SHIPPED})")
    return 0


def _add_new_model(sub) -> None:
    p = sub.add_parser("new-model", help="write a micro model folder (random or given parts)",
                       description="Write a self-contained Framer folder (released layout) "
                                   "with RANDOM weights, e.g. to test a setup.")
    p.add_argument("--preset", choices=["micro"], default="micro")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vae", help="use this trained VAE folder instead of a random one")
    p.add_argument("--from-model", help="take unet/controlnet/... from this folder where present")
    p.add_argument("--fp16", action="store_true", help="store the weights in fp16")
    p.add_argument("--unet-widths", metavar="W,W,W,W",
                   help="the random UNet's block widths, multiples of 32 (micro: 32,32,64,64)")
    p.add_argument("--turbo", metavar="RUN",
                   help="ship this turbo LoRA (a `framerturbo distill` run or its lora/) in the "
                        "folder's turbo/, where a bare --turbo finds it")
    p.add_argument("--sampler", help="the folder's default sampler, written to its "
                                     "framerturbo.json (default: the source model's)")
    p.add_argument("--steps", type=STEPS, help="its default step count (with --sampler; default: "
                                             "the sampler's own)")
    add_guidance_arg(p, help="its default per-frame CFG ramp, first frame to last (default: "
                             "the source model's)")
    add_keep_static_arg(p)
    p.add_argument("--control-scale", type=float, default=None,
                   help="its ControlNet strength for given tracks, written to its "
                        "framerturbo.json (default: the source model's)")
    p.set_defaults(func=_run_new_model)


def _run_new_model(args) -> int:
    import torch

    from ..models.loading import load_components, random_micro_components, save_components
    from ..models.record import MICRO_SIZE, check_control_scale, check_guidance, read_record

    widths = args.unet_widths.split(",") if args.unet_widths else None
    if widths and not all(w.strip().isdigit() for w in widths):
        print(f"error: --unet-widths takes four numbers like 32,32,64,64, got "
              f"{args.unet_widths!r}", file=sys.stderr)
        return 2
    try:
        parts = random_micro_components(seed=args.seed, unet_widths=widths)
    except ValueError as err:
        print(f"error: --unet-widths: {err}", file=sys.stderr)
        return 2
    record = read_record(args.from_model) if args.from_model else MICRO_SIZE
    if args.steps is not None and (args.sampler is None or args.steps < 1):
        print("error: --steps takes a positive step count and goes with --sampler",
              file=sys.stderr)
        return 2
    from dataclasses import replace

    if args.guidance:
        record = replace(record, guidance=check_guidance(args.guidance, "--guidance"))
    if args.keep_static is not None:
        record = replace(record, keep_static=args.keep_static)
    if args.control_scale is not None:
        try:
            record = replace(record, control_scale=check_control_scale(args.control_scale,
                                                                       "--control-scale"))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    if args.sampler:
        from ..models.schedulers import canonical_name

        try:
            record = replace(record, sampler=canonical_name(args.sampler), steps=args.steps)
        except ValueError as err:
            print(f"error: --sampler: {err}", file=sys.stderr)
            return 2
    random_parts = {"unet", "controlnet", "vae", "image_encoder"}
    if args.from_model:
        loaded = {k: v for k, v in load_components(args.from_model, device="cpu",
                                                   dtype="fp32").items() if v is not None}
        parts |= loaded
        random_parts -= set(loaded)
    if args.vae:
        from ..models.vae import FramerVAE

        parts["vae"] = FramerVAE.from_pretrained(args.vae)
        random_parts.discard("vae")
    dtype = torch.float16 if args.fp16 else None
    folder = save_components(parts, args.out, dtype=dtype, record=record)
    if args.turbo:
        from ..models.adapters import copy_lora, find_lora_dir
        from ..models.card import write_card
        from ..train.run_card import read_facts

        copy_lora(args.turbo, folder / "turbo", dtype)
        run_facts = read_facts(find_lora_dir(args.turbo))
        if run_facts:  # the run's card names its own folder; this copy is found by a bare --turbo
            write_card(folder / "turbo", run_facts, "shipped-turbo", "turbo")
    note = f" (random weights: {', '.join(sorted(random_parts))})" if random_parts else ""
    print(f"wrote {folder}{note}")
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="fine-tune Framer (LoRA or full) on your clips",
                       description="Train with the EDM objective on the sampler's conditioning. "
                                   "Also runs under `accelerate launch -m framerturbo train`.")
    _add_run_args(p)
    p.set_defaults(func=_run_train, runs_on="auto")


def _add_run_args(p) -> None:
    """The config, resume and stop options that `train` and `distill` share."""
    add_config_args(p)
    p.add_argument("--resume", nargs="?", const="latest",
                   help="continue from the latest checkpoint of the run (or a given folder; "
                        "write `--resume latest` when overrides follow)")
    p.add_argument("--stop-at-step", type=int,
                   help="checkpoint and stop at this step (resume later with --resume)")


def _run_train(args) -> int:
    cfg = load_config_args(args)
    if args.print_config:
        return 0
    from ..train.loop import train

    run = train(cfg, resume=args.resume, stop_at_step=args.stop_at_step)
    print(f"run folder: {run}")
    return 0


def _add_distill(sub) -> None:
    p = sub.add_parser("distill", help="distill Framer into a few-step turbo LoRA",
                       description="Latent consistency distillation of the frozen base into a "
                                   "LoRA (objective.kind = consistency; settings in [distill], "
                                   "docs/turbo.md). The same data, cache, checkpoints and resume "
                                   "as `train`; the result is RUN/lora/ with a turbo.json.")
    _add_run_args(p)
    p.set_defaults(func=_run_distill, runs_on="auto")


def _run_distill(args) -> int:
    args.overrides = [*args.overrides, "objective.kind=consistency"]
    return _run_train(args)


def _add_cache(sub) -> None:
    p = sub.add_parser("cache", help="precompute latents + CLIP tokens for training",
                       description="Build (or verify and complete) the latent cache for a config.")
    add_config_args(p)
    p.set_defaults(func=_run_cache, runs_on="auto")


def _run_cache(args) -> int:
    cfg = load_config_args(args)
    if args.print_config:
        return 0
    if not cfg.data.cache_dir:
        raise ValueError("data.cache_dir is not set — add it to the config or pass "
                         "data.cache_dir=DIR")
    from ..data.cache import build_cache_for
    from ..models.loading import load_components
    from ..train.setup import resolve_heatmap_size

    if cfg.control.use:  # the cached heat-maps are drawn at the size training will draw them
        resolve_heatmap_size(cfg)
    parts = load_components(cfg.model.pretrained, cfg.model.svd or None, controlnet=False,
                            dtype="fp32" if cfg.model.base_dtype == "fp16" else cfg.model.base_dtype)
    folder, train_set = build_cache_for(cfg, parts)
    print(f"cache ready: {folder} ({len(train_set)} clips, "
          f"{len(train_set.skipped.reasons)} sources skipped)")
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
    p.add_argument("--down-blocks", type=int, default=4, choices=[3, 4],
                   help="4 = ×8 spatial factor (as released), 3 = ×4")
    p.add_argument("--width", type=int, default=None,
                   help="channels of the deeper blocks (default: the micro config's 64)")
    p.add_argument("--val-data", nargs="*", default=[],
                   help="held-out clip folders: their reconstruction PSNR/SSIM is logged to "
                        "OUT/metrics.jsonl at every checkpoint")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="steps between resumable checkpoints (rerun the command to resume)")
    p.add_argument("--init", default=None, metavar="DIR",
                   help="start from this VAE (a VAE folder, or a model folder with vae/)")
    p.add_argument("--decoder-only", action="store_true",
                   help="train only the decoder (needs --init): the latents, and the scaling "
                        "factor a UNet was trained with, stay as they are")
    p.set_defaults(func=_run_train_vae, runs_on="cpu")


def _run_train_vae(args) -> int:
    from ..train.vae import train_vae

    train_vae(args.data, args.out, steps=args.steps, frames=args.frames, batch=args.batch,
              size=args.size, lr=args.lr, seed=args.seed, down_blocks=args.down_blocks,
              width=args.width, val_data=args.val_data, checkpoint_every=args.checkpoint_every,
              init=args.init, decoder_only=args.decoder_only)
    print(f"wrote {args.out}")
    return 0
