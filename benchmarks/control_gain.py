"""How much a ControlNet takes from its tracks: held-out EDM loss at fixed σ values with the clips'
ground-truth tracks through the ControlNet and without them (scale 0), on the same clips, noise
and endpoint augmentation. A gain near 0 % means the ControlNet learned to ignore the tracks, and
no track source (hand paths, autopilot, drawn tracks) can steer the model; sample metrics
(``framerturbo hand-eval``'s oracle row) then cannot gain either.

    python benchmarks/control_gain.py --model micro runs/micro/controlnet/model --data data/signer-val
    python benchmarks/control_gain.py --tiny     # smoke test: random micro model, 2 clips
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import arg_parser, device_and_name, print_table, record_results  # noqa: E402

COLUMNS = ["model", "sigma", "loss_no_tracks", "loss_tracks", "gain_%"]


def control_gain(model: str, data: str, clips: int, sigmas, device, batch: int = 16) -> list[dict]:
    import torch

    from framerturbo.core.config import load_config
    from framerturbo.core.seeding import stable_seed
    from framerturbo.data.batching import collate
    from framerturbo.data.splits import make_datasets
    from framerturbo.denoising.denoiser import FramerDenoiser
    from framerturbo.denoising.encoding import encode_batch
    from framerturbo.train.setup import load_models, resolve_heatmap_size
    from framerturbo.train.validate import fixed_sigma_loss

    cfg = load_config("micro/controlnet", [f"model.pretrained={model}", f"data.sources={data}",
                                           "data.cache_dir=", "data.sampling=uniform",
                                           "control.max_tracks=10", "control.heatmap_sigma=0",
                                           "control.heatmap_radius=0"])
    resolve_heatmap_size(cfg)  # the model's ControlNet's own heat-maps
    dataset, _ = make_datasets(cfg)
    models = load_models(cfg, device, need_encoders=True)
    if models.controlnet is None:
        raise SystemExit(f"{model}: no controlnet/ folder — nothing to measure")
    models.unet.eval()
    models.controlnet.eval()
    denoiser = FramerDenoiser(models.unet, models.controlnet)
    items = [dataset[(i % len(dataset), i // len(dataset))] for i in range(clips)]
    sums = {(s, scale): 0.0 for s in sigmas for scale in (0.0, 1.0)}
    with torch.no_grad():
        for lo in range(0, clips, batch):
            encoded = encode_batch(models.vae, models.image_encoder, collate(items[lo:lo + batch]),
                                   cfg.objective.cond_aug_mean, 0.0).to(device)
            for sigma in sigmas:
                g = torch.Generator().manual_seed(stable_seed("control-gain", sigma, lo))
                noise = torch.randn(encoded.latents.shape, generator=g).to(device)
                for scale in (0.0, 1.0):
                    loss = fixed_sigma_loss(denoiser, encoded, sigma, noise, scale)
                    sums[(sigma, scale)] += float(loss.sum())
    rows = []
    for sigma in sigmas:
        without, with_ = sums[(sigma, 0.0)] / clips, sums[(sigma, 1.0)] / clips
        rows.append({"model": model, "sigma": sigma, "loss_no_tracks": without, "loss_tracks": with_,
                     "gain_%": 100 * (without - with_) / without})
    return rows


def main(argv=None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--model", nargs="+", default=["micro"],
                   help="Framer model folders with controlnet/ (each measured in turn)")
    p.add_argument("--data", default="data/signer-val",
                   help="held-out clips with ground-truth tracks (CLIP.tracks.npz)")
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0])
    args = p.parse_args(argv)
    import torch

    device, card = device_and_name(args.tiny)
    torch.manual_seed(0)
    if args.tiny:
        from framerturbo.data.synthetic import write_dataset

        with tempfile.TemporaryDirectory() as tmp:
            write_dataset("signer", 2, tmp, progress=False)
            rows = control_gain("random-micro", tmp, 2, [1.0], device)
        print("random micro model on 2 generated signer clips:")
    else:
        rows = [row for model in args.model
                for row in control_gain(model, args.data, args.clips, args.sigmas, device)]
        print(f"on {args.data} ({args.clips} clips, the same noise for every model):")
    print_table(rows, COLUMNS)
    record_results(args, "control_gain", card, rows, {"model": args.model, "data": args.data,
                                                      "clips": args.clips})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
