"""The run's metrics: ``metrics.jsonl`` (what ``report`` and the resume test read), TensorBoard
when installed, and the loss per σ bucket."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch

from ..core import edm
from ..core.atomic import atomic_file

logger = logging.getLogger(__name__)


class MetricsLog:
    """metrics.jsonl (what ``report`` and the resume test read) + TensorBoard when installed."""

    def __init__(self, run_dir: Path, step: int, enabled: bool):
        self.path, self.enabled = run_dir / "metrics.jsonl", enabled
        self.writer = None
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
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            logger.info("tensorboard is not installed; metrics go to metrics.jsonl only")

    def log(self, step: int, values: dict) -> None:
        """Numbers go to both; images (H, W, 3 uint8 arrays) only to TensorBoard."""
        if not self.enabled:
            return
        images = {k: v for k, v in values.items() if hasattr(v, "shape")}
        scalars = {k: v for k, v in values.items() if k not in images}
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        if self.writer is not None:
            for k, v in scalars.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.writer.add_scalar(k, v, step)
            for k, v in images.items():
                self.writer.add_image(k, v, step, dataformats="HWC")

    def close(self):
        if self.writer is not None:
            self.writer.close()


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
