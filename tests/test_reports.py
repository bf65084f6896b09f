"""Report pages say what they show: the demo's metrics chart and verdict, the run report's
title, and plots that stay visible with a single point."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from framerturbo.tasks.demo import metrics_chart, shown, verdict
from framerturbo.tasks.report import _plot, build_report

METRICS = {"base": {"psnr": 13.83, "ssim": 0.51, "n_clips": 2},
           "lora": {"psnr": 14.70, "ssim": 0.55, "n_clips": 2},
           "crossfade": {"psnr": 14.10, "ssim": 0.58, "n_clips": 2},
           "flow": {"psnr": 12.90, "ssim": 0.49, "n_clips": 2}}


def blue_pixels(path) -> int:
    """Pixels in matplotlib's first colour (#1f77b4), i.e. the plotted data."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(rgb - (31, 119, 180)).sum(-1) < 40).sum())


def test_one_point_plot_is_visible(tmp_path):
    one = _plot([{"step": 5, "val/loss_sigma_1": 0.3}], ["val/loss_sigma_1"], "one point",
                tmp_path / "one.png", log_y=True)
    assert blue_pixels(one) > 10  # a marker, not an invisible zero-length line


def test_run_report_title_names_the_folder_once(tmp_path):
    run = tmp_path / "demo-out" / "run"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 0.5}))
    page = build_report(run).read_text()
    assert "<title>FramerTurbo training report: demo-out/run</title>" in page
    assert "run run" not in page


def test_demo_verdict_and_chart(tmp_path):
    line = verdict(METRICS)
    assert "Higher is better" in line and "Best PSNR: lora (14.70 dB)" in line
    assert "LoRA vs base: +0.87 dB PSNR, +0.0400 SSIM" in line
    chart = metrics_chart(METRICS, tmp_path / "metrics.png")
    with Image.open(chart) as img:
        assert img.size == (700, 280)
    assert shown(METRICS | {"model": "micro"}) == list(METRICS)


def test_demo_verdict_and_chart_with_turbo_rows(tmp_path):
    metrics = METRICS | {"turbo": {"psnr": 13.5, "ssim": 0.5, "n_clips": 2},
                         "lora+turbo": {"psnr": 14.2, "ssim": 0.54, "n_clips": 2}}
    assert shown(metrics) == ["base", "lora", "turbo", "lora+turbo", "crossfade", "flow"]
    assert verdict(metrics).endswith("LoRA + turbo (4 steps) vs LoRA: -0.50 dB PSNR.")
    metrics_chart(metrics, tmp_path / "metrics.png")


def test_run_report_and_card_read_a_log_with_a_torn_last_line(tmp_path):
    """One reader of metrics.jsonl: a line cut short by a crash is skipped by both the report
    and the run card (the report used to fail on it)."""
    from framerturbo.train.run_card import last_metrics

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 0.5}) + "\n"
                                       + json.dumps({"step": 2, "loss": 0.25}) + "\n"
                                       + '{"step": 3, "lo')
    page = build_report(run).read_text()
    assert "2 log rows, last step 2" in page
    assert last_metrics(run) == {"loss": 0.25}


def test_a_metric_that_could_not_be_computed_is_null_and_a_dash(tmp_path):
    """`evaluate` left out every transition of a hand metric (no hand found): its mean is NaN,
    which Python writes as a bare NaN token that strict JSON readers refuse."""
    import json

    from framerturbo.eval.evaluate import EvalResult, write_report

    result = EvalResult(metrics={"base": {"psnr": 20.5, "ssim": 0.7, "hand_jerk": float("nan")}})
    out = tmp_path / "metrics.json"
    write_report(result, out)

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    doc = json.loads(out.read_text(), parse_constant=refuse)
    assert doc["rows"]["base"] == {"psnr": 20.5, "ssim": 0.7, "hand_jerk": None}
    assert "nan" not in out.with_suffix(".md").read_text().lower()
