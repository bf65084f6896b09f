"""Sampling speed of the released Framer architecture (random weights, no download): 14 frames
at 512×320 with euler-30, dpm++-12 and dpm++-15 (classifier-free guidance on, as by default) and
turbo-4 (the consistency sampler with a turbo LoRA, no CFG: one UNet call per step; fused
into the weights as ``--turbo`` runs it, and unfused as the Python API and the app run it),
with and without the trajectory ControlNet. Seconds per video, end to end
(conditioning, denoising, VAE decode); all rows in one run, timed in turn (row after row,
``--repeats`` rounds, medians) so a machine whose speed drifts slows every row alike, and
turbo-4's speed-up over euler-30 printed.

    python benchmarks/sample.py           # GPU, bf16
    python benchmarks/sample.py --micro   # the embedded micro model itself at 64×64×9 (its
                                          # weights, ×4 VAE, shipped turbo LoRA), same rows
    python benchmarks/sample.py --tiny    # CPU smoke test on the micro architecture
    python benchmarks/sample.py --micro --breakdown   # where turbo-4's and euler-30's time goes
                                          # (UNet passes, VAE decode/encode, CLIP, the rest) and
                                          # the speed-up left if only UNet + decode remained
    python benchmarks/sample.py --micro --compile     # every row with its UNet torch.compiled,
                                          # as ``--compile`` runs it (compiled in the untimed
                                          # warm-up round; minutes on a CPU)
"""

from __future__ import annotations

import contextlib
import copy
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import (arg_parser, device_and_name, print_table, record_results,  # noqa: E402
                     timed_in_turn)
from train_step import build_encoders, random_model  # noqa: E402

from framerturbo.models import FramerControlNet, FramerUNet  # noqa: E402
from framerturbo.models.configs import config  # noqa: E402
from framerturbo.models.levers import compile_model  # noqa: E402

RUNS = [("euler", 30), ("dpm++", 12), ("dpm++", 15), ("turbo", 4)]
TURBO_PRESET = "attn"  # where the benchmark's random turbo LoRA sits (its cost, not its effect)


def add_turbo_lora(unet, rank: int) -> None:
    """A random LoRA as adapter ``turbo``, loaded the way ``--turbo`` loads one (unfused)."""
    from framerturbo.models.adapters import TURBO_ADAPTER, add_lora, target_regex

    for p in add_lora(unet, rank, rank, 0.0, target_regex(TURBO_PRESET), TURBO_ADAPTER):
        p.requires_grad_(False)


def with_own_unet(pipe):
    """A pipeline sharing ``pipe``'s parts but with its own copy of the UNet, so a LoRA loaded
    into it leaves ``pipe`` exactly as a plain ``interpolate`` runs it (no adapter layers)."""
    twin = type(pipe)(**(pipe.components | {"unet": copy.deepcopy(pipe.unet)}))
    twin.set_progress_bar_config(disable=True)
    twin.turbo_grid = pipe.turbo_grid
    twin.model_source = getattr(pipe, "model_source", None)
    twin.decode_dtype = pipe.decode_dtype
    return twin


def embedded_pipeline(device):
    """The package's micro model with its ControlNet, at ``--dtype auto`` as ``interpolate``
    loads it (on a CPU: fp32, the VAE decode in bf16 where the CPU has native bf16)."""
    from framerturbo.sampling.pipeline import FramerPipeline

    pipe = FramerPipeline.from_framer("micro", device=device, dtype="auto")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_pipeline(kind: str, device, dtype):
    from diffusers import EulerDiscreteScheduler

    from framerturbo.models.loading import make_feature_extractor
    from framerturbo.sampling.pipeline import FramerPipeline

    vae, clip = build_encoders(kind, device, dtype)
    pipe = FramerPipeline(
        vae=vae, image_encoder=clip,
        unet=random_model(lambda: FramerUNet(**config(f"{kind}-unet")), device, dtype),
        controlnet=random_model(lambda: FramerControlNet(**config(f"{kind}-controlnet")), device,
                                dtype),
        scheduler=EulerDiscreteScheduler.from_config(config("svd-scheduler")),
        feature_extractor=make_feature_extractor())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main(argv=None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--micro", action="store_true",
                   help="the embedded micro model at 64×64×9 with the full rows (recorded as "
                        "section sample_micro)")
    p.add_argument("--breakdown", action="store_true",
                   help="time the parts of one turbo-4 and one euler-30 call (no ControlNet) "
                        "instead of the rows; printed, not recorded")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile every row's UNet as --compile does (recorded as its own "
                        "section, *_compiled)")
    p.add_argument("--turbo-rank", type=int,
                   help="rank of the random turbo LoRA (64; --tiny: 8); --micro loads the "
                        "shipped one")
    args = p.parse_args(argv)
    device, card = device_and_name(args.tiny)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    kind = "micro" if args.tiny or args.micro else "released"
    (height, width), frames = ((64, 64), 5) if args.tiny else (
        ((64, 64), 9) if args.micro else ((320, 512), 14))
    runs = [("euler", 2), ("dpm++", 2), ("turbo", 2)] if args.tiny else RUNS
    # three pipelines sharing all but the UNet: plain (the CFG rows, as a bare interpolate
    # runs them), the turbo LoRA unfused (the Python API and the app, which switch adapters)
    # and folded into the weights (interpolate/stitch/batch: FramerPipeline.fuse_adapters)
    pipe = (embedded_pipeline(device) if args.micro and not args.tiny
            else build_pipeline(kind, device, dtype))
    unfused = with_own_unet(pipe)
    if args.micro and not args.tiny:
        unfused.load_turbo()
        lora = "the shipped turbo LoRA"
    else:
        rank = args.turbo_rank or (8 if kind == "micro" else 64)
        add_turbo_lora(unfused.unet, rank)
        unfused.turbo_grid = {}  # the default grid, as load_turbo reads a LoRA without turbo.json
        lora = f"a random {TURBO_PRESET} LoRA of rank {rank}"
    fused = with_own_unet(unfused)
    fused.fuse_adapters()
    if args.compile:  # after the copies and the fuse, so what is compiled is what runs
        for target in (pipe, unfused, fused):
            compile_model(target.unet)
    rng = np.random.default_rng(0)
    start, end = (rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2))
    tracks = np.stack([np.linspace([width * 0.2, height * 0.3], [width * 0.7, height * 0.6],
                                   frames)] * 3, axis=1) + rng.normal(0, 4, (1, 3, 2))

    def call(target, sampler, steps, control):
        return lambda: target(start, end, num_frames=frames, height=height, width=width,
                              num_inference_steps=steps, sampler=sampler, output_type="np",
                              tracks=tracks if control else None,
                              generator=torch.Generator().manual_seed(0))

    if args.breakdown:
        return print_breakdown(pipe, fused, call, args.repeats)
    calls = {}
    for control in (False, True):
        for sampler, steps in runs:
            if sampler != "turbo":
                calls[f"{sampler}-{steps}", control] = (lambda: None,
                                                        call(pipe, sampler, steps, control))
                continue
            calls[f"{sampler}-{steps} unfused", control] = (lambda: None,
                                                            call(unfused, sampler, steps, control))
            calls[f"{sampler}-{steps}", control] = (lambda: None,
                                                    call(fused, sampler, steps, control))
    print(f"timing {len(calls)} rows in turn, {args.repeats} rounds after a warm-up …",
          flush=True)
    measured = timed_in_turn(calls, device, args.repeats)
    rows = [{"sampler": label, "controlnet": control, "cfg": not label.startswith("turbo"),
             "seconds": seconds, "peak_gb": peak}
            for (label, control), (seconds, peak) in measured.items()]
    decode = f", VAE decode {pipe.decode_dtype}" if pipe.decode_dtype else ""
    compiled = ", UNet compiled" if args.compile else ""
    print(f"{card}: {frames} frames {width}×{height}, CFG on (turbo: off, {lora}), "
          f"{pipe.unet.dtype}{decode}{compiled}, {torch.get_num_threads()} CPU threads")
    print_table(rows, ["sampler", "controlnet", "cfg", "seconds", "peak_gb"])
    for line in speedups(rows):
        print(line)
    section = ("sample_micro" if args.micro else "sample") + ("_compiled" if args.compile else "")
    record_results(args, section, card, rows,
                   {"frames": frames, "size": f"{width}x{height}",
                    "model": "embedded micro" if args.micro else "random weights",
                    "dtype": f"{pipe.unet.dtype}{decode}{compiled}",
                    "turbo_lora": f"{lora}; turbo-N rows fused (as --turbo runs), 'unfused' "
                                  "rows as the API and the app run it"})
    return 0


@contextlib.contextmanager
def part_timers(pipe, totals: dict, counts: dict):
    """Time every call of the pipeline's networks (wall seconds, summed per part)."""
    parts = {"unet": (pipe.unet, "forward"), "vae decode": (pipe.vae, "decode"),
             "vae encode": (pipe.vae, "encode"), "clip": (pipe.image_encoder, "forward")}
    for name, (module, method) in parts.items():
        original = getattr(module, method)

        def timed(*a, _name=name, _original=original, **k):
            start = time.perf_counter()
            try:
                return _original(*a, **k)
            finally:
                totals[_name] += time.perf_counter() - start
                counts[_name] += 1
        setattr(module, method, timed)
    try:
        yield
    finally:
        for name, (module, method) in parts.items():
            if method in vars(module):  # drop the instance attribute: the class method is back
                delattr(module, method)


def print_breakdown(pipe, fused, call, repeats: int) -> int:
    """Milliseconds per call of each part, for fused turbo-4 and euler-30 with CFG: at 64×64 the
    fixed costs (VAE decode above all) bound the speed-up whatever the sampler saves."""
    results = {}
    for label, target, sampler, steps in (("turbo-4", fused, "turbo", 4),
                                          ("euler-30", pipe, "euler", 30)):
        fn = call(target, sampler, steps, False)
        fn()  # warm-up
        totals, counts = defaultdict(float), defaultdict(int)
        with part_timers(target, totals, counts):
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            wall = (time.perf_counter() - start) / repeats
        results[label] = {name: seconds / repeats for name, seconds in totals.items()}
        results[label] |= {"rest": wall - sum(results[label].values()), "total": wall,
                           "unet calls": counts["unet"] / repeats}
    print(f"{'part':12s} {'turbo-4 ms':>11s} {'euler-30 ms':>12s}")
    for name in ("unet", "vae decode", "vae encode", "clip", "rest", "total"):
        print(f"{name:12s} {results['turbo-4'][name] * 1e3:11.1f} "
              f"{results['euler-30'][name] * 1e3:12.1f}")
    t, e = results["turbo-4"], results["euler-30"]
    print(f"unet calls   {t['unet calls']:11.0f} {e['unet calls']:12.0f}  (per pass: "
          f"{t['unet'] / t['unet calls'] * 1e3:.1f} ms at batch 1, "
          f"{e['unet'] / e['unet calls'] * 1e3:.1f} ms at batch 2)")
    print(f"speed-up now: {e['total'] / t['total']:.1f}×; if only the UNet passes and the VAE "
          f"decode remained: {(e['unet'] + e['vae decode']) / (t['unet'] + t['vae decode']):.1f}×;"
          f" UNet passes alone: {e['unet'] / t['unet']:.1f}×")
    return 0


def speedups(rows: list[dict]) -> list[str]:
    """turbo-4 against euler-30 with CFG, measured in the same run (with/without control)."""
    lines = []
    for control in (False, True):
        by = {r["sampler"]: r["seconds"] for r in rows if r["controlnet"] == control}
        for turbo in ("turbo-4", "turbo-4 unfused"):
            if "euler-30" in by and turbo in by:
                lines.append(f"{turbo} vs euler-30 (CFG), controlnet={control}: "
                             f"{by['euler-30']:.2f} s / {by[turbo]:.2f} s = "
                             f"{by['euler-30'] / by[turbo]:.1f}× faster")
    return lines


if __name__ == "__main__":
    sys.exit(main())
