"""Model cards: a tiny training run's folder, its lora/ and every export (peft, merged, comfyui)
carry a Hub-style README.md (front matter the Hub's own parser reads) with the run's numbers.
Nothing is uploaded."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from framerturbo.cli.main import main
from framerturbo.core.config import load_config
from framerturbo.models.card import SVD_LICENSE, render, write_card
from framerturbo.train.loop import train
from videos import make_dataset


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    clips = make_dataset(root / "clips", n=4)  # 3 train + 1 held out
    return train(load_config(None, [
        f"data.sources={clips}", f"train.output_dir={root / 'my-signs'}",
        "model.pretrained=random-micro", "data.num_frames=5", "data.height=64", "data.width=64",
        "data.stride=2", "data.validation_clips=1", "lora.rank=4", "lora.alpha=4",
        "train.max_steps=2", "train.batch_size=2", "validation.steps=2",
        "train.report_to=none"]))


def last_values(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {k: v for r in rows for k, v in r.items()}


def test_run_folder_and_lora_cards(run_dir):
    facts = json.loads((run_dir / "card.json").read_text())
    train, val = facts["data"]["train"], facts["data"]["validation"]
    assert (train["clips"], train["files"], val["clips"]) == (3, 3, 1)
    assert train["fps"] == {"12": 3} and train["sampled_fps"] == {"6": 3}  # stride 2 of 12 fps
    assert train["sizes"] == {"64x64": 3}
    for folder, kind_line in ((run_dir, "training run"), (run_dir / "lora", "LoRA")):
        card = ModelCard.load(folder / "README.md")
        meta = card.data.to_dict()
        assert meta["library_name"] == "diffusers" and meta["license"] == "apache-2.0"
        assert {"framerturbo", "lora"} <= set(meta["tags"]) and "base_model" not in meta
        text = card.text
        assert kind_line in text
        assert "3 clips from 3 files" in text and "1 clip from 1 file" in text
        assert "LoRA preset `attn`, rank 4, alpha 4" in text and "2 steps of 2" in text
        psnr = last_values(run_dir)["val/psnr"]
        assert f"| val/psnr | {psnr:.4g} |" in text
        assert f"--lora {folder}:1.0" in text


def test_every_export_gets_a_card_with_the_runs_numbers(run_dir, tmp_path):
    outs = {"peft": tmp_path / "p", "merged": tmp_path / "m", "comfyui": tmp_path / "c.safetensors"}
    for fmt, out in outs.items():
        assert main(["export", str(run_dir), "--format", fmt, "-o", str(out), "--model",
                     "random-micro", "--scale", "0.5"]) == 0
    cards = {fmt: ModelCard.load((out if out.is_dir() else out.parent) / "README.md")
             for fmt, out in outs.items()}
    assert cards["peft"].data.library_name == "peft"
    assert cards["merged"].data.library_name == "diffusers"
    assert "lora" not in cards["merged"].data.tags  # merged: a plain model now
    assert "merged at scale 0.5" in cards["merged"].text
    assert "--model " + str(outs["merged"]) in cards["merged"].text
    assert "c.safetensors" in cards["comfyui"].text
    for card in cards.values():
        assert "3 clips from 3 files" in card.text and "2 steps of 2" in card.text
    # a README.md that is not ours is never overwritten
    (tmp_path / "README.md").write_text("mine")
    assert main(["export", str(run_dir), "--format", "comfyui", "-o", str(outs["comfyui"]),
                 "--model", "random-micro"]) == 0
    assert (tmp_path / "README.md").read_text() == "mine"
    assert (tmp_path / "c.README.md").is_file()


def test_base_model_and_licence_of_the_released_weights(tmp_path):
    local = tmp_path / "framer_512x320"
    local.mkdir()
    facts = {"base_model": str(local), "svd": "stabilityai/stable-video-diffusion-img2vid-xt",
             "training": {}}
    card = ModelCard.load(write_card(tmp_path / "README.md", facts, "lora", "x"))
    assert card.data.base_model == ["wwen1997/framer_512x320",
                                    "stabilityai/stable-video-diffusion-img2vid-xt"]
    assert card.data.license == "other"
    assert card.data.license_name == SVD_LICENSE["license_name"]
    unknown = render({"base_model": str(tmp_path), "svd": ""}, "merged", "x")
    assert "base_model" not in unknown.split("---")[1] and "license: \"other\"" in unknown
