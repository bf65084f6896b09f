"""Exports: merged == unmerged outputs; peft/merged/comfyui files reload with identical outputs;
two stacked LoRAs at scales (a, b) equal merging them at those scales."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from framerturbo.models.norms import set_norm_groups
from framerturbo.models.adapters import add_lora, load_loras, save_lora, target_regex
from framerturbo.cli.main import main
from framerturbo.models.record import RELEASED, read_record
from framerturbo.models import FramerUNet
from framerturbo.models.loading import load_components


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    return dict(sample=torch.randn(1, 3, 9, 8, 8, generator=g), timestep=torch.tensor(0.3),
                encoder_hidden_states=torch.randn(1, 2, 32, generator=g),
                added_time_ids=torch.tensor([[6.0, 100.0, 0.02]]))


@pytest.fixture(scope="module")
def base_and_loras(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    assert main(["new-model", "--out", str(root / "base")]) == 0
    loras = []
    for i, preset in enumerate(("attn", "framer")):
        unet = load_components(root / "base", device="cpu")["unet"]
        torch.manual_seed(i)
        for p in add_lora(unet, 4, 4, 0.0, target_regex(preset)):
            torch.nn.init.normal_(p, std=0.05)
        loras.append(save_lora(unet, root / f"lora{i}"))
    return root / "base", loras


def unet_with(base, specs):
    unet = load_components(base, device="cpu")["unet"]
    if specs:
        load_loras(unet, specs)
    return unet


def test_merged_equals_unmerged_and_reloads(base_and_loras, tmp_path):
    base, (lora, _) = base_and_loras
    x = inputs()
    with torch.no_grad():
        unmerged = unet_with(base, [(str(lora), 0.7)])(**x).sample
        plain = unet_with(base, [])(**x).sample
    assert main(["export", str(lora), "--format", "merged", "-o", str(tmp_path / "m"),
                 "--model", str(base), "--scale", "0.7"]) == 0
    merged = FramerUNet.from_pretrained(tmp_path / "m" / "unet")
    assert not any("lora" in k for k in merged.state_dict())
    with torch.no_grad():
        out = merged(**x).sample
    assert torch.allclose(out, unmerged, atol=1e-4)  # fused vs separate: float rounding
    assert (out - plain).abs().max() > 1e-3
    # the base folder holds every part, so the merge loads alone, and it samples as
    # --model BASE --lora LORA does: at the base's size, frames, sampler and guidance
    parts = load_components(tmp_path / "m", device="cpu")
    assert parts["controlnet"] is not None and parts["vae"] is not None
    assert read_record(tmp_path / "m") == read_record(base) != RELEASED

    from diffusers import UNetSpatioTemporalConditionModel
    stock = UNetSpatioTemporalConditionModel.from_pretrained(tmp_path / "m" / "unet")
    # the stock class + the micro family's group count (the released weights keep stock 32)
    set_norm_groups(stock, merged.config.get("norm_groups"))
    with torch.no_grad():
        assert torch.allclose(stock(**x).sample, out, atol=1e-4)

    assert main(["export", str(lora), "--format", "comfyui", "-o", str(tmp_path / "c.safetensors"),
                 "--model", str(base), "--scale", "0.7"]) == 0
    flat = load_file(tmp_path / "c.safetensors")
    assert "mask_token" in flat and "conv_in.weight" in flat
    fresh = FramerUNet.from_config(merged.config)
    fresh.load_state_dict(flat, strict=True)
    with torch.no_grad():
        assert torch.allclose(fresh(**x).sample, out, atol=1e-4)


def test_export_finds_the_runs_base_model(base_and_loras, tmp_path):
    import shutil

    base, (lora, _) = base_and_loras
    run = tmp_path / "run"
    shutil.copytree(lora, run / "lora")
    assert main(["export", str(run), "--format", "peft", "-o", str(tmp_path / "x")]) == 2
    (run / "config.toml").write_text(f'[model]\npretrained = "{base}"\n')
    assert main(["export", str(run), "--format", "merged", "-o", str(tmp_path / "m")]) == 0
    assert read_record(tmp_path / "m") == read_record(base)


def test_peft_export_reloads_with_peft(base_and_loras, tmp_path):
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict

    base, (lora, _) = base_and_loras
    x = inputs(2)
    with torch.no_grad():
        expected = unet_with(base, [(str(lora), 1.0)])(**x).sample
    assert main(["export", str(lora), "--format", "peft", "-o", str(tmp_path / "p"),
                 "--model", str(base)]) == 0
    assert {p.name for p in (tmp_path / "p").iterdir()} >= {"adapter_config.json",
                                                             "adapter_model.safetensors"}
    model = inject_adapter_in_model(LoraConfig.from_pretrained(tmp_path / "p"),
                                    unet_with(base, []))
    weights = {k.removeprefix("base_model.model."): v
               for k, v in load_file(tmp_path / "p" / "adapter_model.safetensors").items()}
    assert not set_peft_model_state_dict(model, weights).unexpected_keys
    with torch.no_grad():
        assert torch.allclose(model(**x).sample, expected, atol=1e-4)


def test_stacking_two_loras_equals_merging_them(base_and_loras):
    base, (a, b) = base_and_loras
    x = inputs(3)
    stacked = unet_with(base, [(str(a), 0.6), (str(b), 1.5)])
    merged = unet_with(base, [(str(a), 0.6), (str(b), 1.5)])
    merged.fuse_lora(lora_scale=1.0)
    merged.unload_lora()
    with torch.no_grad():
        assert torch.allclose(stacked(**x).sample, merged(**x).sample, atol=1e-4)
        single = unet_with(base, [(str(a), 0.6)])(**x).sample
        assert (stacked(**x).sample - single).abs().max() > 1e-3


def test_export_errors(tmp_path):
    assert main(["export", str(tmp_path), "--format", "merged", "-o", str(tmp_path / "x"),
                 "--model", "random-micro"]) == 2


def test_exports_never_replace_what_a_user_made(base_and_loras, tmp_path, capsys):
    """A folder export lands by replacing its folder whole: `--out photo.png` replaced the photo
    with a folder, and `--out` a folder of the user's would have replaced the folder. Both are now
    refused before any work; an earlier export of the same kind is replaced as before."""
    base, (lora, _) = base_and_loras
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"mine")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    weights = tmp_path / "weights.safetensors"  # someone's file of the comfyui export's name
    save_file({"w": torch.ones(2)}, weights)
    before = weights.read_bytes()
    for out, fmt in ((photo, "merged"), (mine, "merged"), (mine, "peft"), (photo, "comfyui"),
                     (weights, "comfyui"), (mine, "comfyui")):
        capsys.readouterr()
        assert main(["export", str(lora), "--format", fmt, "--out", str(out),
                     "--model", str(base)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(out) in err
    assert photo.read_bytes() == b"mine" and (mine / "notes.txt").read_text() == "mine"
    assert weights.read_bytes() == before
    for fmt in ("peft", "merged", "comfyui"):
        again = tmp_path / fmt
        for _ in range(2):  # the second run replaces the first's folder
            assert main(["export", str(lora), "--format", fmt, "--out", str(again),
                         "--model", str(base)]) == 0
