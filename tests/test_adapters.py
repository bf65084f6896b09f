"""LoRA presets on the released architecture, and save → load → merge round trips."""

from __future__ import annotations

import pytest
import torch

from framerturbo.models.adapters import (add_lora, lora_parameter_count, load_loras, matching_modules,
                                  parse_lora_spec, save_lora, target_regex)
from framerturbo.models import FramerUNet, config


@pytest.mark.parametrize("preset,targets,modules,params", [
    ("attn", None, 256, 26_558_464),
    ("attn+ff", None, 384, 63_299_584),
    ("framer", None, 193, 35_669_056),
    ("turbo", None, 344, 64_077_824),  # attn + spatial resnets + σ embeddings (distill)
    ("attn+ff+conv", None, 472, 100_818_944),  # the union of attn+ff and turbo (the demo's)
    ("custom", ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj",
                "ff.net.2"], 352, 52_117_504),  # the earlier toolkit's set: 3.42 %, not 0.5 %
])
def test_preset_sizes_on_the_released_unet(preset, targets, modules, params):
    with torch.device("meta"):
        unet = FramerUNet(**config("released-unet"))
    regex = target_regex(preset, targets)
    assert len(matching_modules(unet, regex)) == modules
    assert lora_parameter_count(unet, regex, 64) == params


@pytest.mark.parametrize("preset", ["attn", "attn+ff", "framer", "attn+ff+conv"])
def test_lora_round_trip_and_count(preset, tmp_path):
    torch.manual_seed(0)
    unet = FramerUNet(**config("micro-unet"))
    regex = target_regex(preset)
    params = add_lora(unet, 4, 4, 0.0, regex)
    assert sum(p.numel() for p in params) == lora_parameter_count(
        FramerUNet(**config("micro-unet")), regex, 4)
    with torch.no_grad():
        for p in params:
            p.normal_(0, 0.1)
    save_lora(unet, tmp_path / "l")
    torch.manual_seed(0)
    fresh = FramerUNet(**config("micro-unet"))
    torch.manual_seed(0)
    base = FramerUNet(**config("micro-unet"))
    load_loras(fresh, [(str(tmp_path / "l"), 1.0)])
    g = torch.Generator().manual_seed(1)
    x = dict(sample=torch.randn(1, 3, 9, 8, 8, generator=g), timestep=torch.tensor(0.3),
             encoder_hidden_states=torch.randn(1, 2, 32, generator=g),
             added_time_ids=torch.tensor([[6.0, 100.0, 0.02]]))
    with torch.no_grad():
        trained, loaded, plain = unet(**x).sample, fresh(**x).sample, base(**x).sample
        assert torch.equal(trained, loaded)
        assert (trained - plain).abs().max() > 1e-2
        fresh.set_adapters(["lora0"], weights=[0.0])
        assert torch.allclose(fresh(**x).sample, plain, atol=1e-3)


def test_lora_spec_parsing():
    assert parse_lora_spec("runs/a/lora") == ("runs/a/lora", 1.0)
    assert parse_lora_spec("runs/a/lora:0.5") == ("runs/a/lora", 0.5)
    assert parse_lora_spec("C:/x/lora:-1") == ("C:/x/lora", -1.0)
    with pytest.raises(ValueError, match="match no module"):
        add_lora(FramerUNet(**config("micro-unet")), 4, 4, 0.0, r"nothing\.here")


def test_pipeline_lora_api_gives_the_same_frames_as_the_model_path(tmp_path):
    """diffusers' pipeline API (FramerLoraLoaderMixin: load_lora_weights, set_adapters,
    fuse_lora, unfuse_lora, unload_lora_weights) against the model-level path, on the micro
    pipeline with two stacked LoRAs; and a LoRA saved with diffusers' ``unet.`` key prefix."""
    from safetensors.torch import load_file, save_file

    from framerturbo.models.loading import load_components
    from framerturbo.sampling.pipeline import FramerPipeline

    folders = []
    for i, preset in enumerate(("attn", "framer")):
        unet = load_components("random-micro", device="cpu")["unet"]
        torch.manual_seed(i)
        for p in add_lora(unet, 4, 4, 0.0, target_regex(preset)):
            torch.nn.init.normal_(p, std=0.05)
        folders.append(save_lora(unet, tmp_path / f"lora{i}"))

    def frames(pipe):
        pipe.set_progress_bar_config(disable=True)
        a, b = (torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(s)) for s in (0, 1))
        return pipe(a, b, num_frames=5, height=64, width=64, num_inference_steps=3,
                    generator=torch.Generator().manual_seed(0), output_type="pt").frames

    specs = [(str(folders[0]), 0.6), (str(folders[1]), 1.5)]
    by_hand = FramerPipeline(**load_components("random-micro", device="cpu"))
    load_loras(by_hand.unet, specs)  # the model-level path
    expected = frames(by_hand)
    pipe = FramerPipeline(**load_components("random-micro", device="cpu"))
    base = frames(pipe)
    assert load_loras(pipe, specs) == ["lora0", "lora1"]  # through pipe.load_lora_weights
    assert pipe.get_list_adapters() == {"unet": ["lora0", "lora1"]}
    assert torch.equal(frames(pipe), expected)
    effect = (expected - base).abs().max()
    pipe.fuse_lora(components=["unet"], lora_scale=1.0)
    fused = (frames(pipe) - expected).abs().max()
    pipe.unfuse_lora(components=["unet"])
    unfused = (frames(pipe) - expected).abs().max()
    print(f"LoRA effect {effect:.4f}, fused vs unfused {fused:.2e}, after unfuse {unfused:.2e}")
    # fusing reorders float sums (~1e-6 in the UNet) that the σ=700 start of a random model
    # grows to a few 1e-3 in [0, 1] pixels; the LoRAs themselves move the frames by > 0.1
    assert effect > 0.1 and fused < effect / 10 and unfused < effect / 10
    pipe.unload_lora_weights()  # unmerging subtracted ΔW again: the base up to rounding
    assert (frames(pipe) - base).abs().max() < effect / 10

    # diffusers' own savers prefix the keys with "unet."; the mixin finds the prefix itself
    prefixed = tmp_path / "prefixed"
    prefixed.mkdir()
    weights = load_file(folders[0] / "pytorch_lora_weights.safetensors")
    save_file({f"unet.{k}": v for k, v in weights.items()},
              prefixed / "pytorch_lora_weights.safetensors")
    pipe.load_lora_weights(str(folders[0]), adapter_name="ours")
    pipe.set_adapters("ours", adapter_weights=0.6)
    ours = frames(pipe)
    pipe.delete_adapters("ours")
    pipe.load_lora_weights(str(prefixed), adapter_name="theirs")
    pipe.set_adapters("theirs", adapter_weights=0.6)
    assert torch.equal(frames(pipe), ours)


def test_stacking_loras_gives_no_peft_warning(tmp_path, recwarn):
    """PEFT warns "Already found a `peft_config` … Make sure to know what you are doing!" for
    every adapter after the first; stacking is what --lora A --lora B / --turbo mean."""
    unet = FramerUNet(**config("micro-unet"))
    add_lora(unet, 4, 4, 0.0, target_regex("attn"))
    save_lora(unet, tmp_path / "l")
    fresh = FramerUNet(**config("micro-unet"))
    assert load_loras(fresh, [(str(tmp_path / "l"), 0.5), (str(tmp_path / "l"), 0.5)]) == \
        ["lora0", "lora1"]
    assert not [w for w in recwarn if "peft_config" in str(w.message)]
