"""Latent cache (parity with the uncached path, corruption, reuse), KLT tracks, config errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from framerturbo.core.config import ConfigError, load_config
from framerturbo.data.cache import CachedClipDataset, build_cache, open_cache
from framerturbo.data.tracking import klt_tracks, track_video
from framerturbo.denoising.encoding import encode_batch
from framerturbo.data.batching import collate
from framerturbo.data.splits import make_datasets
from framerturbo.train.loop import train
from videos import make_dataset, moving_square_frames, square_positions, write_video


@pytest.fixture(scope="module")
def cache_setup(tmp_path_factory, micro_parts):
    root = tmp_path_factory.mktemp("cache")
    clips = make_dataset(root / "clips", n=3)
    cfg = load_config(None, [f"data.sources={clips}", f"data.cache_dir={root / 'cache'}",
                             "model.pretrained=random-micro", "data.num_frames=5", "data.height=64", "data.width=64",
                             "data.stride=2", "data.validation_clips=0", "data.aug_variants=3",
                             "data.sampling=every-window", f"train.output_dir={root / 'run'}",
                             "lora.rank=4", "train.max_steps=2"])
    train_set, _ = make_datasets(cfg)
    folder = build_cache(cfg, train_set, micro_parts["vae"], micro_parts["image_encoder"],
                         progress=False)
    return cfg, train_set, folder


def test_cached_and_uncached_batches_are_equal(cache_setup, micro_parts):
    cfg, train_set, folder = cache_setup
    cached = CachedClipDataset(folder, train_set)
    assert len(cached) == len(train_set)
    for index in (0, len(train_set) - 1):
        for epoch in (0, 3):  # every-window: same clip each epoch, variant may differ
            raw = train_set[(index, epoch)]
            fresh = encode_batch(micro_parts["vae"], micro_parts["image_encoder"],
                                 collate([raw]), cfg.objective.cond_aug_mean,
                                 cfg.objective.cond_aug_std)
            hit = collate([cached[(index, epoch)]])
            for name in ("latents", "endpoint_latents", "aug_sigma", "image_embeddings",
                         "fps", "motion_bucket"):
                assert torch.allclose(hit[name].float(), getattr(fresh, name).float(),
                                      atol=1e-5), (name, index, epoch)


def test_corrupt_shard_is_detected_and_rebuilt(cache_setup, micro_parts):
    cfg, train_set, folder = cache_setup
    shard = folder / "shard-00000.safetensors"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        CachedClipDataset(folder, train_set)
    again = build_cache(cfg, train_set, micro_parts["vae"], micro_parts["image_encoder"],
                        progress=False)
    assert again == folder
    CachedClipDataset(folder, train_set)  # loads again


def test_a_killed_builds_temporaries_are_removed_by_the_next_build(cache_setup, micro_parts):
    cfg, train_set, folder = cache_setup
    leftovers = [folder / ".shard-00001.safetensors.k1ll3d.tmp.safetensors",
                 folder / ".index.json.k1ll3d.tmp.json"]
    for path in leftovers:
        path.write_bytes(b"half-written")
    assert build_cache(cfg, train_set, micro_parts["vae"], micro_parts["image_encoder"],
                       progress=False) == folder
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_cache_is_reused_and_training_uses_it_without_encoders(cache_setup, monkeypatch):
    cfg, _, folder = cache_setup
    assert open_cache(cfg).train.folder == folder
    import framerturbo.train.loop as loop

    def no_encoding(*a, **k):
        raise AssertionError("the VAE/CLIP were used although the cache was given")

    monkeypatch.setattr(loop, "encode_batch", no_encoding)
    run = train(cfg)
    assert (run / "lora" / "pytorch_lora_weights.safetensors").exists()


def test_models_that_share_encoders_share_the_cache_and_each_finds_it(cache_setup, micro_parts):
    cfg, train_set, folder = cache_setup
    first = cfg.model.pretrained
    cfg.model.pretrained = "runs/probe/wide/init"  # another UNet on the same VAE and CLIP
    try:
        assert build_cache(cfg, train_set, micro_parts["vae"], micro_parts["image_encoder"],
                           progress=False) == folder
        assert open_cache(cfg).train.folder == folder
        cfg.model.pretrained = first  # the model the cache was built for first still finds it
        assert open_cache(cfg).train.folder == folder
        cfg.model.pretrained = "runs/never-cached"
        with pytest.raises(ValueError, match="no cache matches"):
            open_cache(cfg)
    finally:
        cfg.model.pretrained = first


def test_changed_settings_do_not_reuse_the_cache(cache_setup):
    cfg, _, _ = cache_setup
    cfg.data.stride = 3
    with pytest.raises(ValueError, match="no cache matches"):
        open_cache(cfg)
    cfg.data.stride = 2


def test_klt_follows_a_moving_square_within_1_5_px(tmp_path):
    v, size, square = (2.0, 1.0), 128, 48
    frames = moving_square_frames(20, size=size, square=square, seed=5, velocity=v)
    truth = square_positions(20, velocity=v, limit=size - square)
    points, visible = klt_tracks(frames)
    on_square = [k for k in range(points.shape[1]) if visible[0, k]
                 and truth[0, 0] <= points[0, k, 0] <= truth[0, 0] + square
                 and truth[0, 1] <= points[0, k, 1] <= truth[0, 1] + square]
    assert sum(visible[:, k].all() for k in on_square) >= 3  # followed over the whole clip
    for k in on_square:
        offset = points[0, k] - truth[0]
        for t in np.flatnonzero(visible[:, k]):
            assert np.linalg.norm(points[t, k] - (truth[t] + offset)) <= 1.5
    out = tmp_path / "v.mp4.tracks.npz"
    n = track_video(write_video(tmp_path / "v.mp4", frames), out)
    with np.load(out) as data:
        assert data["points"].shape == (20, n, 2) and data["times"].shape == (20,)


def test_training_with_tracks_feeds_the_controlnet(tmp_path):
    clips = make_dataset(tmp_path / "clips", n=2)
    for video in sorted(Path(clips).glob("*.mp4")):
        track_video(video, video.with_name(video.name + ".tracks.npz"))
    cfg = load_config(None, [f"data.sources={clips}", "model.pretrained=random-micro",
                             "data.num_frames=5", "data.height=64", "data.width=64",
                             "data.stride=2", "data.validation_clips=0", "control.use=true", "control.train=lora", "lora.rank=4",
                             "train.max_steps=2", f"train.output_dir={tmp_path / 'run'}"])
    from framerturbo.train.setup import resolve_heatmap_size

    resolve_heatmap_size(cfg)  # random-micro: the released σ 8 / radius 20 (train() does this)
    train_set, _ = make_datasets(cfg)
    heat = train_set[(0, 0)]["heatmaps"]
    assert heat.shape == (5, 3, 64, 64) and int(heat.max()) == 255
    run = train(cfg)
    assert (run / "controlnet_lora" / "pytorch_lora_weights.safetensors").exists()


@pytest.mark.parametrize("overrides,match", [
    (["train.max_step=1"], "unknown key 'train.max_step' — did you mean 'max_steps'"),
    (["train.learning_rate=1"], "unknown key 'train.learning_rate' — valid keys: .*lr"),
    (["train.max_steps=ten"], "train.max_steps: expected an integer, got 'ten'"),
    (["trian.lr=1"], "unknown section 'trian'.*did you mean 'train'"),
    (["data.height=100"], "data.height must be a positive multiple of 64"),
    (["lora.preset=big"], "lora.preset: 'big' is not one of"),
    (["train.lr"], "must look like section.key=value"),
    (["control.train=lora"], "control.train needs control.use = true"),
    (["control.heatmap_sigma=-4"], "control.heatmap_sigma and heatmap_radius must be >= 0"),
    (["train.lr_scheduler=cosin"], "train.lr_scheduler: 'cosin' is not a schedule — did you mean "
                                   "'cosine'"),
    (["validation.guidance=[2]"], "validation.guidance must be"),
    (["objective.still_clips=1"], r"objective.still_clips must be in \[0, 1\)"),
    (["objective.kind=consistency", "objective.still_clips=0.2"], "does not use it"),
    (["objective.kind=consistency", "distill.max_guidance=3"], "set both"),
    (["train.lr=-1"], "train.lr must be > 0, got -1"),  # torch's error, after the models loaded
    (["train.lr=0"], "train.lr must be > 0, got 0"),
])
def test_config_errors_are_one_clear_message(overrides, match):
    with pytest.raises(ConfigError, match=match) as err:
        load_config(None, overrides)
    assert "\n" not in str(err.value)


def test_config_file_types_and_print(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nmax_steps = "many"\n')
    with pytest.raises(ConfigError, match="train.max_steps: expected an integer"):
        load_config(path)
    path.write_text('[data]\nsources = ["a", "b"]\n[train]\nlr = 3e-5\n')
    cfg = load_config(path, ["train.batch_size=4", "data.flip=true"])
    assert cfg.data.sources == ["a", "b"] and cfg.train.lr == 3e-5 and cfg.data.flip is True
    again = tmp_path / "again.toml"
    again.write_text(cfg.to_toml())
    assert load_config(again).to_dict() == cfg.to_dict()
