"""Quality of a turbo LoRA against its teacher, every row in one run on the same clips and seeds
(issue 13's table): the teacher's euler-30 with its guidance ramp, the undistilled model at 4
steps twice — with its best 4-step sampler (euler + CFG) and with the consistency sampler itself
(the turbo LoRA at scale 0: an LCM scheduler on an undistilled model, what the earlier toolkit
ran) — turbo-4/2/1, each of the two
4-step rows and the teacher with the clips' ground-truth tracks through the ControlNet, and,
with --domain-lora, a domain LoRA at euler-30 against the same LoRA stacked with the turbo
LoRA at 4 steps; with --compare-turbo, a second turbo LoRA's turbo-4/2/1 (and turbo-4 with
tracks) on the same clips and seeds — e.g. the adversarial one (`micro/turbo-adversarial`)
against the plain one. Cross-fade is printed for reference; seconds per clip are wall time in this
process (benchmarks/sample.py measures speed properly). The ``detail`` column is the generated
frames' Laplacian energy over the real frames' (eval.metrics.detail_ratio: 1 = as detailed,
below 1 blurred, above 1 grainy) — PSNR and SSIM rank a blurred mean above a sharp sample.

    python benchmarks/turbo_quality.py --turbo runs/micro/turbo \\
        --data data/shapes-val data/signer-val --max-clips 24 \\
        --domain-lora runs/demo/lora --domain-data runs/demo/data/val
    python benchmarks/turbo_quality.py --data data/shapes-val data/signer-val \
        --compare-turbo runs/micro/turbo-adversarial
    python benchmarks/turbo_quality.py --tiny     # smoke test: random micro model, 2 clips
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from _common import (  # noqa: E402
    arg_parser,
    device_and_name,
    held_out_clips,
    print_table,
    record_results,
)

TEACHER = ("euler", 30)
COMPARE = "compare"  # the adapter name of --compare-turbo's LoRA
COLUMNS = ["row", "psnr", "ssim", "detail", "s/clip"]
# label, sampler, steps, turbo LoRA on, ground-truth tracks
ROWS = [("teacher euler-30 + CFG", "euler", 30, False, False),
        ("undistilled euler-4 + CFG", "euler", 4, False, False),
        ("undistilled turbo sampler-4 (LCM)", "turbo", 4, False, False),
        ("turbo-4", "turbo", 4, True, False),
        ("turbo-2", "turbo", 2, True, False),
        ("turbo-1", "turbo", 1, True, False),
        ("teacher euler-30 + CFG, tracks", "euler", 30, False, True),
        ("turbo-4, tracks", "turbo", 4, True, True)]


def score(pipe, clips, label, sampler, steps, tracks, seed, guidance, keep_static=None):
    """One row; ``guidance``: the model's CFG ramp (the turbo sampler has no CFG);
    ``keep_static``: the pipeline's static-pixel τ (None: the model's)."""
    from framerturbo.eval.evaluate import own_tracks, score_model

    start = time.perf_counter()
    result = score_model(pipe, clips, label, tracks=own_tracks(clips) if tracks else None,
                         sampler=sampler, steps=steps,
                         guidance=guidance, seed=seed, keep_static=keep_static)
    seconds = (time.perf_counter() - start) / len(clips)
    row = result.metrics[label]
    return {"row": label, "psnr": row["psnr"], "ssim": row["ssim"],
            "detail": detail(result.outputs[label], clips), "clips": row["n_clips"],
            "s/clip": seconds}


def detail(videos, clips) -> float:
    """Mean over clips of the generated frames' fine detail relative to the real ones (1 = as
    detailed; below 1 blurred, above 1 grainy): PSNR/SSIM alone rank a blurred mean first."""
    from framerturbo.eval.metrics import detail_ratio

    return sum(detail_ratio(v[1:-1], c.frames[1:-1]) for v, c in zip(videos, clips)) / len(clips)


def set_turbo(pipe, on: bool | str, domain: bool) -> None:
    """The shipped turbo LoRA on or off (``on`` may instead name another loaded turbo adapter,
    which then runs alone)."""
    from framerturbo.models.adapters import TURBO_ADAPTER, set_weights

    weights = {on: 1.0} if isinstance(on, str) else {TURBO_ADAPTER: 1.0 if on else 0.0}
    if domain:
        weights["domain"] = 1.0
    set_weights(pipe, weights)


def crossfade_row(clips, label="cross-fade") -> dict:
    from framerturbo.eval.evaluate import score_baselines

    result = score_baselines(clips)
    m = result.metrics["crossfade"]
    return {"row": label, "psnr": m["psnr"], "ssim": m["ssim"],
            "detail": detail(result.outputs["crossfade"], clips), "clips": m["n_clips"]}


def targets(rows: dict[str, dict]) -> list[str]:
    """Issue 13's targets, each hit or missed, from this run's rows."""
    t, out = rows["teacher euler-30 + CFG"], []

    def line(name, ok, text):
        out.append(f"{'HIT ' if ok else 'MISS'} {name}: {text}")

    for n, dp, ds in ((4, 0.5, 0.02), (2, 1.0, None)):
        r = rows[f"turbo-{n}"]
        gap = t["psnr"] - r["psnr"]
        ok = gap <= dp and (ds is None or t["ssim"] - r["ssim"] <= ds)
        line(f"turbo-{n} near euler-30", ok, f"{r['psnr']:.2f} dB / {r['ssim']:.4f} vs "
             f"{t['psnr']:.2f} / {t['ssim']:.4f} (gap {gap:.2f} dB; allowed {dp}"
             + (f" dB and {ds} SSIM)" if ds else " dB)"))
    r4 = rows["turbo-4"]
    for label in ("undistilled euler-4 + CFG", "undistilled turbo sampler-4 (LCM)"):
        u = rows[label]
        line(f"turbo-4 beats {label} by 2 dB", r4["psnr"] - u["psnr"] >= 2,
             f"{r4['psnr']:.2f} vs {u['psnr']:.2f} dB ({r4['psnr'] - u['psnr']:+.2f})")
    gain_t = rows["teacher euler-30 + CFG, tracks"]["psnr"] - t["psnr"]
    gain_4 = rows["turbo-4, tracks"]["psnr"] - r4["psnr"]
    kept = gain_4 / gain_t if gain_t > 0 else float("nan")
    line("turbo-4 keeps half the teacher's track gain", gain_t > 0 and kept >= 0.5,
         f"teacher {gain_t:+.2f} dB, turbo-4 {gain_4:+.2f} dB (kept {kept:.0%})")
    return out


def main(argv=None) -> int:
    import torch

    from framerturbo.models.record import read_record
    from framerturbo.sampling.pipeline import FramerPipeline

    p = arg_parser(__doc__)
    p.add_argument("--model", default="micro")
    p.add_argument("--turbo", help="turbo LoRA: a `framerturbo distill` run or its lora/ "
                   "(default: the one shipped with --model)")
    p.add_argument("--data", nargs="+", default=["data/shapes-val", "data/signer-val"])
    p.add_argument("--max-clips", type=int, default=24, help="per data folder")
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domain-lora", help="a domain LoRA (the demo's) to stack with the turbo")
    p.add_argument("--domain-data", help="held-out clips of the domain LoRA's target")
    p.add_argument("--compare-turbo", metavar="DIR",
                   help="a second turbo LoRA: its turbo-4/2/1 rows on the same clips and seeds")
    p.add_argument("--keep-static", type=float, metavar="TAU",
                   help="static-pixel τ for every model row (default: the model's; 0: the "
                        "networks' own frames, as the tables before 2026-12-05 were measured)")
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny_smoke's run
    args = p.parse_args(argv)
    device, card = device_and_name(args.tiny or args.smoke)
    if args.tiny:
        return tiny_smoke(args)
    torch.manual_seed(0)
    pipe = FramerPipeline.from_framer(args.model, device=device, dtype="fp32")
    pipe.set_progress_bar_config(disable=True)
    folder = pipe.load_turbo(args.turbo)
    rows_of = list(ROWS)
    if args.compare_turbo:
        from framerturbo.models.adapters import find_turbo_dir

        other = find_turbo_dir(args.compare_turbo)
        pipe.load_lora_weights(str(other), adapter_name=COMPARE)
        rows_of += [(f"{label} ({other.parent.name if other.name == 'lora' else other.name})",
                     sampler, steps, COMPARE, tracks)
                    for label, sampler, steps, turbo, tracks in ROWS if turbo]
    record = read_record(args.model)
    print(f"CFG rows at the model's guidance ramp {record.guidance[0]:g} → {record.guidance[1]:g}")
    rows, notes = [], []
    for source in args.data:
        clips, skipped = held_out_clips([source], args.max_clips, record, args.stride,
                                        tracks=True)
        notes += skipped
        if not all(c.tracks is not None for c in clips):
            notes.append(f"{source}: some clips have no ground-truth tracks")
        name = Path(source).name
        by_label = {}
        for label, sampler, steps, turbo, tracks in rows_of:
            steps = min(steps, 2) if args.smoke else steps
            set_turbo(pipe, turbo, False)
            by_label[label] = score(pipe, clips, label, sampler, steps, tracks, args.seed,
                                    record.guidance, args.keep_static)
            print(f"{name}: {label}: {by_label[label]['psnr']:.2f} dB", flush=True)
        rows += [{"data": name, **r} for r in (*by_label.values(), crossfade_row(clips))]
        print(f"\n{name} ({len(clips)} clips):")
        print_table([r for r in rows if r["data"] == name], COLUMNS)
        for line in targets(by_label):
            print("  " + line)
    if args.domain_lora:
        from framerturbo.models.adapters import find_lora_dir

        pipe.load_lora_weights(str(find_lora_dir(args.domain_lora)), adapter_name="domain")
        clips, skipped = held_out_clips([args.domain_data], args.max_clips, record,
                                        args.stride, tracks=True)
        name = f"{Path(args.domain_data).name} (domain)"
        for label, sampler, steps, turbo in (("domain LoRA euler-30 + CFG", *TEACHER, False),
                                             ("domain LoRA + turbo-4", "turbo", 4, True)):
            set_turbo(pipe, turbo, True)
            steps = min(steps, 2) if args.smoke else steps
            rows.append({"data": name, **score(pipe, clips, label, sampler, steps, False,
                                                args.seed, record.guidance, args.keep_static)})
        rows.append({"data": name, **crossfade_row(clips)})
        print(f"\n{name} ({len(clips)} clips):")
        print_table([r for r in rows if r["data"] == name], COLUMNS)
        by_label = {r["row"]: r for r in rows if r["data"] == name}
        print("  " + targets_domain(by_label))
    for note in notes:
        print("note:", note)
    record_results(args, "turbo_quality", card, rows,
                   {"model": args.model, "turbo": str(folder), "seed": args.seed,
                    "guidance": list(record.guidance),
                    "keep_static": record.keep_static if args.keep_static is None
                    else args.keep_static,
                    "control_scale": record.control_scale,  # of the tracks rows
                    "stride": args.stride, "max_clips": args.max_clips})
    return 0


def targets_domain(rows: dict[str, dict]) -> str:
    d, s = rows["domain LoRA euler-30 + CFG"], rows["domain LoRA + turbo-4"]
    ok = d["psnr"] - s["psnr"] <= 0.7
    return (f"{'HIT ' if ok else 'MISS'} domain LoRA + turbo-4 within 0.7 dB of the LoRA at "
            f"euler-30: {s['psnr']:.2f} vs {d['psnr']:.2f} dB")


def tiny_smoke(args) -> int:
    """The whole table on the random micro model with a random turbo LoRA and two generated
    clips per world: shows that the script runs; its numbers mean nothing, never recorded."""
    import tempfile

    import torch

    from framerturbo.data.synthetic import write_dataset
    from framerturbo.models.adapters import add_lora, save_lora, target_regex
    from framerturbo.models.loading import load_components

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        unet = load_components("random-micro", device="cpu")["unet"]
        torch.manual_seed(0)
        for p in add_lora(unet, 4, 4, 0.0, target_regex("attn")):
            torch.nn.init.normal_(p, std=0.02)
        for name in ("turbo", "domain"):
            save_lora(unet, tmp / name)
        data = []
        for world in ("shapes", "signer"):
            write_dataset(world, 2, tmp / world, seed=7, progress=False)
            data.append(str(tmp / world))
        return main(["--model", "random-micro", "--turbo", str(tmp / "turbo"), "--data", *data,
                     "--max-clips", "1", "--domain-lora", str(tmp / "domain"),
                     "--compare-turbo", str(tmp / "domain"),
                     "--domain-data", data[1], "--no-record", "--smoke"])


if __name__ == "__main__":
    sys.exit(main())
