"""Memory/speed levers: each is selectable, changes nothing it should not, and fails with one
line where it cannot work (missing package, no GPU)."""

from __future__ import annotations

import copy
import importlib.util
import json

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN, textured_image
from framerturbo.models import levers
from framerturbo.cli.main import main
from framerturbo.core.config import ConfigError, load_config

RUN = dict(num_frames=5, height=64, width=64, num_inference_steps=2, output_type="np")
START, END = textured_image(64, seed=3), textured_image(64, seed=3, shift=(5, 2))


def sample(pipe):
    return pipe(START, END, generator=torch.Generator().manual_seed(0), **RUN).frames


def test_sdpa_is_the_default_kernel_and_setting_it_changes_nothing(micro_parts):
    from diffusers.models.attention_processor import AttnProcessor2_0

    from framerturbo.models.adapters import add_lora

    unet = copy.deepcopy(micro_parts["unet"])
    add_lora(unet, 4, 4, 0.0, r".*attn.*\.to_q")  # the kernel swap must not undo LoRA wrapping
    x = torch.randn(1, 3, 9, 8, 8)
    args = (x, torch.tensor([0.5]), torch.randn(1, 1, 32), torch.zeros(1, 3))
    before = unet(*args).sample
    levers.set_attention(unet, "sdpa")
    assert {type(p) for p in unet.attn_processors.values()} == {AttnProcessor2_0}
    assert torch.equal(unet(*args).sample, before)
    assert any("lora_A" in n for n, _ in unet.named_parameters())


@pytest.mark.skipif(importlib.util.find_spec("xformers") is not None, reason="xformers installed")
def test_xformers_without_the_package_says_what_to_install(micro_parts):
    with pytest.raises(levers.LeverError, match="pip install xformers"):
        levers.set_attention(copy.deepcopy(micro_parts["unet"]), "xformers")
    with pytest.raises(ConfigError, match="sdpa, xformers"):
        load_config(None, ["model.attention=flash"])


def test_vae_offload_samples_the_same_frames(micro_parts):
    from framerturbo.sampling.pipeline import FramerPipeline

    pipe = FramerPipeline(**{k: copy.deepcopy(v) for k, v in micro_parts.items()})
    pipe.set_progress_bar_config(disable=True)
    base = sample(pipe)
    levers.apply_offload(pipe, "vae")
    assert pipe.vae.device.type == "cpu" and pipe._execution_device == pipe.unet.device
    assert np.array_equal(sample(pipe), base)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_offload_without_a_gpu_is_one_clear_line(tmp_path, capsys):
    img = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(START).save(img)
    code = main(["interpolate", str(img), str(img), "-o", str(tmp_path / "o.mp4"), "--model",
                 "random-micro", "--height", "64", "--width", "64", "--num-frames", "5",
                 "--steps", "1", "--offload", "model"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no GPU here" in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_compiled_unet_trains_like_the_eager_one(tmp_path):
    from videos import make_dataset

    from framerturbo.train.loop import train
    from safetensors.torch import load_file

    clips = make_dataset(tmp_path / "clips", n=2)
    common = [f"data.sources={clips}", *TINY_TRAIN, "train.max_steps=2", "train.batch_size=1"]
    runs = {c: train(load_config(None, [*common, f"train.compile={c}",
                                        f"train.output_dir={tmp_path / str(c)}"]))
            for c in (False, True)}
    losses = [[json.loads(x)["loss"] for x in (r / "metrics.jsonl").read_text().splitlines()]
              for r in runs.values()]
    assert np.allclose(*losses, rtol=1e-3), losses  # kernels reorder sums, nothing more
    a, b = (load_file(r / "lora" / "pytorch_lora_weights.safetensors") for r in runs.values())
    assert a.keys() == b.keys()
