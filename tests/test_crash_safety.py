"""Nothing lost: SIGKILL a training run and a cache build at random moments (checkpoint and
shard writes included), resume each time, and end with exactly what an unbroken run gives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_TRAIN
from framerturbo.core.config import load_config
from framerturbo.train import checkpoint as ckpt
from framerturbo.train.loop import train
from videos import make_dataset

pytestmark = pytest.mark.system  # whole-program: left out of the quick tier

KILLS = 6
# CPU kernels split reductions by thread count, so bit-equality needs one count everywhere:
# every process here, killed or not, runs with one thread
ONE_THREAD = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
COMMON = [*TINY_TRAIN, "train.batch_size=2", "train.lr=1e-3"]


def kill_repeatedly(argv: list[str], kills: int, progress, seed: int = 0,
                    delay=(0.0, 0.8)) -> int:
    """Start ``argv`` ``kills`` times; once ``progress()`` (finished work on disk) has grown
    — start-up is over and the job is writing — SIGKILL it after a random ``delay``, so the
    signal lands in a step or a write, not in the imports. Returns how many runs were really
    killed (not finished before the signal)."""
    rng = random.Random(seed)
    killed = 0
    for _ in range(kills):
        before = progress()
        proc = subprocess.Popen([sys.executable, "-m", "framerturbo", *argv], env=ONE_THREAD,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while progress() == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(*delay))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    return killed


@pytest.fixture
def one_thread():
    """The in-process reference runs with the subprocesses' thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _newest_step(run: Path) -> int:
    """The step of the newest finished checkpoint (0 before the first)."""
    found = ckpt.list_checkpoints(run)
    return int(found[-1].name[len(ckpt.PREFIX):]) if found else 0


def test_training_survives_sigkill(tmp_path, one_thread):
    clips = make_dataset(tmp_path / "clips", n=3)
    run = tmp_path / "killed"
    overrides = [f"data.sources={clips}", *COMMON, "train.max_steps=20",
                 "train.checkpoint_every=1", "train.keep_checkpoints=2"]
    killed = kill_repeatedly(["train", *overrides, f"train.output_dir={run}", "--resume"],
                             KILLS, lambda: _newest_step(run))
    assert killed >= KILLS // 2, killed
    for path in ckpt.list_checkpoints(run):  # everything left on disk loads
        ckpt.load_checkpoint(path)
    result = subprocess.run([sys.executable, "-m", "framerturbo", "train", *overrides,
                             f"train.output_dir={run}", "--resume"], capture_output=True,
                            text=True, timeout=600, env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-2000:]
    straight = train(load_config(None, [*overrides, f"train.output_dir={tmp_path / 'straight'}"]))
    a = load_file(straight / "lora" / "pytorch_lora_weights.safetensors")
    b = load_file(run / "lora" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


def test_cache_build_survives_sigkill(tmp_path, one_thread):
    from framerturbo.data.cache import build_cache, open_cache
    from framerturbo.models.loading import random_micro_components
    from framerturbo.data.splits import make_datasets

    micro_parts = random_micro_components(controlnet=False)  # what `cache` loads
    clips = make_dataset(tmp_path / "clips", n=8)
    overrides = [f"data.sources={clips}", *COMMON, "data.sampling=every-window",
                 "data.cache_shard_size=1", "data.aug_variants=2"]
    killed = kill_repeatedly(["cache", *overrides, f"data.cache_dir={tmp_path / 'killed'}"],
                             KILLS, lambda: len(list((tmp_path / "killed").rglob("shard-*.json"))),
                             seed=1, delay=(0.0, 0.4))
    assert killed >= KILLS // 2, killed
    assert subprocess.run([sys.executable, "-m", "framerturbo", "cache", *overrides,
                           f"data.cache_dir={tmp_path / 'killed'}"], timeout=600,
                          env=ONE_THREAD).returncode == 0
    cfg = load_config(None, [*overrides, f"data.cache_dir={tmp_path / 'clean'}"])
    train_set, _ = make_datasets(cfg)
    clean = build_cache(cfg, train_set, micro_parts["vae"], micro_parts["image_encoder"],
                        progress=False)
    resumed = open_cache(load_config(None, [*overrides,
                                            f"data.cache_dir={tmp_path / 'killed'}"])).train
    import json

    got, want = (json.loads((f / "index.json").read_text()) for f in (resumed.folder, clean))
    assert got["data_fingerprint"] == want["data_fingerprint"]
    assert (got["encoders"], got["clips"], got["shards"]) == (
        want["encoders"], want["clips"], want["shards"]), (got, want)
    for shard in sorted(clean.glob("shard-*.safetensors")):
        a, b = load_file(shard), load_file(resumed.folder / shard.name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), shard.name
    assert not [p for p in resumed.folder.iterdir() if p.name.startswith(".")]
