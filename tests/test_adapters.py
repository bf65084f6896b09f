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
    ("custom", ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj",
                "ff.net.2"], 352, 52_117_504),  # the earlier toolkit's set: 3.42 %, not 0.5 %
])
def test_preset_sizes_on_the_released_unet(preset, targets, modules, params):
    with torch.device("meta"):
        unet = FramerUNet(**config("released-unet"))
    regex = target_regex(preset, targets)
    assert len(matching_modules(unet, regex)) == modules
    assert lora_parameter_count(unet, regex, 64) == params


@pytest.mark.parametrize("preset", ["attn", "attn+ff", "framer"])
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
