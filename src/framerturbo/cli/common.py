"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from ..core.config import ATTENTION, OFFLOAD

EXIT_USAGE = 2


def at_least(minimum: float, kind=int, above: bool = False):
    """An argparse type: a number of ``kind`` >= ``minimum`` (> it with ``above``), so a bad
    value is refused with the flag's name before any model loads."""
    import argparse

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if above else '>='} {minimum:g}, "
                                             f"got {text}")
        return value
    return parse


STEPS, FRAMES, POSITIVE = at_least(1), at_least(3), at_least(0, float, above=True)


def add_model_args(p) -> None:
    p.add_argument("--model", default="micro",
                   help="Framer folder or Hub id (unet/ [+ controlnet/]); a self-contained folder "
                        "needs no --svd. Default 'micro': the embedded micro Framer (64×64); "
                        "'random-micro' = the same architecture with RANDOM weights")
    p.add_argument("--svd", help="SVD-xt folder or Hub id for vae/, image_encoder/, "
                                 "feature_extractor/, scheduler/ when --model lacks them")
    p.add_argument("--lora", action="append", default=[], metavar="DIR[:SCALE]",
                   help="LoRA folder from `framerturbo train` (its lora/), optional scale; "
                        "repeat to stack several; scale 0 = base model")
    add_turbo_arg(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, …")
    p.add_argument("--dtype", default="auto",
                   help="auto (bf16 on CUDA; fp32 on CPU, with a bf16 VAE decode where the CPU "
                        "has native bf16), fp32, fp16, bf16")
    p.add_argument("--attention", default="sdpa", choices=ATTENTION,
                   help="attention kernel: sdpa (PyTorch's fused attention) or xformers")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the UNet (slow first call, faster after)")
    p.add_argument("--offload", default="none", choices=OFFLOAD,
                   help="for small GPUs: vae = VAE stays on the CPU; model = each model on the "
                        "GPU only while it runs; sequential = layer by layer (least memory)")


MODEL_DEFAULT = "(default: the model's own, from its framerturbo.json)"


def add_turbo_arg(p) -> None:
    p.add_argument("--turbo", nargs="?", const="", default=None, metavar="DIR[:SCALE]",
                   help="the fast path: load a turbo LoRA (a `framerturbo distill` run or its "
                        "lora/; bare --turbo = the one shipped with the model) and sample with "
                        "the turbo sampler at 4 steps, no CFG (--sampler/--steps still win); "
                        "stacks with --lora. Bare --turbo before START END takes START as DIR: "
                        "put it after them")


def parse_turbo_spec(spec: str) -> tuple[str | None, float]:
    """``--turbo`` value → (folder or None for the shipped one, scale)."""
    from ..models.adapters import parse_lora_spec

    path, scale = parse_lora_spec(spec)
    return path or None, scale


def add_sampling_args(p) -> None:
    p.add_argument("--sampler", help=f"euler, dpm++ or turbo (needs --turbo) {MODEL_DEFAULT}")
    p.add_argument("--steps", type=STEPS,
                   help="denoising steps (the model's; for another sampler: euler 30, dpm++ 12, "
                        "turbo 4)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed (0); the same seed gives the same frames on the same "
                        "device, dtype and thread count")
    add_guidance_arg(p)
    p.add_argument("--middle-max-guidance", action="store_true",
                   help="ramp the guidance up to the middle frame and down again")
    add_size_args(p)
    p.add_argument("--fps", type=POSITIVE,
                   help=f"output fps; conditions the model as fps-1 {MODEL_DEFAULT}")
    p.add_argument("--motion-bucket", type=at_least(0), help=f"motion bucket id {MODEL_DEFAULT}")
    p.add_argument("--noise-aug", type=float, default=0.02,
                   help="endpoint noise augmentation σ (0.02)")
    p.add_argument("--decode-chunk", type=STEPS, help="frames per VAE decode call (all)")
    add_keep_static_arg(p)


def _tolerance(text: str) -> float:
    from ..models.record import check_keep_static

    try:
        return check_keep_static(float(text), "--keep-static")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_keep_static_arg(p) -> None:
    """``--keep-static TAU``, unset unless given (None: the model record's τ)."""
    p.add_argument("--keep-static", type=_tolerance, metavar="TAU",
                   help="pixels both endpoints show unchanged, and the sample draws as "
                        "background within TAU (0–1 scale), come back as the endpoints' "
                        "cross-fade; 0 turns it off " + MODEL_DEFAULT + ": off for Framer, "
                        "0.5 for the micro model")


SIZE_RULE = ("a multiple of the model's size step: 64 for the released model, 32 for the "
             "embedded micro model")


def add_guidance_arg(p, help: str = "per-frame CFG ramp, first frame to last; MAX <= 1 turns "
                     f"CFG off {MODEL_DEFAULT}: Framer's is 1 3, the micro model's 1.5 1.5"
                     ) -> None:
    """``--guidance MIN MAX``, unset unless given (None: the model record's ramp)."""
    p.add_argument("--guidance", type=float, nargs=2, metavar=("MIN", "MAX"), help=help)


def add_size_args(p, frames: bool = False) -> None:
    p.add_argument("--height", type=int,
                   help=f"generation height in pixels, {SIZE_RULE} {MODEL_DEFAULT}")
    p.add_argument("--width", type=int,
                   help=f"generation width in pixels, {SIZE_RULE} {MODEL_DEFAULT}")
    if frames:
        p.add_argument("--num-frames", type=FRAMES,
                       help=f"frames incl. both ends {MODEL_DEFAULT}")


def apply_model_defaults(args, record=None):
    """Fill every sampling option the user left unset from the model's record (what it was
    made for); returns the record. A sampler other than the model's keeps its own step count."""
    from ..models.record import guidance_choice, read_record, sampling_choice

    record = record or read_record(args.model)
    for key in ("height", "width", "num_frames", "fps", "motion_bucket"):
        if hasattr(args, key) and getattr(args, key) is None:
            setattr(args, key, getattr(record, key))
    if hasattr(args, "sampler"):
        args.sampler, args.steps = sampling_choice(record, args.sampler, args.steps,
                                                   getattr(args, "turbo", None) is not None)
    if hasattr(args, "guidance"):
        args.guidance = guidance_choice(record, args.guidance)
    return record


def model_notice(model: str) -> str | None:
    """What to tell a user of the embedded micro model, once per command."""
    from ..models.configs import MICRO_PATH
    from ..models.names import resolve_model

    try:
        is_micro = resolve_model(model) == str(MICRO_PATH)
    except Exception:  # noqa: BLE001 - a missing model is reported where it is loaded
        return None
    if not is_micro:
        return None
    return ("note: the default model is the embedded micro Framer — a 64×64 model trained on "
            "procedural clips and a dozen photos, so real footage comes out small and blurred. "
            "For real footage use "
            "the released weights: --model checkpoints/framer_512x320 --svd "
            "checkpoints/stable-video-diffusion-img2vid-xt (docs/quickstart.md)")


def sampling_kwargs(args) -> dict:
    """Pipeline keyword arguments from the sampling options (the seed stays separate)."""
    return dict(num_inference_steps=args.steps, sampler=args.sampler,
                min_guidance_scale=args.guidance[0], max_guidance_scale=args.guidance[1],
                middle_max_guidance=args.middle_max_guidance, fps=args.fps,
                motion_bucket_id=args.motion_bucket, noise_aug_strength=args.noise_aug,
                decode_chunk_size=args.decode_chunk, keep_static=args.keep_static)


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _local_config(component: str, folders: list[Path]) -> dict | None:
    for folder in folders:
        path = folder / component / "config.json"
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except ValueError:
                return None  # the loader reports a broken config properly
    return None


def size_multiple(model: str, svd: str | None = None) -> int | None:
    """The pixel-size step a model needs (``FramerPipeline.size_multiple``), read from its local
    config.json files without importing or loading anything heavy; None when they are not
    local (a Hub id, ``random-micro``): the pipeline checks after loading then."""
    from ..models.configs import MICRO_PATH, size_step

    folders = [MICRO_PATH if model == "micro" else Path(model)] + ([Path(svd)] if svd else [])
    unet, vae = _local_config("unet", folders), _local_config("vae", folders)
    try:
        return size_step(len(vae["block_out_channels"]), len(unet["block_out_channels"]))
    except (TypeError, KeyError):
        return None


def check_args_early(args) -> None:
    """Cheap checks before the model loads (which takes seconds): model/SVD folders exist,
    LoRA folders hold weights, the generation size fits the model."""
    from ..models.adapters import find_lora_dir, parse_lora_spec

    for what, location in (("model", args.model), ("SVD", getattr(args, "svd", None))):
        if location and location not in ("micro", "random-micro") \
                and not Path(location).exists() and not _HUB_ID.match(location):
            raise FileNotFoundError(f"{what} folder not found: {location} — pass an existing "
                                    "folder or a Hub id like owner/name")
    for spec in getattr(args, "lora", None) or []:
        find_lora_dir(parse_lora_spec(spec)[0])  # a run folder or a LoRA folder, else one line
    if getattr(args, "turbo", None) is not None:
        from ..models.adapters import find_turbo_dir

        find_turbo_dir(parse_turbo_spec(args.turbo)[0], args.model)
    height, width = getattr(args, "height", None), getattr(args, "width", None)
    if height is None or width is None:
        return
    step = size_multiple(args.model, getattr(args, "svd", None))
    if height <= 0 or width <= 0 or (step and (height % step or width % step)):
        rule = f"positive multiples of {step}" if step else "positive"
        raise ValueError(f"height and width must be {rule}, got {width}x{height}")


def load_pipeline(args, controlnet: bool, notice: bool = False, fuse: bool = False):
    """The pipeline for --model/--svd/--lora/--device/--dtype, with a note for random weights
    (and, with ``notice``, one saying what the embedded micro model is). ``fuse``: fold the
    LoRAs into the weights (faster steps; for jobs that never switch adapters)."""
    check_args_early(args)
    from ..models import levers
    from ..models.adapters import find_lora_dir, load_loras, parse_lora_spec
    from ..models.names import RANDOM_MICRO
    from ..models.schedulers import UndistilledTurboWarning, canonical_name
    from ..sampling.pipeline import FramerPipeline

    if hasattr(args, "sampler"):
        canonical_name(args.sampler)
    offload = getattr(args, "offload", "none")
    moving = offload in ("model", "sequential")  # diffusers moves the parts itself
    pipe = FramerPipeline.from_framer(args.model, args.svd, device="cpu" if moving else args.device,
                                      dtype=args.dtype, controlnet=controlnet)
    if args.lora:
        specs = [parse_lora_spec(x) for x in args.lora]
        load_loras(pipe, [(str(find_lora_dir(path)), scale) for path, scale in specs])
    if getattr(args, "turbo", None) is not None:
        folder = pipe.load_turbo(*parse_turbo_spec(args.turbo))
        print(f"turbo LoRA: {folder}", file=sys.stderr)
    elif hasattr(args, "sampler") and canonical_name(args.sampler) == "turbo":
        print("note: --sampler turbo without --turbo runs the undistilled model at a few "
              "steps: expect blurred frames (add --turbo [DIR])", file=sys.stderr)
        # said once, here, in the CLI's words: not again by the pipeline at every call
        warnings.filterwarnings("ignore", category=UndistilledTurboWarning)
    if fuse:
        pipe.fuse_adapters()
    levers.apply_kernels(pipe.unet, pipe.controlnet, getattr(args, "attention", "sdpa"),
                         getattr(args, "compile", False))
    levers.apply_offload(pipe, offload, None if args.device == "auto" else args.device)
    if hasattr(args, "height"):
        pipe.check_size(args.height, args.width)
    if args.model == RANDOM_MICRO:
        print("note: --model random-micro has RANDOM weights: the output shows the pipeline "
              "working, not a real interpolation", file=sys.stderr)
    elif notice and (note := model_notice(args.model)):
        print(note, file=sys.stderr)
    return pipe


@contextmanager
def warnings_to_stderr():
    """Show library warnings (e.g. autopilot's no-match fallback) as one 'warning:' line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        yield
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)


def add_config_args(p) -> None:
    p.add_argument("--config", help="TOML config: a path, a run folder, or a shipped config's "
                                    "name (micro-lora, …; `framerturbo configs` lists them)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="override config values, e.g. train.lr=5e-5")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config and exit")


def load_config_args(args):
    from ..core.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(cfg.to_toml())
    return cfg
