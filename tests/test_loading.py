"""Loading the released two-folder layout and our self-contained layout; clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from conftest import textured_image
from framerturbo.models.loading import cpu_decode_dtype, load_components, save_components
from framerturbo.models.names import ModelNotFoundError
from framerturbo.sampling.pipeline import FramerPipeline

RUN = dict(num_frames=5, height=64, width=64, num_inference_steps=2, output_type="np")


def frames(pipe, **kw):
    pipe.set_progress_bar_config(disable=True)
    return pipe(textured_image(64, 1), textured_image(64, 2),
                generator=torch.Generator().manual_seed(0), **RUN, **kw).frames


def test_released_pair_loads_and_matches_in_memory_model(released_layout, micro_pipe):
    framer, svd = released_layout
    pipe = FramerPipeline.from_framer(framer, svd, device="cpu", dtype="fp32")
    assert pipe.controlnet is not None
    tracks = np.stack([np.linspace([10, 10], [50, 40], 5)], 1)
    # same weights, config and group counts; a loaded UNet's float order may differ by an ulp
    np.testing.assert_allclose(frames(pipe, tracks=tracks), frames(micro_pipe, tracks=tracks),
                               atol=1e-4)


def test_self_contained_round_trip(released_layout, tmp_path, micro_pipe):
    framer, svd = released_layout
    parts = load_components(framer, svd, device="cpu")
    folder = save_components(parts, tmp_path / "mine")
    assert sorted(p.name for p in folder.iterdir()) == [
        "controlnet", "feature_extractor", "image_encoder", "model_index.json", "scheduler",
        "unet", "vae"]
    assert not list(tmp_path.glob(".mine*"))  # no temporary leftovers
    again = FramerPipeline.from_framer(folder, device="cpu", dtype="fp32")
    np.testing.assert_allclose(frames(again), frames(micro_pipe), atol=1e-4)
    # dtype auto (the CLI's default) differs only where the CPU decodes in bf16
    auto = FramerPipeline.from_framer(folder, device="cpu")
    assert again.decode_dtype is None
    assert auto.decode_dtype == cpu_decode_dtype("auto", torch.device("cpu"))
    np.testing.assert_allclose(frames(auto), frames(micro_pipe), atol=8 / 255)  # random weights
    save_components(parts, folder)  # overwriting an existing folder is atomic too
    assert (folder / "unet" / "config.json").exists()


def test_controlnet_is_optional(released_layout, tmp_path):
    framer, svd = released_layout
    only_unet = tmp_path / "framer"
    shutil.copytree(framer / "unet", only_unet / "unet")
    pipe = FramerPipeline.from_framer(only_unet, svd)
    assert pipe.controlnet is None
    assert np.isfinite(frames(pipe)).all()
    with pytest.raises(ValueError, match="needs a ControlNet"):
        frames(pipe, autopilot=True)
    assert load_components(framer, svd, controlnet=False)["controlnet"] is None


def test_missing_parts_are_named(released_layout, tmp_path):
    framer, svd = released_layout
    with pytest.raises(ModelNotFoundError, match=r"missing vae/, image_encoder/ in .*--svd"):
        load_components(framer)
    with pytest.raises(ModelNotFoundError, match="model folder not found"):
        load_components(tmp_path / "nope", svd)
    empty_unet = tmp_path / "f" / "unet"
    empty_unet.mkdir(parents=True)
    with pytest.raises(ModelNotFoundError, match="no .safetensors"):
        load_components(empty_unet.parent, svd)


def test_dtype_and_device_resolution():
    from framerturbo.models.loading import resolve_dtype, resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int8")


def test_random_micro_parts_do_not_depend_on_the_controlnet_flag():
    from framerturbo.models.loading import random_micro_components

    a, b = random_micro_components(controlnet=True), random_micro_components(controlnet=False)
    for name in ("unet", "vae", "image_encoder"):
        sa, sb = a[name].state_dict(), b[name].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
