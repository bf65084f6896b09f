"""Each benchmark script runs end to end in its --tiny mode (micro architecture, CPU) and records
nothing: smoke numbers must never replace measured ones. The numbers themselves are measured on
real sizes (and a GPU where needed), never asserted in tests."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system  # whole-program: left out of the quick tier

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.glob("*")} if folder.exists() else {}


@pytest.mark.parametrize("script,columns", [
    ("data.py", ["video", "keyint", "speedup", "speedup_min", "speedup_max", "clip_cost"]),
    ("train_step.py", ["setting", "step_s", "speedup", "tflops", "mfu"]),
    ("sample.py", ["sampler", "controlnet", "seconds"]),
    ("turbo_quality.py", ["row", "psnr", "ssim", "detail", "s/clip"]),
    ("demo_lora.py", ["run", "psnr", "ssim", "train_s"]),
    ("temporal_conv.py", ["row", "convs", "seconds", "speedup"]),
    ("control_gain.py", ["model", "sigma", "loss_no_tracks", "loss_tracks", "gain_%"]),
    ("hand_finder.py", ["frames", "hands_found", "mje_px", "dtw_mje_px"]),
    ("where_it_loses.py", ["row", "static_mse", "far_static_mse", "moving_mse", "static_ssim",
                           "moving_ssim"]),
    ("copy_probe.py", ["sigma", "static", "moving", "copy_start"]),
    ("hold_still.py", ["row", "middle", "f0", "f1"]),
    ("keep_static.py", ["row", "psnr", "ssim", "static_mse", "moving_ssim"]),
    ("decode.py", ["data", "decode", "ms_per_video", "psnr_vs_fp32", "psnr_vs_real"]),
])
def test_tiny_benchmark_runs_and_never_records(script, columns, tmp_path):
    results = BENCH / "results"
    before = _snapshot(results)
    for extra in ([], ["--out", str(tmp_path)]):  # neither the default folder nor --out
        args = [sys.executable, str(BENCH / script), "--tiny", *extra]
        args += {"train_step.py": ["--steps", "1"],
                 "sample.py": ["--repeats", "1"],
                 "temporal_conv.py": ["--repeats", "1"]}.get(script, [])
        result = subprocess.run(args, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        assert any(set(columns) <= set(line.split()) for line in result.stdout.splitlines())
        assert "not recorded" in result.stdout
        if script != "data.py":
            break  # the model benchmarks are slow; one run shows the rule
    assert _snapshot(results) == before
    assert not list(tmp_path.iterdir())


def test_full_runs_record_their_rows(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        from _common import record_results
    finally:
        sys.path.remove(str(BENCH))
    args = argparse.Namespace(tiny=False, no_record=False, out=tmp_path)
    path = record_results(args, "data", "cpu-test", [{"speedup": 5.0}], {"keyint": 250})
    data = json.loads(path.read_text())
    assert data["data"]["rows"] == [{"speedup": 5.0}] and data["data"]["keyint"] == 250
    assert data["card"] == "cpu-test" and "torch" in data["versions"]


def test_gpu_suite_smoke_runs_every_step_and_records_nothing():
    """The one command a lent GPU machine runs (benchmarks/gpu_suite.sh), in its CPU --tiny mode:
    each benchmark step runs to exit 0 under its own limit and nothing lands in results/."""
    import os

    results = BENCH / "results"
    before = _snapshot(results)
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env["PYTHON"] = sys.executable
    result = subprocess.run(["bash", str(BENCH / "gpu_suite.sh"), "--tiny"], capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    ran = [line for line in result.stdout.splitlines() if line.startswith("== exit")]
    assert ran == ["== exit 0", "== exit 0"]  # sample.py and train_step.py (--micro: GPU only)
    assert result.stdout.count("not recorded (--tiny smoke run)") == 2
    assert _snapshot(results) == before
