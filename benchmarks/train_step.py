"""One LoRA training step of the released Framer architecture (random weights, no download),
with the memory/speed levers on and off, next to the earlier toolkit's setting (VAE + CLIP
encoding inside every step, no latent cache) as the baseline row. Prints step time, peak
memory, achieved TFLOP/s (torch.utils.flop_counter) and MFU against this card's measured bf16
matmul peak; speedups are ratios to the baseline row of the same run.

    python benchmarks/train_step.py                 # GPU: 512×320×14 and 576×576×14, LoRA r64
    python benchmarks/train_step.py --tiny          # CPU smoke test on the micro architecture
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import (arg_parser, device_and_name, matmul_peak_tflops,  # noqa: E402
                     peak_memory_gb, print_table, record_results, reset_peak, timed)

from framerturbo.models import adapters
from framerturbo.models import levers  # noqa: E402
from framerturbo.models import FramerUNet  # noqa: E402
from framerturbo.models.configs import config  # noqa: E402
from framerturbo.denoising.encoding import encode_batch  # noqa: E402
from framerturbo.denoising.denoiser import FramerDenoiser  # noqa: E402
from framerturbo.train.objective import StepNoise, diffusion_loss, predict  # noqa: E402

# name → (cache, gradient checkpointing, compile); all rows: bf16 frozen base, fp32 LoRA, SDPA
SETTINGS = {
    "baseline: encode every step": (False, True, False),
    "cache + checkpointing": (True, True, False),
    "cache, no checkpointing": (True, False, False),
    "cache + checkpointing + compile": (True, True, True),
}


def random_model(build, device, dtype):
    """``build()``'s architecture with random weights, built on the meta device and
    materialised once on ``device`` (a 1.5 B model would take minutes to initialise on a CPU)."""
    with torch.device("meta"):
        model = build()
    model.to_empty(device=device)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02) if p.dim() > 1 else p.zero_()
        for b in model.buffers():
            b.zero_()
    return model.to(dtype)


def build_encoders(kind: str, device, dtype):
    from framerturbo.models.vae import FramerVAE
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    vae = random_model(lambda: FramerVAE(**config(f"{kind}-vae")), device,
                       dtype)
    clip = random_model(lambda: CLIPVisionModelWithProjection(
        CLIPVisionConfig(**config(f"{kind}-clip"))), device, dtype)
    return vae, clip


def raw_batch(frames: int, height: int, width: int) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"frames": torch.randint(0, 256, (1, frames, 3, height, width), generator=g,
                                    dtype=torch.uint8),
            "key": ["bench"], "aug_index": [0], "fps": [7.0], "motion_bucket": [100.0]}


def run_setting(name, kind, vae, clip, size, frames, rank, device, dtype, steps):
    """One row. Only what that setting keeps on the device is there while it is measured:
    cached rows train with the VAE and CLIP on the CPU, as `framerturbo train` does."""
    cache, checkpointing, compile_ = SETTINGS[name]
    unet = random_model(lambda: FramerUNet(**config(f"{kind}-unet")), device, dtype)
    params = adapters.add_lora(unet, rank, rank, 0.0, adapters.target_regex("attn"))
    if checkpointing:
        unet.enable_gradient_checkpointing()
    levers.apply_kernels(unet, None, "sdpa", compile_)
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    height, width = size
    raw = raw_batch(frames, height, width)
    vae.to(device), clip.to(device)
    with torch.no_grad():
        cached = encode_batch(vae, clip, raw, -3.0, 0.5)
    if cache:
        vae.to("cpu"), clip.to("cpu")

    def step():
        with torch.no_grad():
            batch = cached if cache else encode_batch(vae, clip, raw, -3.0, 0.5)
        draw = StepNoise.draw(batch.latents, torch.Generator().manual_seed(0), 0.7, 1.6, 0.1)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = diffusion_loss(predict(FramerDenoiser(unet), batch, draw).output, batch,
                                  draw).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    from torch.utils.flop_counter import FlopCounterMode

    step()  # warm-up (compiles when compile is on)
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    reset_peak(device)
    seconds = timed(step, device, repeats=steps, warmup=0)
    del unet, optimizer
    return {"setting": name, "size": f"{width}x{height}x{frames}", "step_s": seconds,
            "peak_gb": peak_memory_gb(device), "tflops": counter.get_total_flops() / seconds / 1e12}


def main(argv=None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--steps", type=int, default=5, help="timed steps per row (median)")
    p.add_argument("--rank", type=int, default=64)
    args = p.parse_args(argv)
    device, card = device_and_name(args.tiny)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    sizes = [(64, 64)] if args.tiny else [(320, 512), (576, 576)]
    frames = 5 if args.tiny else 14
    names = list(SETTINGS)[:2] if args.tiny else list(SETTINGS)
    peak = matmul_peak_tflops(device, dtype, 1024 if args.tiny else 8192)
    kind = "micro" if args.tiny else "released"
    vae, clip = build_encoders(kind, device, dtype)
    rows = []
    for size in sizes:
        base = None
        for name in names:
            row = run_setting(name, kind, vae, clip, size, frames, args.rank, device, dtype,
                              args.steps)
            base = base or row["step_s"]
            row["speedup"] = base / row["step_s"]
            row["mfu"] = row["tflops"] / peak
            rows.append(row)
            print(f"  {row['size']} {name}: {row['step_s']:.3f} s", flush=True)
    print(f"{card}: LoRA r{args.rank} (preset attn), batch 1, measured {dtype} matmul peak "
          f"{peak:.1f} TFLOP/s")
    print_table(rows, ["size", "setting", "step_s", "speedup", "peak_gb", "tflops", "mfu"])
    record_results(args, "train_step", card, rows,
                   {"matmul_peak_tflops": peak, "lora_rank": args.rank})
    return 0


if __name__ == "__main__":
    sys.exit(main())
