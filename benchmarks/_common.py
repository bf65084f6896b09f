"""Shared by the benchmark scripts: the device and its name, a measured matmul peak, timing,
and the results file (benchmarks/results/<card>.json, one section per script)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def arg_parser(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark has; each script adds its own."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--tiny", action="store_true",
                   help="micro sizes on the CPU (smoke test; never recorded)")
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results)")
    p.add_argument("--no-record", action="store_true", help="print only, write no results")
    return p


def held_out_parser(doc: str, max_clips: int) -> argparse.ArgumentParser:
    """:func:`arg_parser` plus what the scripts that score a model on held-out folders share."""
    p = arg_parser(doc)
    p.add_argument("--model", default="micro")
    p.add_argument("--data", nargs="+", default=["data/signer-val"])
    p.add_argument("--max-clips", type=int, default=max_clips, help="per data folder")
    p.add_argument("--seed", type=int, default=0)
    return p


def tiny_signer_smoke(main, clips: int, *extra: str) -> int:
    """``main`` on the random micro model and ``clips`` generated signer clips, unrecorded:
    a --tiny run that shows a held-out script works."""
    import tempfile

    from framerturbo.data.synthetic import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        write_dataset("signer", clips, Path(tmp), seed=7, progress=False)
        return main(["--model", "random-micro", "--data", tmp, "--max-clips", str(clips),
                     *extra, "--no-record"])


def device_and_name(tiny: bool) -> tuple[torch.device, str]:
    if torch.cuda.is_available() and not tiny:
        return torch.device("cuda"), torch.cuda.get_device_name()
    return torch.device("cpu"), f"cpu-{os.cpu_count()}core-{platform.machine()}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median seconds per call of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def timed_in_turn(calls: dict, device: torch.device, repeats: int) -> dict:
    """Median seconds and peak memory (GB, None on CPU) per labelled ``(prepare, fn)``, the
    calls timed in turn — a, b, c, a, b, c, … after one untimed round — so a change in the
    machine's speed during the run touches every row alike (side-by-side ratios on a shared
    or throttling machine). ``prepare`` runs untimed before each call of ``fn``."""
    times: dict = {label: [] for label in calls}
    peaks: dict = {}
    for round_ in range(repeats + 1):
        for label, (prepare, fn) in calls.items():
            prepare()
            reset_peak(device)
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if round_:
                times[label].append(time.perf_counter() - start)
            peak = peak_memory_gb(device)
            peaks[label] = None if peak is None else max(peak, peaks.get(label) or 0.0)
    return {label: (sorted(t)[len(t) // 2], peaks[label]) for label, t in times.items()}


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, n: int) -> float:
    """Measured dense matmul throughput of this device at ``dtype``: the MFU denominator."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, device, repeats=10, warmup=3)
    return 2 * n**3 / seconds / 1e12


def peak_memory_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def versions() -> dict:
    import diffusers

    out = {"torch": torch.__version__, "diffusers": diffusers.__version__,
           "python": platform.python_version()}
    if torch.cuda.is_available():
        out["cuda"] = torch.version.cuda
    return out


def record(section: str, card: str, rows: list[dict], extra: dict | None = None,
           out_dir: Path | None = None) -> Path:
    """Merge this script's rows into results/<card>.json (written atomically)."""
    out_dir = Path(out_dir or RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (card.replace(" ", "_").replace("/", "_") + ".json")
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(card=card, versions=versions())
    data[section] = {"date": datetime.date.today().isoformat(), "rows": rows, **(extra or {})}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


def record_results(args, section: str, card: str, rows: list[dict],
                   extra: dict | None = None) -> Path | None:
    """Record a full run's rows (unless --no-record). A --tiny smoke run never records: its
    numbers only show that the script works, and must not replace measured ones."""
    if args.tiny or args.no_record:
        print("not recorded (" + ("--tiny smoke run" if args.tiny else "--no-record") + ")")
        return None
    path = record(section, card, rows, extra, args.out)
    print("recorded in", path)
    return path


def print_table(rows: list[dict], columns: list[str]) -> None:
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else ("—" if v is None else str(v))

    widths = [max(len(c), *(len(cell(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(cell(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def held_out_clips(sources, max_clips: int, record, stride: int, tracks: bool = False):
    """Held-out clips cut as `framerturbo evaluate` cuts them for a model with ``record`` (its
    size, frames, fps and motion bucket), at frame spacing ``stride``; returns (clips, notes)."""
    from types import SimpleNamespace

    from framerturbo.eval.compare import clip_settings
    from framerturbo.eval.evaluate import load_eval_clips

    flags = SimpleNamespace(height=None, width=None, num_frames=None, resize=None, overlap=None,
                            fps=None, motion_bucket=None, stride=stride, target_fps=None)
    return load_eval_clips(list(sources), clip_settings(flags, record, None), max_clips,
                           tracks=tracks)


def vae_round_trip(vae, frames):
    """(F, H, W, 3) uint8 frames through ``vae`` as the sampler encodes and decodes (the
    posterior's mode, one temporal decode), back as uint8: the floor a model's samples sit on."""
    from framerturbo.denoising.encoding import encode_endpoint_latents, pixels_from_uint8
    from framerturbo.media.files import to_uint8

    x = pixels_from_uint8(torch.from_numpy(frames).permute(0, 3, 1, 2))
    with torch.inference_mode():
        latents = encode_endpoint_latents(vae, x).to(vae.device, vae.dtype)
        out = vae.decode(latents, num_frames=len(frames)).sample.float().cpu()
    return to_uint8(((out + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy())
