"""Procedural worlds, baselines and `evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from framerturbo.cli.main import main
from framerturbo.data.synthetic import render, write_dataset
from framerturbo.eval.baselines import crossfade, flow_interpolate
from framerturbo.eval.metrics import frame_metrics


@pytest.mark.parametrize("domain", ["shapes", "signer"])
def test_same_seed_same_clip_and_tracks_on_moving_parts(domain):
    a, b, c = render(domain, 7), render(domain, 7), render(domain, 8)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.tracks, b.tracks)
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (9, 64, 64, 3) and a.frames.dtype == np.uint8
    assert a.visible.mean() > 0.4
    f, k = np.nonzero(a.visible)
    x = a.tracks[f, k, 0].astype(int)
    y = a.tracks[f, k, 1].astype(int)
    assert (a.masks[f, y, x] > 0).all()  # every visible track point lies on a moving part
    moving = np.linalg.norm(a.tracks[-1] - a.tracks[0], axis=-1)
    assert moving.max() > 2  # and the parts move


def test_crossfade_of_identical_endpoints_is_exact():
    img = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
    out = crossfade(img, img, 7)
    assert out.shape == (7, 32, 48, 3) and all(np.array_equal(f, img) for f in out)


def test_flow_warping_beats_crossfade_on_a_translation():
    scene = render("shapes", 3, num_frames=1, size=96).frames[0]
    frames = np.stack([scene[16:80, 2 * t:2 * t + 64] for t in range(5)])  # pan 2 px/frame
    fade = frame_metrics(crossfade(frames[0], frames[-1], 5)[1:-1], frames[1:-1])
    flow = frame_metrics(flow_interpolate(frames[0], frames[-1], 5)[1:-1], frames[1:-1])
    assert flow["psnr"] > fade["psnr"] + 3


def test_synth_and_evaluate_cli(tmp_path, capsys):
    assert main(["synth", "--domain", "signer", "--n", "2", "--out", str(tmp_path / "d"),
                 "--num-frames", "5"]) == 0
    files = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert files == ["clip_0000.mp4", "clip_0000.mp4.tracks.json", "clip_0000.mp4.tracks.npz",
                     "clip_0001.mp4", "clip_0001.mp4.tracks.json", "clip_0001.mp4.tracks.npz"]
    doc = json.loads((tmp_path / "d" / "clip_0000.mp4.tracks.json").read_text())
    assert doc["image_size"] == [64, 64] and len(doc["tracks"][0]["points"]) == 5
    out = tmp_path / "m.json"
    assert main(["evaluate", "--model", "random-micro", "--data", str(tmp_path / "d"),
                 "--out", str(out), "--num-frames", "5", "--height", "64", "--width", "64",
                 "--steps", "2", "--tracks"]) == 0
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert list(rows) == ["base (random-micro)", "crossfade", "flow"]
    for row in rows.values():
        assert {"psnr", "ssim", "n_clips", "kind"} <= set(row) and row["n_clips"] == 2
    assert any("LPIPS" in n for n in report["notes"])
    assert "| crossfade |" in out.with_suffix(".md").read_text()


def test_report_writes_html_with_embedded_plots(tmp_path):
    import base64
    import re

    from framerturbo.media.files import write_gif

    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    rows = [{"step": s, "loss": 1.0 / s, "lr": 1e-4, "loss_sigma/0.5-2": 0.5 / s}
            for s in range(1, 6)] + [{"step": 5, "val/psnr": 20.0, "val/ssim": 0.7,
                                      "val/loss_sigma_1": 0.3}]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    write_gif(np.zeros((3, 16, 32, 3), np.uint8), run / "samples" / "step-00000005.gif", 4)
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 5
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert (run / "report" / "samples.png").exists() and "val/psnr" in page
    assert main(["report", str(tmp_path / "nothing")]) == 2


@pytest.mark.system
def test_demo_quick_writes_metrics_and_report(tmp_path):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    # the embedded model ships its turbo LoRA: the demo adds its 4-step rows
    for method in ("base", "lora", "turbo", "lora+turbo", "crossfade", "flow"):
        assert {"psnr", "ssim", "n_clips"} <= set(metrics[method])
        assert metrics[method]["n_clips"] == 2 and np.isfinite(metrics[method]["psnr"])
    # the quick demo's own held-out signer-close clips after 12 LoRA steps: the LoRA moves the
    # base toward the target, on one metric or the other (an adapter that did nothing would
    # give the base's numbers). Measured: micro v2.1 SSIM 0.350 → 0.364 with PSNR 14.63 →
    # 14.46 dB; v2.2 PSNR 12.91 → 14.16 dB with SSIM 0.336 → 0.338 (attn+ff), 12.91 → 13.46
    # dB with SSIM 0.336 → 0.322 (the "turbo" preset the demo trains now); v2.4 with
    # keep_static 0.5 (which gives base and LoRA the same kept background, narrowing every
    # gap): 18.86 → 19.15 dB (+0.29) with SSIM 0.780 → 0.779
    gain_db = metrics["lora"]["psnr"] - metrics["base"]["psnr"]
    gain_ssim = metrics["lora"]["ssim"] - metrics["base"]["ssim"]
    assert gain_db > 0.15 or gain_ssim > 0.01, metrics
    page = (tmp_path / "demo" / "report.html").read_text()
    assert page.count("data:image/gif;base64,") == 2 and "run/report.html" in page
    assert page.count("data:image/png;base64,") == 1  # the metrics chart
    assert "Higher is better" in page and "Best PSNR:" in page and "LoRA vs base: " in page
    assert "LoRA + turbo (4 steps) vs LoRA: " in page
    assert "base + turbo (4 steps) | LoRA + turbo (4 steps)" in page  # the GIF columns
    assert (tmp_path / "demo" / "run" / "report.html").exists()
    # the base row is the base model alone: re-scored here on the demo's held-out clips with
    # no adapter loaded, it gives the same numbers (a turbo LoRA active during the base row
    # would show up here)
    assert _base_alone(tmp_path / "demo") == pytest.approx(metrics["base"]["psnr"], abs=1e-6)
    # where the time went, per phase (a slow demo says which part was slow)
    seconds = metrics["seconds"]
    phases = {"data", "load", "base", "turbo", "train", "lora", "lora+turbo", "report"}
    assert set(seconds) == phases
    assert all(s >= 0 for s in seconds.values()) and seconds["train"] > 0


def _base_alone(demo_out) -> float:
    from framerturbo.eval.evaluate import load_eval_clips, score_model
    from framerturbo.models.names import MICRO
    from framerturbo.models.record import read_record
    from framerturbo.sampling.pipeline import FramerPipeline
    from framerturbo.tasks.demo import DemoPlan, demo_config

    plan = DemoPlan.make(quick=True)
    cfg = demo_config(demo_out / "data", demo_out, MICRO, plan)
    clips, _ = load_eval_clips([demo_out / "data" / "val"], cfg.data)
    pipe = FramerPipeline.from_framer(MICRO, device="cpu", dtype="fp32", controlnet=False)
    pipe.set_progress_bar_config(disable=True)
    record = read_record(MICRO)  # the demo samples as the model's own defaults
    result = score_model(pipe, clips, "base", sampler=record.sampler, steps=plan.sample_steps,
                         guidance=record.guidance, seed=0)
    return result.metrics["base"]["psnr"]


def test_train_vae_tiny_run_calibrates_its_scale(tmp_path):
    from diffusers import AutoencoderKLTemporalDecoder

    assert main(["synth", "--domain", "signer", "--n", "2", "--out", str(tmp_path / "d"),
                 "--num-frames", "5"]) == 0
    assert main(["train-vae", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "vae"),
                 "--steps", "2", "--frames", "3", "--batch", "1", "--down-blocks", "3"]) == 0
    vae = AutoencoderKLTemporalDecoder.from_pretrained(tmp_path / "vae")
    assert len(vae.config.block_out_channels) == 3  # ×4
    assert vae.config.scaling_factor != 0.18215 and vae.config.scaling_factor > 0


def test_detail_ratio_tells_blur_from_grain():
    import cv2

    from framerturbo.eval.metrics import detail_ratio

    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    real = np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in real])  # some texture
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in real])
    grainy = np.clip(real + rng.normal(0, 25, real.shape), 0, 255).astype(np.uint8)
    assert detail_ratio(real, real) == pytest.approx(1.0)
    assert detail_ratio(blurred, real) < 0.5 < 2 < detail_ratio(grainy, real)
    # a flat frame has no detail at all
    spot, flat = np.zeros((1, 5, 5, 3), np.uint8), np.zeros((1, 5, 5, 3), np.uint8)
    spot[0, 2, 2] = 200
    assert detail_ratio(flat, spot) == 0.0
