"""Aspect/length buckets: the bucket of each clip, one bucket per batch, exact resume with buckets
on, cached latents per bucket, per-bucket counts in check-data and the run log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_TRAIN
from framerturbo.cli.main import main
from framerturbo.core.config import ConfigError, load_config
from framerturbo.core.settings import DataConfig
from framerturbo.data.batching import AddressSampler
from framerturbo.data.buckets import Bucketing
from framerturbo.data.clips import Span
from framerturbo.data.dataset import ClipDataset, ClipSettings
from framerturbo.data.sources import discover
from framerturbo.train.loop import train
from videos import moving_square_frames, write_video

# 64×128 area, 64-pixel sides: the micro model's multiple
BUCKETS = ["data.buckets=true", "data.bucket_pixels=8192", "data.bucket_frames=5,3"]
BASE = [*TINY_TRAIN, "train.lr=1e-3", "train.batch_size=2"]


def test_sizes_follow_the_aspect_ratio_under_the_pixel_budget():
    b = Bucketing.from_settings(DataConfig(buckets=True))  # 512×320's area, multiples of 64
    assert all(h * w <= 512 * 320 and h % 64 == 0 and w % 64 == 0 for h, w in b.sizes)
    assert b.size_for(1280, 720) == (320, 512)  # landscape 16:9 → 512×320
    assert b.size_for(720, 1280) == (512, 320)  # portrait sign-lexicon clip → 320×512
    assert b.size_for(480, 480) == (384, 384)  # square
    assert Bucketing.from_settings(DataConfig()) is None  # off by default: today's behaviour
    lengths = Bucketing(8192, 64, (9, 5))
    assert lengths.frames_for(Span(0, 20 / 12, 12), 2, 0.0) == 9  # 17 source frames fit
    assert lengths.frames_for(Span(0, 12 / 12, 12), 2, 0.0) == 5
    assert lengths.frames_for(Span(0, 8 / 12, 12), 2, 0.0) == 0


def test_bucket_settings_are_validated():
    with pytest.raises(ConfigError, match="data.bucket_multiple"):
        load_config(None, ["data.bucket_multiple=12"])
    with pytest.raises(ConfigError, match="data.bucket_frames"):
        load_config(None, ["data.bucket_frames=5,2"])
    with pytest.raises(ConfigError, match="data.bucket_pixels"):
        load_config(None, ["data.bucket_pixels=100"])


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Landscape and portrait clips of two lengths: three buckets."""
    d = tmp_path_factory.mktemp("mixed")
    for i in range(2):
        wide = moving_square_frames(24, size=128, seed=i)[:, 32:96]  # 128×64
        write_video(d / f"wide{i}.mp4", wide)
        write_video(d / f"tall{i}.mp4", moving_square_frames(24, size=128, seed=5 + i)[:, :, 32:96])
        write_video(d / f"short{i}.mp4", moving_square_frames(7, size=128, seed=9 + i)[:, 32:96])
    return d


def settings(**extra) -> ClipSettings:
    return ClipSettings(num_frames=5, height=64, width=64, stride=2, buckets=True,
                        bucket_pixels=8192, bucket_frames=[5, 3], **extra)


def test_each_clip_loads_in_its_bucket(mixed):
    ds = ClipDataset(discover([mixed]), settings())
    shapes = {Path(ref.source.path).name: ref.shape for ref in ds.items}
    assert shapes == {"short0.mp4": (64, 128, 3), "short1.mp4": (64, 128, 3),
                      "tall0.mp4": (128, 64, 5), "tall1.mp4": (128, 64, 5),
                      "wide0.mp4": (64, 128, 5), "wide1.mp4": (64, 128, 5)}
    for i, ref in enumerate(ds.items):
        h, w, f = ref.shape
        assert tuple(ds[(i, 0)]["frames"].shape) == (f, 3, h, w)
    off = ClipDataset(discover([mixed]), ClipSettings(num_frames=5, height=64, width=64, stride=2))
    assert off.bucket_keys() is None and {r.shape for r in off.items} == {(64, 64, 5)}


def test_every_batch_comes_from_one_bucket_and_the_order_is_a_function_of_the_step():
    groups = [("a",)] * 5 + [("b",)] * 3 + [("c",)] * 1
    whole = AddressSampler(len(groups), 2, 0, 1, seed=3, start=0, groups=groups)
    per_epoch = whole.per_epoch  # ceil(5/2) + ceil(3/2) + ceil(1/2)
    assert per_epoch == 6
    seen = set()
    for micro in range(3 * per_epoch):
        batch = whole.addresses(micro)
        assert len(batch) == 2 and len({groups[i] for i, _ in batch}) == 1
        assert len({e for _, e in batch}) == 1
        seen |= {i for i, e in batch if e == 1}
    assert seen == set(range(len(groups)))  # every clip in every epoch, none dropped
    resumed = iter(AddressSampler(len(groups), 2, 0, 1, seed=3, start=7, groups=groups))
    assert [next(resumed) for _ in range(5)] == [whole.addresses(m) for m in range(7, 12)]
    ranks = [AddressSampler(len(groups), 1, r, 2, seed=3, start=0, groups=groups) for r in (0, 1)]
    for micro in range(8):  # two processes take the two halves of one one-bucket batch
        a, b = (r.addresses(micro) for r in ranks)
        assert groups[a[0][0]] == groups[b[0][0]]
    other = AddressSampler(len(groups), 2, 0, 1, seed=4, start=0, groups=groups)
    assert [other.addresses(m) for m in range(6)] != [whole.addresses(m) for m in range(6)]


def _losses(run: Path):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


@pytest.mark.system
def test_resume_continues_exactly_with_buckets(mixed, tmp_path):
    def cfg(out):
        return load_config(None, [f"data.sources={mixed}", f"train.output_dir={out}", *BASE,
                                  *BUCKETS, "train.max_steps=6", "train.checkpoint_every=3",
                                  "train.grad_accum=2", "lora.dropout=0.1"])

    straight = train(cfg(tmp_path / "a"))
    broken = tmp_path / "b"
    train(cfg(broken), stop_at_step=3)
    train(cfg(broken), resume="latest")
    assert _losses(broken) == _losses(straight) and len(_losses(straight)) == 6
    a = load_file(sorted((straight / "checkpoints").iterdir())[-1] / "trainable.safetensors")
    b = load_file(sorted((broken / "checkpoints").iterdir())[-1] / "trainable.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    counts = next(r["data/buckets"] for r in rows if "data/buckets" in r)
    assert counts == {"128x64x3": 2, "128x64x5": 2, "64x128x5": 2}


def test_cache_holds_each_bucket_in_its_own_shards(mixed, tmp_path):
    common = [f"data.sources={mixed}", f"train.output_dir={tmp_path / 'run'}", *BASE, *BUCKETS,
              "train.max_steps=2", f"data.cache_dir={tmp_path / 'cache'}",
              "data.cache_shard_size=4"]
    assert main(["cache", *common]) == 0
    (folder,) = [p.parent for p in (tmp_path / "cache").glob("*/index.json")]
    index = json.loads((folder / "index.json").read_text())
    assert index["buckets"] == {"128x64x3": 2, "128x64x5": 2, "64x128x5": 2}
    metas = [json.loads(p.read_text()) for p in sorted(folder.glob("shard-*.json"))]
    assert sorted(m["bucket"] for m in metas) == ["128x64x3", "128x64x5", "64x128x5"]
    for meta in metas:
        w, h, f = (int(x) for x in meta["bucket"].split("x"))
        tensors = load_file(folder / f"shard-{metas.index(meta):05d}.safetensors")
        for clip in meta["clips"]:
            assert tensors[f"{clip['index']}.latents"].shape[0] == f
    assert main(["train", *common]) == 0  # batches of cached latents, one bucket each
    # the fingerprint covers the bucket settings: same sources, another budget → no match
    assert main(["train", *common, "data.bucket_pixels=4096"]) == 2


def test_check_data_counts_clips_per_bucket(mixed, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["check-data", str(mixed), "--num-frames", "5", "--stride", "2", "--buckets",
                 "--bucket-pixels", "8192", "--bucket-frames", "5,3", "--static-threshold", "0",
                 "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert doc["buckets"] == {"128x64x3": 2, "128x64x5": 2, "64x128x5": 2}
    assert {Path(s["path"]).name: s["bucket"] for s in doc["sources"]}["tall0.mp4"] == "64x128x5"
    assert "buckets: 128x64x3=2" in capsys.readouterr().out
