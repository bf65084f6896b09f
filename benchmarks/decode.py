"""The VAE decode on a CPU in fp32 and in bf16 (what `--dtype auto` picks where the CPU has
native bf16 kernels: AVX512-BF16 or AMX): milliseconds per video, timed in turn, and how far the
bf16 frames land from the fp32 ones — PSNR against the fp32 decode, the share of uint8 values
that change, and each decode's PSNR against the real frames (the VAE round trip).

The latents are held-out clips' own (each frame encoded as the sampler encodes its endpoints),
so the frames are the ones a sample's decode produces, not noise:

    python benchmarks/decode.py --data data/signer-val data/photos-val --max-clips 8
    python benchmarks/decode.py --tiny
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import (  # noqa: E402
    device_and_name,
    held_out_clips,
    held_out_parser,
    print_table,
    record_results,
    tiny_signer_smoke,
    timed_in_turn,
)

COLUMNS = ["data", "decode", "ms_per_video", "psnr_vs_fp32", "uint8_changed", "psnr_vs_real"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def encode_clips(pipe, clips) -> torch.Tensor:
    """(N, F, 4, h, w) latents of every clip's frames, as the pipeline scales them."""
    from framerturbo.denoising.encoding import encode_endpoint_latents, pixels_from_uint8

    with torch.inference_mode():
        return torch.stack([
            encode_endpoint_latents(pipe.vae, pixels_from_uint8(
                torch.from_numpy(c.frames).permute(0, 3, 1, 2))) * pipe.vae.config.scaling_factor
            for c in clips])


def main(argv=None) -> int:
    from framerturbo.media.files import to_uint8
    from framerturbo.sampling.pipeline import FramerPipeline

    p = held_out_parser(__doc__, max_clips=8)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    if args.tiny:  # random micro model, two generated signer clips
        return tiny_signer_smoke(main, 2, "--repeats", "1")
    _, card = device_and_name(tiny=True)  # this CPU's name, even on a machine with a GPU
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    pipe = FramerPipeline.from_framer(args.model, device="cpu", dtype="fp32", controlnet=False)
    results = []
    for source in args.data:
        clips, _ = held_out_clips([source], args.max_clips, pipe.record, 1)
        latents = encode_clips(pipe, clips)
        frames_per = latents.shape[1]

        def decode(dtype):
            def prepare():
                pipe.decode_dtype = dtype
            return prepare, lambda: outs.__setitem__(dtype, pipe.decode_latents(latents,
                                                                                frames_per))
        outs: dict = {}
        with torch.inference_mode():
            times = timed_in_turn({None: decode(None), torch.bfloat16: decode(torch.bfloat16)},
                                  torch.device("cpu"), args.repeats)
        real = np.stack([c.frames for c in clips])
        as_uint8 = {k: to_uint8(v.permute(0, 1, 3, 4, 2).numpy()) for k, v in outs.items()}
        name = Path(source).name
        for dtype, label in ((None, "fp32"), (torch.bfloat16, "bf16 (autocast)")):
            results.append({
                "data": name, "decode": label,
                "ms_per_video": times[dtype][0] / len(clips) * 1e3,
                "psnr_vs_fp32": psnr(as_uint8[dtype], as_uint8[None]),
                "uint8_changed": float((as_uint8[dtype] != as_uint8[None]).mean()),
                "psnr_vs_real": psnr(as_uint8[dtype], real)})
    print(f"{card} ({torch.backends.cpu.get_cpu_capability()}, native bf16: {native}), "
          f"{torch.get_num_threads()} threads; {args.repeats} rounds timed in turn, medians")
    print_table(results, COLUMNS)
    fp32, bf16 = (np.mean([r["ms_per_video"] for r in results if r["decode"].startswith(k)])
                  for k in ("fp32", "bf16"))
    print(f"bf16 decode: {fp32 / bf16:.2f}× faster ({fp32:.1f} → {bf16:.1f} ms a video)")
    record_results(args, "decode_micro", card, results,
                   {"model": args.model, "native_bf16": native, "max_clips": args.max_clips})
    return 0


if __name__ == "__main__":
    sys.exit(main())
