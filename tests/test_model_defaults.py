"""Defaults come from the model (its framerturbo.json), the micro model says what it is, stitch
conditions on the clips' rate at the model's size, configs ship by name, one metrics definition,
one crop geometry."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import textured_image
from framerturbo.cli.main import main
from framerturbo.cli.common import apply_model_defaults
from framerturbo.models.record import (FRAMER_GUIDANCE, MICRO_SIZE, RELEASED, RECORD_FILE,
                                       read_record)
from framerturbo.media.files import read_video_frames

ROOT = Path(__file__).resolve().parents[1]


def flags(**given):
    keys = ("height", "width", "num_frames", "fps", "motion_bucket", "sampler", "steps",
            "guidance")
    return SimpleNamespace(**{k: None for k in keys} | given)


def test_records_released_micro_saved_and_run_folders(released_layout, tmp_path):
    framer, _ = released_layout
    assert read_record(framer) == RELEASED  # no record: the released framer_512x320
    micro = read_record("micro")
    assert (micro.height, micro.width, micro.num_frames, micro.sampler, micro.steps,
            micro.guidance) == (64, 64, 9, "euler", MICRO_SIZE.steps, MICRO_SIZE.guidance)
    assert main(["new-model", "--out", str(tmp_path / "m")]) == 0
    assert read_record(tmp_path / "m") == MICRO_SIZE
    # a packaged model records the sampler it was tuned for (the source model's otherwise)
    assert main(["new-model", "--out", str(tmp_path / "d"), "--sampler", "dpmpp", "--steps",
                 "7"]) == 0
    tuned = read_record(tmp_path / "d")
    assert (tuned.sampler, tuned.steps) == ("dpm++", 7)
    assert main(["new-model", "--out", str(tmp_path / "x"), "--sampler", "ddim"]) == 2
    assert main(["new-model", "--out", str(tmp_path / "y"), "--steps", "7"]) == 2
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)  # a full fine-tune: its run's config says what for
    (run / "config.toml").write_text('[model]\npretrained = "micro"\n[data]\nheight = 128\n'
                                     'width = 64\nnum_frames = 5\nfps_id = "12"\n')
    rec = read_record(run / "model")
    assert (rec.height, rec.width, rec.num_frames, rec.fps) == (128, 64, 5, 12.0)
    (tmp_path / "m" / RECORD_FILE).write_text("{")
    with pytest.raises(ValueError, match="framerturbo.json: not a valid model record"):
        read_record(tmp_path / "m")


def test_flags_override_the_record_and_a_new_sampler_keeps_its_steps(released_layout):
    args = flags(model=str(released_layout[0]))
    apply_model_defaults(args)
    assert (args.height, args.width, args.num_frames, args.fps, args.motion_bucket,
            args.sampler, args.steps) == (320, 512, 14, 7, 100, "euler", 30)
    args = flags(model="micro", height=128, sampler="dpm++")
    apply_model_defaults(args)
    assert (args.height, args.width, args.num_frames, args.sampler, args.steps) == (
        128, 64, 9, "dpm++", None)  # None: dpm++'s own 12, not the micro model's euler 10


def test_interpolate_with_no_flags_runs_at_the_micro_models_size(tmp_path, capsys):
    Image.fromarray(textured_image(96, 1)).save(tmp_path / "a.png")
    Image.fromarray(textured_image(96, 1, shift=(4, 2))).save(tmp_path / "b.png")
    out = tmp_path / "out.gif"
    assert main(["interpolate", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                 "-o", str(out)]) == 0
    assert read_video_frames(out).shape == (9, 64, 64, 3)  # its 64×64×9, not 512×320×14
    err = capsys.readouterr().err
    assert err.count("embedded micro Framer") == 1 and "framer_512x320" in err
    assert "procedural" in err


class SpyPipe:
    """Records what stitch asks for; returns the start frame repeated (values in [0, 1])."""

    def __init__(self):
        self.calls = []

    def __call__(self, start, end, *, num_frames, height, width, **kwargs):
        self.calls.append(dict(start=np.asarray(start), height=height, width=width, **kwargs))
        video = np.repeat(np.asarray(start, np.float32)[None] / 255, num_frames, 0)
        return SimpleNamespace(frames=[video])


def test_stitch_conditions_on_the_clips_rate_and_letterboxes_at_the_models_size(tmp_path):
    from framerturbo.tasks.stitch import stitch
    from videos import moving_square_frames, write_video

    wide = moving_square_frames(6, size=96, seed=1)[:, 24:72]  # 96×48 clips at 10 fps
    clips = [write_video(tmp_path / f"{i}.mp4", wide, fps=10) for i in range(2)]
    pipe = SpyPipe()
    stitch(pipe, clips, tmp_path / "o.mp4", transition_frames=2, height=64, width=64,
           sample_kwargs={"fps": None})
    (call,) = pipe.calls
    assert call["fps"] == 10 and (call["height"], call["width"]) == (64, 64)
    start = call["start"]
    assert start.shape == (64, 64, 3)
    assert start[:16].max() == 0 and start[-16:].max() == 0 and start[16:48].mean() > 20
    out = read_video_frames(tmp_path / "o.mp4")
    assert out.shape[1:3] == (48, 96)  # back at the clips' size, padding cut off
    last = out[5].astype(float)
    assert np.abs(out[6].astype(float) - last).mean() < 8  # not squashed: it lines up
    meta = json.loads((tmp_path / "o.mp4.json").read_text())
    assert meta["generated_at"] == {"height": 64, "width": 64, "fps_conditioning": 10.0,
                                    "keep_static": 0.0}  # a pipeline without a record: Framer's
    pipe.record = MICRO_SIZE  # the record's τ unless the call gives one
    stitch(pipe, clips, tmp_path / "m.mp4", transition_frames=2, height=64, width=64,
           sample_kwargs={"fps": None})
    assert json.loads((tmp_path / "m.mp4.json").read_text())["generated_at"]["keep_static"] == 0.5
    stitch(pipe, clips, tmp_path / "k.mp4", transition_frames=2, height=64, width=64,
           sample_kwargs={"fps": None, "keep_static": 0.2})
    assert json.loads((tmp_path / "k.mp4.json").read_text())["generated_at"]["keep_static"] == 0.2


def test_configs_ship_in_the_package_by_name():
    from framerturbo.core.config import SHIPPED, config_path, load_config, shipped_configs

    assert not (ROOT / "configs").exists()  # one copy, inside the package
    assert {"micro-lora", "framer-512x320-lora", "micro/unet"} <= set(shipped_configs())
    assert load_config("micro-lora").data.height == 64
    assert config_path("configs/micro-lora.toml") == SHIPPED / "micro-lora.toml"  # old paths
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["framerturbo"]
    package = SHIPPED.parent
    for path in SHIPPED.rglob("*"):
        if path.is_file():
            assert any(path.relative_to(package).match(g) for g in globs), path
    assert (package / "assets/micro" / RECORD_FILE).relative_to(package).match(
        "assets/micro/framerturbo.json")
    assert any(g == "assets/micro/framerturbo.json" for g in globs)


def test_validation_reports_evaluates_metric(micro_parts, monkeypatch, tmp_path):
    from framerturbo.core.config import Config
    from framerturbo.eval import metrics
    from framerturbo.train.validate import _sample_metrics

    seen = []

    def spy(pred, real):
        seen.append((np.asarray(pred).shape, np.asarray(real).shape))
        return {"psnr": 12.5, "ssim": 0.25}

    monkeypatch.setattr(metrics, "frame_metrics", spy)
    cfg = Config()
    cfg.validation.steps = 1
    frames = torch.from_numpy(textured_image(64, 1)).permute(2, 0, 1)[None].repeat(5, 1, 1, 1)
    items = [{"frames": frames, "fps": 8.0, "motion_bucket": 100.0}]
    models = SimpleNamespace(unet=micro_parts["unet"],
                             feature_extractor=micro_parts["feature_extractor"])
    out = _sample_metrics(cfg, models, micro_parts["vae"], micro_parts["image_encoder"], items,
                          tmp_path, 0)
    assert seen == [((3, 64, 64, 3), (3, 64, 64, 3))]
    assert (out["val/psnr"], out["val/ssim"]) == (12.5, 0.25)


def test_metrics_are_defined_on_the_uint8_frames():
    from framerturbo.eval.metrics import frame_metrics

    rng = np.random.default_rng(0)
    real = rng.random((3, 32, 32, 3))
    fake = np.clip(real + rng.normal(0, 0.05, real.shape), 0, 1)
    u8 = (fake * 255).round().astype(np.uint8)
    assert frame_metrics(fake, real) == frame_metrics(u8, (real * 255).round().astype(np.uint8))


@pytest.mark.parametrize("shape,mode", [((48, 96), "crop"), ((48, 96), "pad"),
                                        ((100, 40), "pad"), ((100, 40), "crop")])
def test_one_crop_geometry_for_frames_and_tracks(shape, mode):
    from framerturbo.media.video import crop_transform, resize_frames, unfit_frames

    h, w = shape
    frame = np.zeros((1, h, w, 3), np.uint8)
    y, x = int(h * 0.4), int(w * 0.45)
    frame[0, y - 3:y + 4, x - 3:x + 4] = 255
    out = resize_frames(frame, 64, 64, mode)
    sx, sy, ox, oy = crop_transform(h, w, 64, 64, mode)
    px, py = (x + 0.5) * sx - ox, (y + 0.5) * sy - oy  # pixel centre → output pixel
    weight = out[0, ..., 0].astype(float)
    yy, xx = np.mgrid[:64, :64] + 0.5
    cy, cx = (weight * yy).sum() / weight.sum(), (weight * xx).sum() / weight.sum()
    assert abs(cy - py) <= 1 and abs(cx - px) <= 1  # the square's centre is where tracks go
    if mode == "pad":
        back = unfit_frames(out, h, w)
        assert back.shape == (1, h, w, 3) and back[0, y, x, 0] > 200


def test_app_defaults_come_from_the_model(monkeypatch):
    pytest.importorskip("gradio")
    from framerturbo.cli import app
    from framerturbo.sampling.pipeline import FramerPipeline

    seen = {}
    monkeypatch.setattr(FramerPipeline, "from_framer",
                        classmethod(lambda cls, *a, **k: SimpleNamespace(
                            set_progress_bar_config=lambda **_: None)))
    monkeypatch.setattr(app, "launch", lambda pipe, loras, **kw: seen.update(kw["defaults"]))
    assert main(["app"]) == 0
    assert seen == {"height": 64, "width": 64, "frames": 9, "steps": MICRO_SIZE.steps,
                    "sampler": "euler", "fps": 8, "motion_bucket": 100,
                    "guidance": MICRO_SIZE.guidance, "keep_static": MICRO_SIZE.keep_static,
                    "control_scale": MICRO_SIZE.control_scale}
    assert main(["app", "--sampler", "dpm++", "--height", "128", "--keep-static", "0"]) == 0
    assert (seen["height"], seen["sampler"], seen["steps"]) == (128, "dpm++", 12)
    assert seen["keep_static"] == 0.0


class Captured(Exception):
    """Raised by a spy in place of sampling: what the command asked for, without the cost."""


def test_guidance_ramp_comes_from_the_record_and_flags_override_it(tmp_path, monkeypatch):
    # the micro model was tuned to a flat ramp, unlike Framer's 1 → 3 (docs/micro-model.md)
    assert MICRO_SIZE.guidance != FRAMER_GUIDANCE == RELEASED.guidance == (1.0, 3.0)
    args = flags(model="micro")
    apply_model_defaults(args)
    assert args.guidance == MICRO_SIZE.guidance
    args = flags(model="micro", guidance=[1.0, 3.0])
    apply_model_defaults(args)
    assert args.guidance == (1.0, 3.0)  # the user's
    # records: written by new-model, absent in older ones (Framer's then), checked when read
    assert main(["new-model", "--out", str(tmp_path / "g"), "--guidance", "2", "2.5"]) == 0
    assert read_record(tmp_path / "g").guidance == (2.0, 2.5)
    assert main(["new-model", "--out", str(tmp_path / "z"), "--guidance", "0", "1"]) == 2
    doc = json.loads((tmp_path / "g" / RECORD_FILE).read_text())
    del doc["guidance"]
    (tmp_path / "g" / RECORD_FILE).write_text(json.dumps(doc))
    assert read_record(tmp_path / "g").guidance == FRAMER_GUIDANCE
    (tmp_path / "g" / RECORD_FILE).write_text(json.dumps(doc | {"guidance": [1, -2]}))
    with pytest.raises(ValueError, match="framerturbo.json: guidance must be"):
        read_record(tmp_path / "g")


@pytest.mark.parametrize("given", [None, ["1", "3"]])
def test_evaluate_and_hand_eval_sample_with_the_models_guidance(tmp_path, monkeypatch, given):
    """… and its static-pixel tolerance (keep_static)."""
    from framerturbo.eval import compare, hand_protocol

    def spy(*args, **kwargs):
        raise Captured((tuple(kwargs["guidance"]), kwargs["keep_static"]))

    monkeypatch.setattr(compare, "score_model", spy)
    monkeypatch.setattr(hand_protocol, "evaluate_hand_transitions", spy)
    assert main(["synth", "--domain", "signer", "--n", "1", "--out", str(tmp_path / "d")]) == 0
    flag = ["--guidance", *given, "--keep-static", "0.2"] if given else []
    want = ((1.0, 3.0), 0.2) if given else (MICRO_SIZE.guidance, MICRO_SIZE.keep_static)
    with pytest.raises(Captured) as seen:
        main(["evaluate", "--data", str(tmp_path / "d"), "--max-clips", "1", *flag])
    assert seen.value.args[0] == want
    with pytest.raises(Captured) as seen:
        main(["hand-eval", "--n", "1", "--out", str(tmp_path / "h"), *flag])
    assert seen.value.args[0] == want


def test_python_api_samples_at_the_loaded_models_own_defaults(monkeypatch):
    """`FramerPipeline.from_framer(...)(a, b)` with no sizes: the model's frame size, frame
    count, sampler, steps and guidance, as the CLI would use them (not Framer's 14 × 512×320)."""
    from framerturbo.sampling import pipeline as P

    pipe = P.FramerPipeline.from_framer("micro", device="cpu", dtype="fp32", controlnet=False)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.record == read_record("micro")
    ramps, samplers = [], []
    real_weights, real_scheduler = P.guidance_weights, P.make_scheduler
    monkeypatch.setattr(P, "guidance_weights", lambda lo, hi, *a: ramps.append((lo, hi)) or
                        real_weights(lo, hi, *a))
    monkeypatch.setattr(P, "make_scheduler", lambda name, *a, **k: samplers.append(name) or
                        real_scheduler(name, *a, **k))
    frames = pipe(textured_image(64, 1), textured_image(64, 2), num_inference_steps=1,
                  output_type="np").frames[0]
    assert frames.shape == (MICRO_SIZE.num_frames, MICRO_SIZE.height, MICRO_SIZE.width, 3)
    assert ramps == [MICRO_SIZE.guidance] and samplers == [MICRO_SIZE.sampler]
    # a pipeline assembled from parts has no record of its own: Framer's defaults
    assert P.FramerPipeline(**pipe.components).record == RELEASED


def _record_folder(tmp_path, **given):
    """A model folder holding only a record: all that read_record needs."""
    folder = tmp_path / "recorded"
    folder.mkdir(exist_ok=True)
    doc = json.loads(MICRO_SIZE.to_json()) | given
    (folder / RECORD_FILE).write_text(json.dumps(doc))
    return folder


def test_runs_validate_and_distill_as_their_model_samples(tmp_path):
    """Left unset, validation samples and the distillation teacher guides as the base model's
    record says (as `evaluate` samples it); what a config sets wins; the run's config.toml
    records the resolved values so a resume uses them even if the record changes."""
    from framerturbo.core.config import Config, ConfigError, load_config
    from framerturbo.train.setup import (resolve_sampling_defaults, teacher_guidance,
                                         validation_sampling)

    micro = load_config(None, ["model.pretrained=random-micro", "objective.kind=consistency"])
    assert validation_sampling(micro) == ("euler", MICRO_SIZE.steps, MICRO_SIZE.guidance)
    assert teacher_guidance(micro) == MICRO_SIZE.guidance
    released = Config()  # a released layout (no record): Framer's euler 30 at 1 → 3
    released.model.pretrained = str(tmp_path)
    assert validation_sampling(released) == ("euler", 30, FRAMER_GUIDANCE)

    folder = _record_folder(tmp_path, sampler="dpm++", steps=12, guidance=[2.0, 2.5])
    base = ["objective.kind=consistency", f"model.pretrained={folder}"]
    cfg = load_config(None, base)
    assert validation_sampling(cfg) == ("dpm++", 12, (2.0, 2.5))
    assert teacher_guidance(cfg) == (2.0, 2.5)
    mine = load_config(None, base + ["validation.sampler=euler", "validation.guidance=[1,3]",
                                     "distill.min_guidance=1", "distill.max_guidance=2"])
    assert validation_sampling(mine) == ("euler", None, (1.0, 3.0))  # euler's own step count
    assert teacher_guidance(mine) == (1.0, 2.0)

    resolve_sampling_defaults(cfg)
    saved = tmp_path / "config.toml"
    saved.write_text(cfg.to_toml())
    (folder / RECORD_FILE).write_text(MICRO_SIZE.to_json())  # the record changes later
    again = load_config(saved)
    assert validation_sampling(again) == ("dpm++", 12, (2.0, 2.5))
    assert teacher_guidance(again) == (2.0, 2.5)
    with pytest.raises(ConfigError, match="set both"):
        load_config(None, base + ["distill.max_guidance=3"])
    with pytest.raises(ConfigError, match="validation.guidance"):
        load_config(None, ["validation.guidance=[2]"])


def test_validation_samples_with_the_models_guidance(micro_parts, monkeypatch, tmp_path):
    """… and keeps static pixels at its τ, as `evaluate` and `interpolate` sample it."""
    from framerturbo.core.config import Config
    from framerturbo.sampling.pipeline import FramerPipeline
    from framerturbo.train.validate import _sample_metrics

    calls, real_call = [], FramerPipeline.__call__

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(FramerPipeline, "__call__", spy)
    cfg = Config()
    cfg.model.pretrained = str(_record_folder(tmp_path, sampler="euler", steps=1,
                                              guidance=[2.0, 2.5], keep_static=0.3))
    frames = torch.from_numpy(textured_image(64, 1)).permute(2, 0, 1)[None].repeat(5, 1, 1, 1)
    items = [{"frames": frames, "fps": 8.0, "motion_bucket": 100.0}]
    models = SimpleNamespace(unet=micro_parts["unet"],
                             feature_extractor=micro_parts["feature_extractor"])
    _sample_metrics(cfg, models, micro_parts["vae"], micro_parts["image_encoder"], items,
                    tmp_path, 0)
    (call,) = calls
    assert (call["sampler"], call["num_inference_steps"], call["min_guidance_scale"],
            call["max_guidance_scale"], call["keep_static"]) == ("euler", 1, 2.0, 2.5, 0.3)


def test_distillation_teacher_guides_at_the_models_ramp():
    from framerturbo.core.config import load_config
    from framerturbo.denoising.denoiser import FramerDenoiser
    from framerturbo.models.loading import random_micro_components
    from framerturbo.train.consistency import ConsistencyObjective, turbo_info

    unet = random_micro_components(controlnet=False)["unet"]
    cfg = load_config(None, ["objective.kind=consistency", "model.pretrained=random-micro"])
    obj = ConsistencyObjective(cfg, FramerDenoiser(unet), unet, None, {})
    weights = obj.guidance(9, "cpu").flatten()
    assert torch.allclose(weights, torch.full((9,), MICRO_SIZE.guidance[0]))
    teacher = turbo_info(cfg)["teacher"]
    assert (teacher["min_guidance"], teacher["max_guidance"]) == MICRO_SIZE.guidance


def test_control_scale_comes_from_the_record_and_the_call_wins(micro_pipe, monkeypatch):
    """Given tracks steer at the record's ControlNet strength (2 for the micro model, chosen on
    tuning clips); a call's own scale wins; autopilot's SIFT tracks take Framer's 0.5 (the CLI's
    and the API's alike)."""
    from dataclasses import replace

    from framerturbo.sampling import pipeline as P

    seen = []

    class Spy(P.FramerDenoiser):
        def __call__(self, *args, **kwargs):
            seen.append(kwargs["control_scale"])
            return super().__call__(*args, **kwargs)

    monkeypatch.setattr(P, "FramerDenoiser", Spy)
    monkeypatch.setattr(micro_pipe, "record", replace(RELEASED, control_scale=2.5))
    start, end = textured_image(64, 1), textured_image(64, 1, shift=(3, 2))
    kw = dict(num_frames=5, height=64, width=64, num_inference_steps=1, output_type="np")
    tracks = np.stack([np.linspace([10, 10], [50, 40], 5)], 1)
    micro_pipe(start, end, tracks=tracks, **kw)
    micro_pipe(start, end, tracks=tracks, control_scale=0.7, **kw)
    micro_pipe(start, end, autopilot=True, **kw)
    assert seen == [2.5, 0.7, 0.5]
    with pytest.raises(ValueError, match="control_scale must be a number ≥ 0"):
        micro_pipe(start, end, tracks=tracks, control_scale=-1, **kw)


def test_records_carry_the_control_scale_and_new_model_writes_it(tmp_path, capsys):
    assert read_record("micro").control_scale == MICRO_SIZE.control_scale == 2.0
    assert RELEASED.control_scale == 1.0
    doc = json.loads(MICRO_SIZE.to_json())
    del doc["control_scale"]  # records written before the field: the ControlNet as trained
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / RECORD_FILE).write_text(json.dumps(doc))
    assert read_record(folder).control_scale == 1.0
    (folder / RECORD_FILE).write_text(json.dumps(doc | {"control_scale": "strong"}))
    with pytest.raises(ValueError, match="framerturbo.json: control_scale must be a number"):
        read_record(folder)
    assert main(["new-model", "--out", str(tmp_path / "a"), "--control-scale", "1.5"]) == 0
    assert read_record(tmp_path / "a").control_scale == 1.5
    assert main(["new-model", "--out", str(tmp_path / "b"), "--control-scale", "-2"]) == 2
    assert "--control-scale must be a number ≥ 0" in capsys.readouterr().err


@pytest.mark.parametrize("given", [None, "0.5"])
def test_hand_eval_steers_at_the_models_control_scale(tmp_path, monkeypatch, given):
    from framerturbo.eval import hand_protocol

    def spy(*args, **kwargs):
        raise Captured(kwargs["control_scale"])

    monkeypatch.setattr(hand_protocol, "evaluate_hand_transitions", spy)
    flag = ["--control-scale", given] if given else []
    with pytest.raises(Captured) as seen:
        main(["hand-eval", "--n", "1", "--out", str(tmp_path / "h"), *flag])
    assert seen.value.args[0] == (float(given) if given else MICRO_SIZE.control_scale)
