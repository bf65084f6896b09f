"""Shared fixtures: the micro Framer family (random weights), in memory and on disk in the
released two-folder layout (configs carrying the released class names and leftover keys)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

DATA = Path(__file__).parent / "data"

# The busy-cores warning (cli/cpu_share.py) reads the whole machine; tests that assert on
# stderr must not depend on what the other worker happens to run. Its own tests turn it on.
os.environ["FRAMERTURBO_CPU_CHECK"] = "0"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One worker per core (pytest -n): each runs its torch work, and every subprocess it starts,
    # on one thread, so two workers do not fight over the cores and a test's in-process and
    # subprocess runs agree in how CPU kernels split their reductions.
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=True)


# The overrides every tiny training run shares: random micro weights, 5 frames of 64×64, no
# validation split, a rank-4 LoRA, a log line per step (add the run's own on top).
TINY_TRAIN = ["model.pretrained=random-micro", "data.num_frames=5", "data.height=64",
              "data.width=64", "data.stride=2", "data.validation_clips=0", "lora.rank=4",
              "lora.alpha=4", "train.log_every=1"]


@pytest.fixture
def tiny_train_config():
    """``make(clips, out, *extra)`` → a Config for a tiny training run on ``clips``."""
    from framerturbo.core.config import load_config

    def make(clips, out, *extra):
        return load_config(None, [f"data.sources={clips}", f"train.output_dir={out}",
                                  *TINY_TRAIN, *extra])
    return make


@pytest.fixture(scope="session")
def micro_parts():
    from framerturbo.models.loading import random_micro_components

    return random_micro_components(seed=0)


@pytest.fixture(scope="session")
def micro_pipe(micro_parts):
    from framerturbo.sampling.pipeline import FramerPipeline

    pipe = FramerPipeline(**micro_parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def released_style_config(name: str, model) -> dict:
    """The released config.json with the micro model's widths swapped in (and its norm_groups,
    the micro family's one addition, which the released weights leave at the stock 32)."""
    cfg = json.loads((DATA / f"framer_{name}_config.json").read_text())
    for key, value in model.config.items():
        if key in cfg and not key.startswith("_"):
            cfg[key] = list(value) if isinstance(value, tuple) else value
    if model.config.get("norm_groups") is not None:
        cfg["norm_groups"] = model.config.norm_groups
    return cfg


def write_released_folder(folder: Path, name: str, model) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(released_style_config(name, model)))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / "diffusion_pytorch_model.safetensors")


@pytest.fixture(scope="session")
def released_layout(micro_parts, tmp_path_factory):
    """(framer_dir, svd_dir): framer_512x320-style unet/ + controlnet/, SVD-xt-style rest with
    fp16-variant weight names for the VAE and image encoder, as SVD-xt ships them."""
    root = tmp_path_factory.mktemp("released")
    framer, svd = root / "framer_512x320", root / "stable-video-diffusion-img2vid-xt"
    write_released_folder(framer / "unet", "unet", micro_parts["unet"])
    write_released_folder(framer / "controlnet", "controlnet", micro_parts["controlnet"])
    micro_parts["vae"].save_pretrained(svd / "vae", variant="fp16")
    micro_parts["image_encoder"].save_pretrained(svd / "image_encoder", variant="fp16")
    micro_parts["feature_extractor"].save_pretrained(svd / "feature_extractor")
    micro_parts["scheduler"].save_pretrained(svd / "scheduler")
    return framer, svd


def textured_image(size=64, seed=0, shift=(0, 0)) -> np.ndarray:
    """A smooth random texture with blobs (SIFT finds keypoints), optionally shifted."""
    rng = np.random.RandomState(seed)
    big = size + 32
    img = np.zeros((big, big, 3), np.float32)
    yy, xx = np.mgrid[:big, :big]
    for _ in range(40):
        cx, cy, r = rng.uniform(0, big), rng.uniform(0, big), rng.uniform(2, 8)
        img += rng.uniform(0, 1, 3) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
    img = (img / img.max() * 255).astype(np.uint8)
    dx, dy = shift
    return np.ascontiguousarray(img[16 - dy:16 - dy + size, 16 - dx:16 - dx + size])
