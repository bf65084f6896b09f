"""Sampling speed of the released Framer architecture (random weights, no download): 14 frames
at 512×320 with euler-30, dpm++-12 and dpm++-15, with and without the trajectory ControlNet,
classifier-free guidance on (as by default). Seconds per video, end to end (conditioning,
denoising, VAE decode).

    python benchmarks/sample.py           # GPU, bf16
    python benchmarks/sample.py --tiny    # CPU smoke test on the micro architecture
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import (arg_parser, device_and_name, peak_memory_gb, print_table,  # noqa: E402
                     record_results, reset_peak, timed)
from train_step import build_encoders, random_model  # noqa: E402

from framerturbo.models import FramerControlNet, FramerUNet  # noqa: E402
from framerturbo.models.configs import config  # noqa: E402

RUNS = [("euler", 30), ("dpm++", 12), ("dpm++", 15)]


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
    args = p.parse_args(argv)
    device, card = device_and_name(args.tiny)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    kind = "micro" if args.tiny else "released"
    (height, width), frames = ((64, 64), 5) if args.tiny else ((320, 512), 14)
    runs = [("euler", 2), ("dpm++", 2)] if args.tiny else RUNS
    pipe = build_pipeline(kind, device, dtype)
    rng = np.random.default_rng(0)
    start, end = (rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2))
    tracks = np.stack([np.linspace([width * 0.2, height * 0.3], [width * 0.7, height * 0.6],
                                   frames)] * 3, axis=1) + rng.normal(0, 4, (1, 3, 2))
    rows = []
    for control in (False, True):
        for sampler, steps in runs:
            def sample():
                pipe(start, end, num_frames=frames, height=height, width=width,
                     num_inference_steps=steps, sampler=sampler, output_type="np",
                     tracks=tracks if control else None,
                     generator=torch.Generator().manual_seed(0))

            reset_peak(device)
            seconds = timed(sample, device, repeats=args.repeats)
            rows.append({"sampler": f"{sampler}-{steps}", "controlnet": control,
                         "seconds": seconds, "peak_gb": peak_memory_gb(device)})
            print(f"  {sampler}-{steps} control={control}: {seconds:.2f} s", flush=True)
    print(f"{card}: {frames} frames {width}×{height}, CFG on, {dtype}")
    print_table(rows, ["sampler", "controlnet", "seconds", "peak_gb"])
    record_results(args, "sample", card, rows, {"frames": frames, "size": f"{width}x{height}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
