"""The run's metrics: ``metrics.jsonl`` (what ``report`` and the resume test read), the
experiment trackers of ``train.report_to`` (``trackers.py``), and the loss per σ bucket."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..core import edm
from ..core.atomic import atomic_file


def read_log(run_dir: Path) -> list[dict]:
    """The rows of ``RUN/metrics.jsonl`` (the one reader: ``report``, the run card); a line cut
    short by a crash is skipped, a missing log reads as no rows."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    for line in (path.read_text().splitlines() if path.is_file() else []):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


class MetricsLog:
    """metrics.jsonl (what ``report`` and the resume test read) + the run's trackers."""

    def __init__(self, run_dir: Path, step: int, enabled: bool, trackers=None):
        self.path, self.enabled, self.trackers = run_dir / "metrics.jsonl", enabled, trackers
        if not enabled:
            return
        if self.path.exists():  # keep what precedes the checkpoint we resume from
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= step:
                        keep.append(line)
                except (json.JSONDecodeError, KeyError, TypeError):
                    pass  # a line cut short by a crash
            with atomic_file(self.path) as tmp:
                tmp.write_text("".join(k + "\n" for k in keep))

    def log(self, step: int, values: dict) -> None:
        """Numbers go to both; images (H, W, 3 uint8 arrays) and files (paths, e.g. the
        validation GIF) only to the trackers."""
        if not self.enabled:
            return
        images = {k: v for k, v in values.items() if hasattr(v, "shape")}
        files = {k: v for k, v in values.items() if isinstance(v, Path)}
        scalars = {k: v for k, v in values.items() if k not in images and k not in files}
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        if self.trackers is not None:
            self.trackers.log(step, scalars, images, files)

    def close(self):
        """The trackers end with ``accelerator.end_training()``."""


def sigma_buckets(sigmas: torch.Tensor, losses: torch.Tensor) -> dict:
    out: dict[str, list] = {}
    for s, l in zip(sigmas.tolist(), losses.tolist()):
        out.setdefault(f"loss_sigma/{edm.log_sigma_bucket(s)}", []).append(l)
    return {k: sum(v) / len(v) for k, v in out.items()}


class ThroughputMeter:
    """Samples per second over the steps since the last logged one (+ peak GPU memory)."""

    def __init__(self, samples_per_step: int):
        self.samples_per_step, self.steps, self.start = samples_per_step, 0, time.perf_counter()

    def count(self) -> None:
        self.steps += 1

    def since_last_log(self) -> dict:
        elapsed = time.perf_counter() - self.start
        out = {"samples_per_s": self.steps * self.samples_per_step / elapsed}
        if torch.cuda.is_available():
            out["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        self.steps, self.start = 0, time.perf_counter()
        return out
