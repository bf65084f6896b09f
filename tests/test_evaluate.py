"""`evaluate` scores clips exactly as training cuts and conditions them (every window, manifest
spans, crop, fps/stride, motion bucket), and compares several rows in one report."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from framerturbo.cli.main import main
from framerturbo.core.config import load_config
from framerturbo.data.dataset import (ClipDataset, ClipSettings, motion_bucket_from_score,
                                      motion_score)
from framerturbo.core.settings import DataConfig
from framerturbo.data.sources import discover
from framerturbo.media.video import resize_frames
from framerturbo.eval.evaluate import load_eval_clips
from videos import moving_square_frames, write_video

SETTINGS = DataConfig(num_frames=5, height=64, width=64, stride=2, motion_bucket="auto")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    wide = moving_square_frames(24, size=96, seed=1)[:, 16:80]  # 96×64: crop must keep aspect
    return (write_video(d / "a.mp4", moving_square_frames(24, seed=0), fps=12),
            write_video(d / "b.mp4", wide, fps=12))


def test_every_window_of_every_file_as_training_cuts_it(videos):
    from framerturbo.media.files import read_video_frames

    clips, notes = load_eval_clips([videos[0].parent], SETTINGS)
    # 24 frames, 5 frames 2 apart, windows back to back: starts at frames 0 and 10, per file
    assert [c.name for c in clips] == ["a.mp4@0.00s", "b.mp4@0.00s", "a.mp4@0.83s",
                                       "b.mp4@0.83s"] and not notes
    decoded = read_video_frames(videos[1])
    assert np.array_equal(clips[3].frames, resize_frames(decoded[10:19:2], 64, 64, "crop"))
    for clip in clips:  # training's conditioning: fps / stride, motion bucket from the clip
        assert clip.fps == pytest.approx(6.0)
        assert clip.motion_bucket == motion_bucket_from_score(motion_score(clip.frames))
    # the same frames the training dataset gives for every-window
    train = ClipDataset(discover([videos[0].parent]),
                        ClipSettings(**dataclasses.asdict(SETTINGS) | {"sampling": "every-window"}))
    assert np.array_equal(train.load(1)["frames"].permute(0, 2, 3, 1).numpy(), clips[2].frames)
    again, _ = load_eval_clips([videos[0].parent], SETTINGS)
    assert all(np.array_equal(x.frames, y.frames) for x, y in zip(clips, again))
    overlap, _ = load_eval_clips([videos[0]], dataclasses.replace(SETTINGS, window_overlap=2))
    assert [c.name for c in overlap] == ["a.mp4@0.00s", "a.mp4@0.50s", "a.mp4@1.00s"]
    capped, _ = load_eval_clips([videos[0].parent], SETTINGS, max_clips=3)
    assert [c.name for c in capped] == [c.name for c in clips[:3]]


def test_manifest_spans_and_rates_are_honoured(videos, tmp_path):
    from framerturbo.media.files import read_video_frames

    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": str(videos[0]), "start": 6, "end": 17}) + "\n"
                        + json.dumps({"path": str(videos[0]), "start_time": 0.25, "fps": 24})
                        + "\n")
    clips, _ = load_eval_clips([manifest], SETTINGS)
    decoded = read_video_frames(videos[0])
    assert clips[0].name == "a.mp4@0.50s"  # frame 6 at 12 fps, one window fits in 6–17
    assert np.array_equal(clips[0].frames, decoded[6:15:2])
    # "fps": 24 re-times the file (as training does): 24 frames = 1 s, stride 2 = 1/12 s
    assert clips[1].name == "a.mp4@0.25s" and clips[1].fps == pytest.approx(12.0)
    assert len(clips) == 2


def _lora(tmp_path):
    import torch

    from framerturbo.models.adapters import add_lora, save_lora, target_regex
    from framerturbo.models.loading import random_micro_components

    unet = random_micro_components(controlnet=False)["unet"]
    add_lora(unet, 4, 4.0, 0.0, target_regex("attn"))
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 2.0)
    return save_lora(unet, tmp_path / "run" / "lora")


def test_one_call_compares_base_and_loras_with_training_conditions(videos, tmp_path):
    lora = _lora(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text('[model]\npretrained = "micro"\n[data]\nnum_frames = 5\n'
                      'height = 64\nwidth = 64\nstride = 2\nmotion_bucket = "auto"\n')
    out = tmp_path / "m.json"
    assert main(["evaluate", "--config", str(config), "--data", str(videos[0].parent),
                 "--lora", str(lora.parent), "--lora", f"{lora}:0", "--compare", "base",
                 "--steps", "2", "--max-clips", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert list(rows) == ["base (micro)", "lora run", "lora run ×0", "crossfade", "flow"]
    assert {r["kind"] for r in rows.values()} == {"model", "lora", "baseline"}
    assert all(r["n_clips"] == 2 for r in rows.values())
    base, full, off = (rows[k]["psnr"] for k in ("base (micro)", "lora run", "lora run ×0"))
    # the adapter acts; at scale 0 it is the base again (to float rounding)
    assert off == pytest.approx(base, abs=1e-3) and abs(full - base) > 0.5
    cond = report["conditions"]
    assert cond["spacing"] == "stride 2" and cond["motion_bucket"] == "auto"
    assert cond["settings from"].startswith(f"config {config}")
    assert "| lora run ×0 |" in out.with_suffix(".md").read_text()


def test_config_without_flags_gives_its_clip_settings(tmp_path):
    from types import SimpleNamespace

    from framerturbo.eval.compare import clip_settings
    from framerturbo.models.record import RELEASED

    cfg = load_config("micro-lora")
    flags = SimpleNamespace(height=None, width=None, num_frames=None, resize=None, overlap=None,
                            fps=None, motion_bucket=None, stride=None, target_fps=None)
    d = clip_settings(flags, RELEASED, cfg)
    assert (d.num_frames, d.height, d.stride, d.resize, d.motion_bucket) == (5, 64, 2, "crop",
                                                                             "auto")
    d = clip_settings(flags, RELEASED, None)  # no config: the model's own conditions
    assert (d.height, d.width, d.num_frames, d.target_fps) == (320, 512, 14, 7.0)
    flags.resize, flags.fps = "squash", "30"
    d = clip_settings(flags, RELEASED, cfg)
    assert (d.resize, d.fps_id) == ("squash", "30")


def test_window_overlap_must_leave_a_new_frame():
    from framerturbo.core.config import ConfigError

    assert load_config(None, ["data.num_frames=5", "data.window_overlap=3"]).data.window_overlap == 3
    with pytest.raises(ConfigError, match="data.window_overlap"):
        load_config(None, ["data.num_frames=5", "data.window_overlap=4"])


def test_a_mistyped_compare_base_is_caught_before_loading():
    from framerturbo.eval.compare import plan_rows

    with pytest.raises(ValueError, match="did you mean --compare base"):
        plan_rows("micro", [], ["bsae"])
    assert [r.model for r in plan_rows("micro", [], ["base"])] == ["micro"]
