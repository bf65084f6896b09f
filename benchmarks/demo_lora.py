"""How long the demo's LoRA should train: LoRA runs of different lengths, learning rates,
presets and ranks on the demo's training data, scored on a *tuning* set of the demo's domain
(seed 300 by default), never on the demo's held-out clips (seed 200), so choosing the demo's
recipe does not pick its test data. All runs in one process, same data, cache and sampling
seeds; prints PSNR/SSIM (with the model's own sampler, as the demo scores its LoRA) against the
base model and cross-fade, and each run's training time; with the shipped turbo
LoRA, each run is also scored stacked with it at 4 steps (the demo's ``lora+turbo`` row).

    python benchmarks/demo_lora.py                        # the runs docs/micro-model.md reports
    python benchmarks/demo_lora.py --runs 200:4e-3:attn+ff 100:8e-3:attn+ff 200:4e-3:turbo:32
    python benchmarks/demo_lora.py --domain camera --runs 200:4e-3:turbo   # the same LoRA on
                                                          # another synth domain (not the demo's)
    python benchmarks/demo_lora.py --tiny                 # smoke test (never recorded)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import arg_parser, device_and_name, print_table, record_results  # noqa: E402

# the runs docs/micro-model.md reports for micro Framer v2.2 (the demo trains 200:4e-3:turbo)
RUNS = ["200:4e-3:attn+ff", "200:4e-3:turbo", "200:4e-3:attn+ff:32", "200:4e-3:attn+ff+conv",
        "200:8e-3:turbo", "200:2e-3:turbo"]


def parse_run(spec: str) -> tuple[int, float, str, int]:
    """``STEPS:LR:PRESET[:RANK]`` (rank 16, the demo's, when left out); PRESET ``full`` trains
    the whole UNet instead of a LoRA — the ceiling of what adapting this model can reach."""
    steps, lr, preset, *rank = spec.split(":")
    return int(steps), float(lr), preset, int(rank[0]) if rank else 16


def main(argv=None) -> int:
    from framerturbo.data.synthetic import DOMAINS, write_dataset
    from framerturbo.eval.evaluate import evaluate, load_eval_clips, score_model
    from framerturbo.models.adapters import TURBO_ADAPTER, load_loras, set_weights
    from framerturbo.models.record import read_record
    from framerturbo.sampling.pipeline import FramerPipeline
    from framerturbo.tasks import demo
    from framerturbo.train.loop import train

    p = arg_parser(__doc__)
    p.add_argument("--runs", nargs="+", default=RUNS, metavar="STEPS:LR:PRESET[:RANK]")
    p.add_argument("--domain", default=demo.DOMAIN, choices=DOMAINS,
                   help="the synth domain to adapt to (default: the demo's, signer-close); "
                        "another one measures what the same LoRA gains where the base knows less")
    p.add_argument("--train-clips", type=int, default=64,
                   help="training clips (seed 100, as the demo's; 64 = the demo's)")
    p.add_argument("--tuning-seed", type=int, default=300,
                   help="seed of the tuning clips (the demo holds out seed 200: not that)")
    p.add_argument("--p-mean", type=float, default=None,
                   help="every run's σ ~ LogNormal(p_mean, p_std) (the demo's config when "
                        "left out)")
    p.add_argument("--p-std", type=float, default=None)
    p.add_argument("--loss-frames", choices=["all", "middle"], default=None,
                   help="every run's objective.loss_frames (the demo's config when left out)")
    args = p.parse_args(argv)
    if args.tuning_seed == 200:
        p.error("seed 200 is the demo's held-out set; tune on another seed")
    runs = ["2:4e-3:attn"] if args.tiny else args.runs
    # scored with the model's own sampler, as the demo scores its LoRA (2 steps in a smoke run)
    record = read_record("micro")
    train_clips, tune_clips, sample_steps = (4, 1, 2) if args.tiny else (args.train_clips, 8,
                                                                         record.steps)
    _, card = device_and_name(True)  # the demo runs on the CPU
    work = Path(tempfile.mkdtemp(prefix="demo-lora-"))
    try:
        data = work / "data"
        write_dataset(args.domain, train_clips, data / "train", 9, 64, seed=100, progress=False)
        write_dataset(args.domain, tune_clips, data / "val", 9, 64, seed=args.tuning_seed,
                      progress=False)
        plan = demo.DemoPlan(train_clips, tune_clips, 1, sample_steps, 1e-3)
        clips, _ = load_eval_clips([data / "val"], demo.demo_config(data, work, "micro",
                                                                    plan).data)
        pipe = FramerPipeline.from_framer("micro", device="cpu", dtype="fp32", controlnet=False)
        pipe.set_progress_bar_config(disable=True)
        kw = dict(sampler=record.sampler, steps=sample_steps, guidance=record.guidance, seed=0)
        base = evaluate(pipe, clips, label="base", **kw)
        rows = [{"run": name, **{k: base.metrics[name][k] for k in ("psnr", "ssim")},
                 "train_s": None} for name in ("base", "crossfade")]
        turbo = demo._shipped_turbo(pipe)
        if turbo:
            set_weights(pipe.unet, {TURBO_ADAPTER: 1.0})
            scores = score_model(pipe, clips, "turbo", **demo.TURBO_KW, seed=0).metrics["turbo"]
            rows[0] |= {"turbo_psnr": scores["psnr"], "turbo_ssim": scores["ssim"]}
        for spec in runs:
            steps, lr, preset, rank = parse_run(spec)
            cfg = demo.demo_config(data, work, "micro", demo.DemoPlan(
                train_clips, tune_clips, steps, sample_steps, lr))
            cfg.train.output_dir = str(work / spec.replace(":", "_"))
            if preset == "full":
                cfg.lora.mode = "full"
            else:
                cfg.lora.preset, cfg.lora.rank, cfg.lora.alpha = preset, rank, rank
            if args.p_mean is not None:
                cfg.objective.p_mean = args.p_mean
            if args.p_std is not None:
                cfg.objective.p_std = args.p_std
            if args.loss_frames is not None:
                cfg.objective.loss_frames = args.loss_frames
            demo.cache_latents(cfg, pipe, work / "cache")
            start = time.perf_counter()
            run = train(cfg)
            seconds = time.perf_counter() - start
            row = {"run": spec, "train_s": seconds}
            if preset == "full":  # its own model folder; the turbo LoRA was not made for it
                tuned = FramerPipeline.from_framer(str(run / "model"), device="cpu", dtype="fp32",
                                                   controlnet=False)
                tuned.set_progress_bar_config(disable=True)
                scores = score_model(tuned, clips, "full", **kw).metrics["full"]
                rows.append(row | {"psnr": scores["psnr"], "ssim": scores["ssim"]})
                print(f"  {spec}: {scores['psnr']:.2f} dB / {scores['ssim']:.3f}, trained in "
                      f"{seconds:.0f} s", flush=True)
                continue
            (name,) = load_loras(pipe.unet, [(str(run / "lora"), 1.0)])
            if turbo:
                set_weights(pipe.unet, {name: 1.0, TURBO_ADAPTER: 0.0})
            scores = score_model(pipe, clips, "lora", **kw).metrics["lora"]
            row |= {"psnr": scores["psnr"], "ssim": scores["ssim"]}
            if turbo:  # stacked with the turbo LoRA, as the demo's lora+turbo row
                set_weights(pipe.unet, {name: 1.0, TURBO_ADAPTER: 1.0})
                scores = score_model(pipe, clips, "lora+turbo", **demo.TURBO_KW,
                                     seed=0).metrics["lora+turbo"]
                row |= {"turbo_psnr": scores["psnr"], "turbo_ssim": scores["ssim"]}
            pipe.unet.delete_adapters([name])
            rows.append(row)
            print(f"  {spec}: {row['psnr']:.2f} dB / {row['ssim']:.3f}"
                  + (f", with turbo-4 {row['turbo_psnr']:.2f} / {row['turbo_ssim']:.3f}"
                     if turbo else "") + f", trained in {seconds:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{card}: demo LoRA runs scored on {tune_clips} tuning clips "
          f"({args.domain}, seed {args.tuning_seed}), {record.sampler}-{sample_steps} at "
          f"guidance {record.guidance[0]:g} → {record.guidance[1]:g}, LoRAs trained on "
          f"{train_clips} "
          "clips; turbo_*: stacked with the shipped turbo LoRA at 4 steps")
    print_table(rows, ["run", "psnr", "ssim", "turbo_psnr", "turbo_ssim", "train_s"])
    section = "demo_lora" if args.domain == demo.DOMAIN else f"demo_lora_{args.domain}"
    record_results(args, section, card, rows, {"tuning_seed": args.tuning_seed,
                                               "domain": args.domain, "train_clips": train_clips,
                                               "guidance": list(record.guidance),
                                               "p_mean": args.p_mean, "p_std": args.p_std,
                                               "loss_frames": args.loss_frames})
    return 0


if __name__ == "__main__":
    sys.exit(main())
