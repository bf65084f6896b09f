"""Each benchmark script runs end to end in its --tiny mode (micro architecture, CPU) and
records its rows; the numbers themselves are measured on a GPU, never asserted in tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script,section,columns", [
    ("data.py", "data-tiny", {"loader", "clips_per_s", "speedup"}),
    ("train_step.py", "train_step-tiny", {"setting", "step_s", "speedup", "tflops", "mfu"}),
    ("sample.py", "sample-tiny", {"sampler", "controlnet", "seconds"}),
])
def test_tiny_benchmark_runs_and_records(script, section, columns, tmp_path):
    args = [sys.executable, str(BENCH / script), "--tiny", "--out", str(tmp_path)]
    if script != "data.py":
        args += ["--steps", "1"] if script == "train_step.py" else ["--repeats", "1"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    [path] = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    rows = data[section]["rows"]
    assert rows and all(columns <= set(r) for r in rows)
    assert data["card"].startswith("cpu-") and "torch" in data["versions"]
    assert all(v > 0 for r in rows for k, v in r.items() if k in ("clips_per_s", "step_s",
                                                                  "seconds"))
