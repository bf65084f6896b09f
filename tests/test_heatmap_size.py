"""The heat-map size is the ControlNet's: training draws the heat-maps the trained ControlNet
records, and sampling draws the ones its config records (conditioning parity for tracks)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN
from framerturbo.core.config import ConfigError, load_config
from framerturbo.core.tracks import HEATMAP_RADIUS, HEATMAP_SIGMA, rasterize_heatmaps
from framerturbo.train.setup import match_heatmap_size, resolve_heatmap_size


def _config(*extra):
    return load_config(None, [*TINY_TRAIN, "data.sources=unused", "control.use=true", *extra])


def test_the_pipeline_draws_the_heatmaps_its_controlnet_was_trained_on(micro_pipe):
    tracks = np.stack([np.linspace([10, 12], [40, 30], 5), np.linspace([50, 8], [20, 44], 5)], 1)
    seen = []
    hook = micro_pipe.controlnet.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["controlnet_cond"][0].clone()),
        with_kwargs=True)
    own = dict(micro_pipe.controlnet.config)
    try:
        for sigma, radius in ((3.0, 7.5), (HEATMAP_SIGMA, HEATMAP_RADIUS)):
            micro_pipe.controlnet.register_to_config(heatmap_sigma=sigma, heatmap_radius=radius)
            micro_pipe(np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8),
                       num_frames=5, height=64, width=64, num_inference_steps=1, tracks=tracks,
                       max_guidance_scale=1.0, output_type="np")
            expected = rasterize_heatmaps(tracks, 64, 64, sigma, radius).float()
            assert torch.equal(seen[-1], expected)
    finally:
        hook.remove()
        micro_pipe.controlnet.register_to_config(heatmap_sigma=own["heatmap_sigma"],
                                                 heatmap_radius=own["heatmap_radius"])
    assert not torch.equal(seen[0], seen[1])  # the two sizes really differ


def test_unset_size_comes_from_the_models_controlnet_else_the_released_one(tmp_path):
    cfg = _config(f"model.pretrained={tmp_path}")
    resolve_heatmap_size(cfg)  # no controlnet/ folder: the released heat-maps
    assert (cfg.control.heatmap_sigma, cfg.control.heatmap_radius) == (8.0, 20.0)

    (tmp_path / "controlnet").mkdir()
    (tmp_path / "controlnet" / "config.json").write_text(
        json.dumps({"heatmap_sigma": 4.0, "heatmap_radius": 10.0}))
    cfg = _config(f"model.pretrained={tmp_path}")
    resolve_heatmap_size(cfg)
    assert (cfg.control.heatmap_sigma, cfg.control.heatmap_radius) == (4.0, 10.0)

    cfg = _config(f"model.pretrained={tmp_path}", "control.heatmap_sigma=2")
    resolve_heatmap_size(cfg)  # the user's σ wins; its radius follows it
    assert (cfg.control.heatmap_sigma, cfg.control.heatmap_radius) == (2.0, 5.0)


def test_a_frozen_controlnet_refuses_other_heatmaps_a_trained_one_records_them(micro_parts,
                                                                                caplog):
    from framerturbo.models import FramerControlNet

    controlnet = FramerControlNet.from_unet(micro_parts["unet"],
                                            conditioning_embedding_out_channels=[16, 32, 32])
    assert controlnet.config.heatmap_sigma == HEATMAP_SIGMA  # the released default
    frozen = _config("lora.mode=lora", "control.heatmap_sigma=4")
    resolve_heatmap_size(frozen)
    with pytest.raises(ConfigError, match="frozen ControlNet"):
        match_heatmap_size(controlnet, frozen)

    trained = _config("control.train=full", "control.heatmap_sigma=4")
    resolve_heatmap_size(trained)
    with caplog.at_level(logging.WARNING):
        match_heatmap_size(controlnet, trained)
    assert "retraining the ControlNet" in caplog.text
    assert (controlnet.config.heatmap_sigma, controlnet.config.heatmap_radius) == (4.0, 10.0)


def test_training_draws_and_exports_the_configured_heatmaps(tmp_path):
    from framerturbo.data.splits import make_datasets
    from framerturbo.data.synthetic import write_dataset
    from framerturbo.train.loop import train

    data = tmp_path / "signer"
    write_dataset("signer", 2, data, num_frames=9, progress=False)
    cfg = _config(f"data.sources={data}", f"train.output_dir={tmp_path / 'run'}",
                  "train.max_steps=1", "control.train=full", "lora.mode=none",
                  "control.heatmap_sigma=3", "train.batch_size=1")
    run = train(cfg)
    saved = json.loads((run / "model" / "controlnet" / "config.json").read_text())
    assert (saved["heatmap_sigma"], saved["heatmap_radius"]) == (3.0, 7.5)
    assert "heatmap_sigma = 3.0" in (run / "config.toml").read_text()

    train_set, _ = make_datasets(cfg)  # cfg now holds the resolved size, as training used
    item = train_set[(0, 0)]
    ref = train_set.items[0]
    plan = train_set.clip_plan(0, 0)
    points = train_set.track_points(ref, plan, (64, 64), 1, 10)
    assert torch.equal(item["heatmaps"], rasterize_heatmaps(points, 64, 64, 3.0, 7.5))
