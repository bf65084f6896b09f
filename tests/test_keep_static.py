"""Keeping static pixels: the formula on hand-computed pixels, where it must leave the sample
alone, and its place in the pipeline (after the decode, the record's τ unless the call says)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import textured_image
from framerturbo.cli.main import main
from framerturbo.models.record import MICRO_SIZE, RECORD_FILE, RELEASED, read_record
from framerturbo.sampling.keep_static import keep_static


def video(*frames):
    """One video of 1×1-pixel frames, each an RGB triple → (1, F, 3, 1, 1)."""
    return torch.tensor(frames, dtype=torch.float64).view(1, len(frames), 3, 1, 1)


def pixel(value):
    return torch.tensor(value, dtype=torch.float64).view(1, 3, 1, 1)


def test_a_redrawn_background_pixel_moves_to_the_endpoints_by_hand_computed_weights():
    bg = [0.5, 0.5, 0.5]
    frames = video(bg, [0.55, 0.5, 0.52], [0.4, 0.5, 0.5])
    out = keep_static(frames, pixel(bg), pixel(bg), 0.5)
    # agree = 1; near = 1 − (largest channel's deviation)/0.5: 0.9, then 0.8; out = x + near(0.5 − x)
    want = video(bg, [0.505, 0.5, 0.502], [0.48, 0.5, 0.5])
    torch.testing.assert_close(out, want)


def test_the_fade_follows_the_frame_position_and_the_endpoints_difference_weakens_it():
    start, end = pixel([0.2, 0.2, 0.2]), pixel([0.3, 0.3, 0.3])
    frames = video([0.2] * 3, [0.25] * 3, [0.3] * 3)  # already the cross-fade: kept
    torch.testing.assert_close(keep_static(frames, start, end, 0.5), frames)
    frames = video([0.2] * 3, [0.35] * 3, [0.3] * 3)
    out = keep_static(frames, start, end, 0.5)
    # fade 0.25; agree = 1 − 0.1/0.5 = 0.8; near = 1 − 0.1/0.5 = 0.8; w = 0.64
    assert out[0, 1, 0, 0, 0].item() == pytest.approx(0.35 + 0.64 * (0.25 - 0.35))


@pytest.mark.parametrize("case", ["endpoints differ", "sample draws an object", "off"])
def test_pixels_that_move_or_that_the_sample_draws_are_left_alone(case):
    start, end = pixel([0.9, 0.9, 0.9]), pixel([0.9, 0.9, 0.9])
    frames = video([0.9] * 3, [0.1, 0.2, 0.9], [0.9] * 3)  # a dark hand over a light wall
    tau = 0.0 if case == "off" else 0.5
    if case == "endpoints differ":  # something moved there between the endpoints
        end = pixel([0.2, 0.9, 0.9])
        frames = video([0.9] * 3, [0.7, 0.85, 0.9], [0.2, 0.9, 0.9])
    out = keep_static(frames, start, end, tau)
    torch.testing.assert_close(out[:, 1], frames[:, 1])


def test_each_video_of_a_batch_uses_its_own_endpoints():
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    frames = torch.rand(2, 5, 3, 8, 8)
    out = keep_static(frames, a, b, 0.4)
    for i in range(2):
        torch.testing.assert_close(out[i:i + 1], keep_static(frames[i:i + 1], a[i:i + 1],
                                                             b[i:i + 1], 0.4))


@pytest.mark.parametrize("tau", [-0.1, 1.5, True, "0.5"])
def test_a_bad_tolerance_is_one_error(tau):
    with pytest.raises(ValueError, match="keep_static must be a tolerance in"):
        keep_static(torch.rand(1, 3, 3, 2, 2), torch.rand(1, 3, 2, 2), torch.rand(1, 3, 2, 2), tau)


def test_the_pipeline_keeps_static_pixels_after_decoding_at_the_records_tolerance(micro_pipe):
    start, end = textured_image(64, 1), textured_image(64, 1)  # a still scene …
    start[:16, :16], end[:16, :16] = 0, 255  # … but for one corner, black, then white
    kw = dict(num_frames=5, height=64, width=64, num_inference_steps=2, sampler="euler",
              output_type="pt")

    def run(pipe, **extra):
        return pipe(start, end, generator=torch.Generator().manual_seed(0), **kw, **extra).frames

    assert micro_pipe.record == RELEASED and RELEASED.keep_static == 0.0  # off for Framer
    raw = run(micro_pipe)
    to01 = lambda img: torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    kept = run(micro_pipe, keep_static=1.0)  # random weights draw far from the scene: τ = 1
    want = keep_static(raw.double(), to01(start), to01(end), 1.0)
    torch.testing.assert_close(kept.double(), want, atol=1e-6, rtol=0)
    # closer to the still scene than the sample was, and the changed corner is the sample's
    truth = to01(end)[:, None]
    err = lambda v: (v - truth).abs()[..., 16:, 16:].mean()  # noqa: E731
    assert err(kept) < 0.8 * err(raw)
    torch.testing.assert_close(kept[..., :16, :16], raw[..., :16, :16])
    # the record's τ is the default; the call's wins
    micro_pipe.record = replace(RELEASED, keep_static=1.0)
    try:
        torch.testing.assert_close(run(micro_pipe), kept)
        torch.testing.assert_close(run(micro_pipe, keep_static=0.0), raw)
    finally:
        micro_pipe.record = RELEASED


def test_records_carry_the_tolerance_and_reject_a_bad_one(tmp_path):
    assert read_record("micro").keep_static == MICRO_SIZE.keep_static == 0.5
    folder = tmp_path / "m"
    folder.mkdir()
    doc = json.loads(MICRO_SIZE.to_json())
    del doc["keep_static"]  # records written before the field: off
    (folder / RECORD_FILE).write_text(json.dumps(doc))
    assert read_record(folder).keep_static == 0.0
    (folder / RECORD_FILE).write_text(json.dumps(doc | {"keep_static": 3}))
    with pytest.raises(ValueError, match="framerturbo.json: keep_static must be a tolerance"):
        read_record(folder)


def test_new_model_writes_the_tolerance_it_is_given(tmp_path):
    assert main(["new-model", "--out", str(tmp_path / "a")]) == 0
    assert read_record(tmp_path / "a").keep_static == MICRO_SIZE.keep_static
    assert main(["new-model", "--out", str(tmp_path / "b"), "--keep-static", "0"]) == 0
    assert read_record(tmp_path / "b").keep_static == 0.0


def test_a_bad_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["interpolate", "a.png", "b.png", "-o", "x.gif", "--keep-static", "2"])
    assert e.value.code == 2
    assert "--keep-static must be a tolerance in [0, 1]" in capsys.readouterr().err
