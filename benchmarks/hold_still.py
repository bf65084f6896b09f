"""The hold-still check: one frame as both endpoints; how much of it survives into each frame

A scene that does not move is the easiest interpolation there is: every generated frame should
equal the endpoint up to the VAE's own round trip. Framer's middle frames see only mask tokens in
their conditioning channels, so whatever they keep of the endpoints has travelled through the
UNet's temporal layers; this check shows how much does, frame by frame. For the first clips of
each folder, its first frame is given as both endpoints (the model's own sampler, guidance and
frame count); printed: PSNR of every frame position against that frame, beside the VAE round
trip of the same still video (the floor). The model's rows: the UNet's own frames (keep_static
off) and the frames the model's users get (its keep_static τ, which pastes back the pixels the
sample draws as the still background: `sampling/keep_static.py`).

    python benchmarks/hold_still.py --data data/signer-tune data/shapes-tune --max-clips 8
    python benchmarks/hold_still.py --tiny
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
    vae_round_trip,
)


def psnr_per_frame(video: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """(F,) PSNR in dB of each frame of a uint8 video against one uint8 frame."""
    err = (video.astype(np.float64) - frame.astype(np.float64)[None]) ** 2
    return 10 * np.log10(255.0 ** 2 / np.maximum(err.mean(axis=(1, 2, 3)), 1e-10))


def main(argv=None) -> int:
    from framerturbo.media.files import to_uint8
    from framerturbo.sampling.keep_static import keep_static
    from framerturbo.sampling.pipeline import FramerPipeline

    args = held_out_parser(__doc__, max_clips=8).parse_args(argv)
    device, card = device_and_name(args.tiny)
    if args.tiny:  # random micro model, one generated signer clip
        return tiny_signer_smoke(main, 1)
    pipe = FramerPipeline.from_framer(args.model, device=device, dtype="fp32")
    pipe.set_progress_bar_config(disable=True)
    record = pipe.record  # the model's framerturbo.json, read by from_framer
    results = []
    for source in args.data:
        clips, _ = held_out_clips([source], args.max_clips, record, 1)
        model, kept, floor = [], [], []
        for i, clip in enumerate(clips):
            frame, f = clip.frames[0], len(clip.frames)
            # one sample; keep_static runs after the decode, so it is applied here to the same
            # frames rather than sampling the clip again
            raw = pipe(frame, frame, num_frames=f, fps=clip.fps,
                       motion_bucket_id=clip.motion_bucket, output_type="pt", keep_static=0.0,
                       generator=torch.Generator().manual_seed(args.seed + i)).frames
            still = torch.from_numpy(frame).permute(2, 0, 1)[None].to(raw) / 255
            for video, scores in ((raw, model),
                                  (keep_static(raw, still, still, record.keep_static), kept)):
                scores.append(psnr_per_frame(to_uint8(video[0].permute(0, 2, 3, 1).numpy()),
                                             frame))
            still_video = np.repeat(frame[None], f, axis=0)
            floor.append(psnr_per_frame(vae_round_trip(pipe.vae, still_video), frame))
        name = Path(source).name
        print(f"\n{name} ({len(clips)} clips): PSNR (dB) of each frame against the held frame")
        rows = [{"data": name, "row": label, "middle": float(np.mean(np.stack(v)[:, 1:-1])),
                 **{f"f{k}": float(x) for k, x in enumerate(np.mean(np.stack(v), axis=0))}}
                for label, v in (("model (UNet alone)", model),
                                 (f"model, keep_static {record.keep_static:g}", kept),
                                 ("VAE round trip", floor))]
        print_table(rows, ["row", "middle", *[f"f{k}" for k in range(len(model[0]))]])
        results += rows
    record_results(args, "hold_still", card, results,
                   {"model": args.model, "seed": args.seed, "max_clips": args.max_clips})
    return 0


if __name__ == "__main__":
    sys.exit(main())
