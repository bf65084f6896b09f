"""Time-only Conv3d layers as 2-D convolutions (models/temporal_conv.py) against the stock
``nn.Conv3d``: the VAE's temporal decode, a UNet pass (batch 1: turbo, batch 2: CFG) and a UNet
training step (forward + backward, batch 4), each row timed in turn against a copy of the same
model with the stock layers, and the speed-up printed.

    python benchmarks/temporal_conv.py           # GPU: the released architecture (random
                                                 # weights, bf16) at 512×320×14
    python benchmarks/temporal_conv.py --micro   # the embedded micro model, 64×64×9, on the CPU
    python benchmarks/temporal_conv.py --tiny    # CPU smoke test (embedded model, 5 frames)
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import (arg_parser, device_and_name, print_table, record_results,  # noqa: E402
                     timed_in_turn)
from train_step import build_encoders, random_model  # noqa: E402

from framerturbo.models import FramerUNet  # noqa: E402
from framerturbo.models.configs import config  # noqa: E402
from framerturbo.models.temporal_conv import use_stock_convs  # noqa: E402


def with_stock_convs(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose time-only convolutions run as the stock ``nn.Conv3d``."""
    return use_stock_convs(copy.deepcopy(model))


def models(kind: str, device, dtype):
    if kind == "embedded":
        from framerturbo.models.loading import load_components

        parts = load_components("micro", controlnet=False, device=device, dtype=dtype)
        return parts["unet"], parts["vae"]
    unet = random_model(lambda: FramerUNet(**config(f"{kind}-unet")), device, dtype)
    return unet, build_encoders(kind, device, dtype)[0]


def main(argv=None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--micro", action="store_true", help="the embedded micro model at 64×64×9")
    args = p.parse_args(argv)
    device, card = device_and_name(args.tiny or args.micro)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    # --tiny runs the embedded weights too: random micro weights at 0.02 scale drive the stock
    # slow_conv3d into denormal floats (seconds per call), which is not what the test is for
    kind = "embedded" if args.tiny or args.micro else "released"
    frames, (h, w) = (5, (8, 8)) if args.tiny else ((9, (16, 16)) if args.micro
                                                    else (14, (40, 64)))
    unet, vae = models(kind, device, dtype)
    in_ch = unet.config.in_channels
    cross = unet.config.cross_attention_dim

    def unet_pass(model, batch, train):
        x = torch.randn(batch, frames, in_ch, h, w, device=device, dtype=dtype)
        args_ = (x, torch.full((batch,), 0.5, device=device),
                 torch.randn(batch, 1, cross, device=device, dtype=dtype),
                 torch.tensor([[7.0, 100.0, 0.02]] * batch, device=device, dtype=dtype))
        if not train:
            return lambda: model(*args_)
        return lambda: model(*args_).sample.float().square().mean().backward()

    latents = torch.randn(frames, 4, h, w, device=device, dtype=dtype)
    calls = {}
    for label, variant in (("stock Conv3d", with_stock_convs), ("as 2-D", lambda m: m)):
        u, v = variant(unet), variant(vae)
        nograd = torch.no_grad()
        calls["VAE decode", label] = (lambda: None, nograd(
            lambda v=v: v.decode(latents, num_frames=frames)))
        for batch in (1, 2):
            calls[f"UNet pass, batch {batch}", label] = (lambda: None,
                                                        nograd(unet_pass(u, batch, False)))
        calls["UNet train step, batch 4", label] = (lambda u=u: u.zero_grad(set_to_none=True),
                                                    unet_pass(u, 4, True))
    print(f"timing {len(calls)} rows in turn, {args.repeats} rounds after a warm-up …",
          flush=True)
    measured = timed_in_turn(calls, device, args.repeats)
    rows = []
    for (row, label), (seconds, peak) in measured.items():
        stock = measured[row, "stock Conv3d"][0]
        rows.append({"row": row, "convs": label, "seconds": seconds,
                     "speedup": stock / seconds, "peak_gb": peak})
    print(f"{card}: {frames} frames, latents {w}×{h}, {dtype}, {torch.get_num_threads()} CPU "
          f"threads, {kind} model")
    print_table(rows, ["row", "convs", "seconds", "speedup", "peak_gb"])
    record_results(args, "temporal_conv_micro" if args.micro else "temporal_conv", card, rows,
                   {"frames": frames, "latents": f"{w}x{h}", "model": kind})
    return 0


if __name__ == "__main__":
    sys.exit(main())
