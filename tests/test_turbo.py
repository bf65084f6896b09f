"""The turbo sampler (multistep consistency sampling) and ``--turbo``: the sampler's x₀ and
re-noising against an independent computation, 1-step = f(x_σmax, σ_max), seeds and batches,
turbo + domain LoRA stacking, the shipped-LoRA lookup, and the CLI end to end."""

from __future__ import annotations

import copy
import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import textured_image
from framerturbo.core import edm

START = textured_image(64, seed=3)
END = textured_image(64, seed=3, shift=(5, 2))
RUN = dict(num_frames=5, height=64, width=64, sampler="turbo", output_type="pt")
# the sampler's mechanics are tested on base models too, where the pipeline rightly warns that
# no turbo LoRA is loaded; that warning has its own test below
pytestmark = pytest.mark.filterwarnings(
    "ignore::framerturbo.models.schedulers.UndistilledTurboWarning")


def karras_grid(n=40, rho=7.0, lo=0.002, hi=700.0):
    """The distillation grid, written out: σ_j = (hi^(1/ρ) + j/(n−1)·(lo^(1/ρ) − hi^(1/ρ)))^ρ."""
    return [(hi ** (1 / rho) + j / (n - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
            for j in range(n)]


def test_turbo_sigmas_are_points_of_the_distillation_grid():
    from framerturbo.models.schedulers import make_scheduler

    grid = karras_grid()
    for steps, idx in ((1, [0]), (2, [0, 20]), (4, [0, 10, 20, 30]),
                       (8, [0, 5, 10, 15, 20, 25, 30, 35])):
        s = make_scheduler("turbo")
        s.set_timesteps(steps)
        assert np.allclose(s.sigmas[:-1].numpy(), [grid[j] for j in idx], rtol=1e-6)
        # the UNet's timestep is Framer's c_noise = ¼·ln σ, not diffusers' 250·ln σ
        assert np.allclose(s.timesteps.numpy(), [0.25 * math.log(grid[j]) for j in idx],
                           atol=1e-6)
    other = make_scheduler("turbo", turbo_grid={"num_train_timesteps": 50, "rho": 5.0})
    other.set_timesteps(4)
    assert np.allclose(other.sigmas[1].item(), karras_grid(50, 5.0)[12], rtol=1e-6)


def test_the_grid_a_distillation_saves_is_the_grid_the_sampler_reads(tmp_path):
    """The distillation writes its grid with diffusers' save_config into the LoRA folder (or the
    run folder); load_turbo reads it back into the sampler's config."""
    from framerturbo.models.adapters import read_turbo_grid
    from framerturbo.models.schedulers import TurboScheduler

    TurboScheduler(num_train_timesteps=48, rho=6.0, sigma_max=80.0).save_config(tmp_path)
    assert (tmp_path / "scheduler_config.json").is_file()
    assert read_turbo_grid(tmp_path / "lora") == read_turbo_grid(tmp_path) == {
        "num_train_timesteps": 48, "rho": 6.0, "sigma_min": 0.002, "sigma_max": 80.0}
    assert read_turbo_grid(tmp_path / "elsewhere" / "lora") == {}
    (tmp_path / "scheduler_config.json").write_text("{")
    with pytest.raises(ValueError, match="scheduler_config.json: not valid JSON"):
        read_turbo_grid(tmp_path)


def test_the_turbo_json_of_a_distillation_sets_the_sampler_grid(tmp_path):
    """``framerturbo distill`` records its Karras grid in lora/turbo.json (turbo_info);
    load_turbo's grid and hence the sampler's σs are that grid's points."""
    from framerturbo.core.config import Config
    from framerturbo.models.adapters import read_turbo_grid
    from framerturbo.models.schedulers import TurboScheduler
    from framerturbo.train.consistency import turbo_info

    cfg = Config()
    cfg.distill.num_sigmas, cfg.distill.rho, cfg.distill.sigma_max = 48, 6.0, 80.0
    (tmp_path / "turbo.json").write_text(json.dumps(turbo_info(cfg)))
    grid = read_turbo_grid(tmp_path)
    assert grid == {"num_train_timesteps": 48, "rho": 6.0, "sigma_min": 0.002, "sigma_max": 80.0}
    scheduler = TurboScheduler(**grid)
    scheduler.set_timesteps(4)
    karras = edm.karras_sigmas(48, 0.002, 80.0, 6.0)
    assert all(any(math.isclose(float(s), float(k), rel_tol=1e-5) for k in karras)
               for s in scheduler.sigmas[:4])


class StandIn:
    """A stand-in UNet forward: F = ½·tanh(input's first 4 channels) + 0.1·t, logged."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t, tokens, time_ids, **kw):
        self.calls.append((float(t), x.shape[0]))
        return (0.5 * torch.tanh(x[:, :, :4]) + 0.1 * t,)


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_turbo_steps_equal_an_independent_consistency_sampler(micro_parts, steps):
    """Every state the pipeline reaches (re-noised, and the final x₀) equals the consistency
    sampler written out here, with the same draws from the same generator: latents, the two
    endpoint-augmentation draws, then one ε per step but the last. 1 step is f(x_σmax, σ_max)."""
    from framerturbo.sampling.pipeline import FramerPipeline

    parts = dict(micro_parts, unet=copy.deepcopy(micro_parts["unet"]))
    stand_in = StandIn()
    parts["unet"].forward = stand_in
    pipe = FramerPipeline(**parts)
    pipe.set_progress_bar_config(disable=True)
    states = []
    pipe(START, END, num_inference_steps=steps, generator=torch.Generator().manual_seed(5),
         callback_on_step_end=lambda p, i, t, info: states.append(info["latents"].clone()),
         **RUN)

    gen = torch.Generator().manual_seed(5)
    shape = (1, 5, 4, 8, 8)
    x = 700.0 * torch.randn(shape, generator=gen)
    torch.randn((1, 3, 64, 64), generator=gen), torch.randn((1, 3, 64, 64), generator=gen)
    sigmas = [karras_grid()[j * (40 // steps)] for j in range(steps)]
    sigma_min = 0.002
    for i, sigma in enumerate(sigmas):
        t = 0.25 * math.log(sigma)
        assert stand_in.calls[i][0] == pytest.approx(t, abs=1e-6)
        F = 0.5 * torch.tanh(x / math.sqrt(sigma**2 + 1)) + 0.1 * t
        c_skip = 1 / ((sigma - sigma_min) ** 2 + 1)
        c_out = -(sigma - sigma_min) / math.sqrt(sigma**2 + 1)
        x0 = c_skip * x + c_out * F
        x = x0 + sigmas[i + 1] * torch.randn(shape, generator=gen) if i + 1 < steps else x0
        scale = max(1.0, float(x.abs().max()))
        assert (states[i] - x).abs().max() < 2e-5 * scale, (steps, i)
    assert [b for _, b in stand_in.calls] == [1] * steps  # one call per step, no CFG batch
    if steps == 1:  # 1 step: exactly f(x_σmax, σ_max) by core/edm's consistency function
        x_max = 700.0 * torch.randn(shape, generator=torch.Generator().manual_seed(5))
        F = 0.5 * torch.tanh(edm.scale_input(x_max, 700.0)) + 0.1 * float(edm.c_noise(700.0))
        expected = edm.consistency_denoised(x_max, F, torch.tensor(700.0))
        assert (states[0] - expected).abs().max() < 1e-5


def test_guidance_is_ignored_by_turbo(micro_pipe):
    a = micro_pipe(START, END, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                   max_guidance_scale=3.0, **RUN).frames
    b = micro_pipe(START, END, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                   max_guidance_scale=1.0, **RUN).frames
    assert torch.equal(a, b)


def test_turbo_seeds_and_batch_of_two_equals_two_runs(micro_parts):
    """In float64 (see test_pipeline's batch test); with trajectories through the ControlNet at
    every step. A batch with per-video generators re-noises each video from its own generator."""
    from framerturbo.sampling.pipeline import FramerPipeline

    pipe = FramerPipeline(**{k: copy.deepcopy(v).double() if isinstance(v, torch.nn.Module)
                             else v for k, v in micro_parts.items()})
    pipe.set_progress_bar_config(disable=True)
    other = textured_image(64, seed=9)
    tracks = np.stack([np.linspace([10.0, 12.0], [40.0, 30.0], 5)], axis=1)  # (5, 1, 2)
    kw = dict(RUN, num_inference_steps=4, tracks=tracks)

    def one(seed, a=START, b=END):
        return pipe(a, b, generator=torch.Generator().manual_seed(seed), **kw).frames[0]

    first, again, third = one(11), one(11), one(12)
    assert torch.equal(first, again)
    assert (first - third).abs().max() > 1e-3
    assert (one(11) - pipe(START, END, generator=torch.Generator().manual_seed(11),
                           **dict(kw, tracks=None)).frames[0]).abs().max() > 1e-4  # control acts
    gens = [torch.Generator().manual_seed(s) for s in (11, 12)]
    batch = pipe([START, other], [END, START], generator=gens, **kw).frames
    assert (batch[0] - first).abs().max() < 1e-6
    assert (batch[1] - one(12, other, START)).abs().max() < 1e-6


def make_lora(folder, seed, preset="attn"):
    """A tiny LoRA folder for the micro architecture, written by the training code's saver."""
    from framerturbo.models.adapters import add_lora, save_lora, target_regex
    from framerturbo.models.loading import load_components

    unet = load_components("random-micro", device="cpu")["unet"]
    torch.manual_seed(seed)
    for p in add_lora(unet, 4, 4, 0.0, target_regex(preset)):
        torch.nn.init.normal_(p, std=0.05)
    return save_lora(unet, folder)


@pytest.fixture(scope="module")
def loras(tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return make_lora(root / "domain", 1, "attn"), make_lora(root / "turbo", 2, "framer")


def frames(pipe, steps=2):
    return pipe(START, END, num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
                **RUN).frames


def test_turbo_stacks_with_a_domain_lora_and_scale_zero_is_the_domain_lora(loras):
    from framerturbo.models.adapters import active_weights, load_loras
    from framerturbo.models.loading import load_components
    from framerturbo.sampling.pipeline import FramerPipeline

    domain, turbo = loras
    pipe = FramerPipeline(**load_components("random-micro", device="cpu"))
    pipe.set_progress_bar_config(disable=True)
    base = frames(pipe)
    load_loras(pipe, [(str(domain), 0.7)])
    domain_only = frames(pipe)
    pipe.load_turbo(turbo, 0.0)
    assert pipe.get_list_adapters() == {"unet": ["lora0", "turbo"]}
    # loaded at scale 0, the turbo adapter is inactive (not run at 0) and adds exactly nothing
    assert active_weights(pipe.unet) == pytest.approx({"lora0": 0.7})
    assert torch.equal(frames(pipe), domain_only)
    pipe.load_turbo(turbo, 1.0)  # again: replaces the adapter, keeps the domain LoRA's scale
    assert active_weights(pipe.unet) == pytest.approx({"lora0": 0.7, "turbo": 1.0})
    both = frames(pipe)
    assert (both - domain_only).abs().max() > 1e-3
    # evaluate's per-row loading (load_loras on the UNet) keeps the turbo adapter on
    pipe.delete_adapters("lora0")
    turbo_only = frames(pipe)
    assert (turbo_only - base).abs().max() > 1e-3
    names = load_loras(pipe.unet, [(str(domain), 0.7)])
    assert active_weights(pipe.unet) == pytest.approx({names[0]: 0.7, "turbo": 1.0})
    assert torch.equal(frames(pipe), both)
    pipe.unet.delete_adapters(names)
    assert torch.equal(frames(pipe), turbo_only)
    # turbo at scale 0 alone: the base model, up to float reordering where PEFT wraps an
    # attention projection the base model calls unwrapped (1 ulp in one layer, ~1e-5 here;
    # test_training pins the same for domain LoRAs); the turbo LoRA itself moves frames > 1e-3
    pipe.load_turbo(turbo, 0.0)
    assert (frames(pipe) - base).abs().max() < 1e-4


def test_an_adapter_at_scale_zero_is_not_run(loras):
    """PEFT computes an active adapter's matmuls whatever its scale, so set_weights leaves an
    adapter at 0 inactive: a turbo LoRA carried at 0 (the app's and the demo's non-turbo
    requests) must not cost the UNet a single LoRA layer call, nor change its frames."""
    from framerturbo.models.adapters import load_loras, set_weights
    from framerturbo.models.loading import load_components
    from framerturbo.sampling.pipeline import FramerPipeline

    domain, turbo = loras
    pipe = FramerPipeline(**load_components("random-micro", device="cpu"))
    pipe.set_progress_bar_config(disable=True)
    base = frames(pipe, steps=1)
    pipe.load_turbo(turbo, 1.0)
    (name,) = load_loras(pipe.unet, [(str(domain), 0.7)])
    calls = {name: 0, "turbo": 0}
    for module_name, module in pipe.unet.named_modules():
        for adapter in calls:
            if module_name.endswith(f"lora_A.{adapter}"):
                module.register_forward_hook(
                    lambda *_, a=adapter: calls.__setitem__(a, calls[a] + 1))
    frames(pipe, steps=1)
    assert calls[name] > 0 and calls["turbo"] > 0  # the hooks see both while they run
    calls.update({name: 0, "turbo": 0})
    set_weights(pipe.unet, {name: 0.7, "turbo": 0.0})
    frames(pipe, steps=1)
    assert calls["turbo"] == 0 and calls[name] > 0
    calls.update({name: 0, "turbo": 0})
    set_weights(pipe, {name: 0.0, "turbo": 0.0})  # through the pipeline API: none runs
    # the base model, up to the 1-ulp reordering of a PEFT-wrapped projection (see above)
    assert (frames(pipe, steps=1) - base).abs().max() < 1e-4
    assert calls == {name: 0, "turbo": 0}
    set_weights(pipe.unet, {"turbo": 1.0})  # and back on
    frames(pipe, steps=1)
    assert calls["turbo"] > 0 and calls[name] == 0


def test_fused_adapters_sample_as_the_stacked_ones_without_lora_layers(loras):
    """What interpolate/stitch/batch run: the domain LoRA (at 0.7) and the turbo LoRA folded
    into the weights give the frames the two unfused adapters give, with no adapter left."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    from framerturbo.models.adapters import load_loras
    from framerturbo.models.loading import load_components
    from framerturbo.sampling.pipeline import FramerPipeline

    domain, turbo = loras
    pipe = FramerPipeline(**load_components("random-micro", device="cpu"))
    pipe.set_progress_bar_config(disable=True)
    base = frames(pipe, steps=1)
    load_loras(pipe, [(str(domain), 0.7)])
    pipe.load_turbo(turbo, 1.0)
    stacked = frames(pipe, steps=1)
    assert pipe.fuse_adapters() == pytest.approx({"lora0": 0.7, "turbo": 1.0})
    assert not any(isinstance(m, BaseTunerLayer) for m in pipe.unet.modules())
    fused = frames(pipe, steps=1)
    assert (fused - stacked).abs().max() < 1e-4 < (stacked - base).abs().max()
    assert pipe.fuse_adapters() == {}  # nothing left to fuse: a no-op


def test_bare_turbo_finds_the_lora_shipped_in_the_model_folder(loras, tmp_path):
    from framerturbo.models.adapters import find_turbo_dir
    from framerturbo.models.loading import random_micro_components, save_components
    from framerturbo.models.schedulers import make_scheduler
    from framerturbo.sampling.pipeline import FramerPipeline

    model = tmp_path / "model"
    save_components(random_micro_components(), model)
    with pytest.raises(FileNotFoundError, match="framerturbo distill --config micro/turbo"):
        find_turbo_dir(None, model)
    make_lora(model / "turbo", 2, "framer")
    (model / "turbo" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "TurboScheduler", "num_train_timesteps": 20, "rho": 7.0}))
    pipe = FramerPipeline.from_framer(str(model), device="cpu")
    assert pipe.load_turbo() == model / "turbo"
    assert pipe.turbo_grid == {"num_train_timesteps": 20, "rho": 7.0}
    s = make_scheduler("turbo", turbo_grid=pipe.turbo_grid)
    s.set_timesteps(4)
    assert np.allclose(s.sigmas[1].item(), karras_grid(20)[5], rtol=1e-6)


def test_new_model_ships_a_turbo_lora_in_fp16_that_samples_as_the_fp32_one(loras, tmp_path):
    from safetensors import safe_open

    from framerturbo.cli.main import main
    from framerturbo.models.adapters import LORA_WEIGHTS
    from framerturbo.models.loading import load_components
    from framerturbo.sampling.pipeline import FramerPipeline

    turbo = tmp_path / "run"
    shutil.copytree(loras[1], turbo)
    (turbo / "turbo.json").write_text(json.dumps({"kind": "turbo", "sigma_grid": {
        "num_sigmas": 20, "rho": 7.0, "sigma_min": 0.002, "sigma_max": 700.0}}))
    (turbo / "card.json").write_text(json.dumps({"title": "turbo", "base_model": "micro"}))
    model = tmp_path / "model"
    assert main(["new-model", "--out", str(model), "--fp16", "--turbo", str(turbo)]) == 0
    shipped = model / "turbo"
    card = (shipped / "README.md").read_text()  # re-rendered: found by a bare --turbo
    assert "--model micro --turbo\n" in card and "pipe.load_turbo()" in card
    assert str(turbo) not in card
    assert json.loads((shipped / "turbo.json").read_text())["kind"] == "turbo"
    with safe_open(shipped / LORA_WEIGHTS, "pt") as f, safe_open(turbo / LORA_WEIGHTS, "pt") as g:
        assert f.metadata() == g.metadata()  # PEFT's rank/alpha travel with the weights
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}  # noqa: SIM118
    assert (shipped / LORA_WEIGHTS).stat().st_size < 0.6 * (turbo / LORA_WEIGHTS).stat().st_size
    pipe = FramerPipeline.from_framer(str(model), device="cpu", dtype="fp32")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.load_turbo() == shipped  # bare --turbo finds it
    assert pipe.turbo_grid["num_train_timesteps"] == 20
    half = frames(pipe)
    pipe.load_turbo(turbo)  # the fp32 original on the same (fp16-stored) model
    assert (frames(pipe) - half).abs().max() < 2e-3


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    Image.fromarray(textured_image(64, 1)).save(d / "a.png")
    Image.fromarray(textured_image(64, 1, shift=(4, 2))).save(d / "b.png")
    return str(d / "a.png"), str(d / "b.png")


def test_cli_interpolate_with_turbo_on_the_micro_model(pair, loras, tmp_path, capsys,
                                                        monkeypatch):
    """`framerturbo interpolate a.png b.png -o out.gif --turbo DIR`: the turbo LoRA loads and
    the turbo sampler runs 4 steps, one UNet call each; --steps still wins."""
    from framerturbo.cli.main import main
    from framerturbo.media.files import read_video_frames
    from framerturbo.models.schedulers import TurboScheduler
    from framerturbo.sampling.pipeline import FramerPipeline

    seen = []
    set_timesteps = TurboScheduler.set_timesteps
    monkeypatch.setattr(TurboScheduler, "set_timesteps",
                        lambda self, n, **kw: (seen.append(n), set_timesteps(self, n, **kw)))
    load_turbo = FramerPipeline.load_turbo
    loaded = []
    monkeypatch.setattr(FramerPipeline, "load_turbo",
                        lambda self, *a: (loaded.append(a), load_turbo(self, *a))[1])
    out = tmp_path / "out.gif"
    assert main(["interpolate", *pair, "-o", str(out), "--turbo", str(loras[1])]) == 0
    assert seen == [4] and loaded == [(str(loras[1]), 1.0)]
    assert "9 frames, 64x64" in capsys.readouterr().out
    assert len(read_video_frames(out)) == 9
    assert main(["interpolate", *pair, "-o", str(tmp_path / "two.gif"), "--turbo",
                 f"{loras[1]}:0.5", "--steps", "2"]) == 0
    assert seen == [4, 2] and loaded[-1] == (str(loras[1]), 0.5)


def test_cli_bare_turbo_without_a_shipped_lora_is_one_line(pair, tmp_path, capsys, monkeypatch):
    from framerturbo.cli.main import main
    from framerturbo.models import configs
    from framerturbo.sampling.pipeline import FramerPipeline

    monkeypatch.setattr(configs, "MICRO_PATH", tmp_path / "no-micro")
    monkeypatch.setattr(FramerPipeline, "from_framer", lambda *a, **k: pytest.fail("loaded"))
    capsys.readouterr()
    assert main(["interpolate", *pair, "-o", str(tmp_path / "x.gif"), "--turbo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "no turbo LoRA ships with model micro" in err[0]
    assert "no-micro/turbo" in err[0] and "framerturbo distill --config micro/turbo" in err[0]
    assert main(["interpolate", *pair, "-o", str(tmp_path / "x.gif"),
                 "--turbo", str(tmp_path / "nothing")]) == 2
    assert "framerturbo distill" in capsys.readouterr().err


def test_turbo_is_registered_where_samplers_are_listed():
    from framerturbo.cli.main import build_parser
    from framerturbo.models.record import MICRO_SIZE, sampling_choice
    from framerturbo.models.schedulers import DEFAULT_STEPS, SAMPLERS, canonical_name

    assert "turbo" in SAMPLERS and DEFAULT_STEPS["turbo"] == 4
    assert canonical_name("consistency") == "turbo"
    assert sampling_choice(MICRO_SIZE, None, None, turbo=True) == ("turbo", 4)
    assert sampling_choice(MICRO_SIZE, None, 8, turbo=True) == ("turbo", 8)
    assert sampling_choice(MICRO_SIZE, "dpm++", None, turbo=True) == ("dpm++", None)
    assert sampling_choice(MICRO_SIZE, None, None) == ("euler", 10)
    parser = build_parser()
    for argv in (["interpolate", "a", "b", "-o", "x"], ["stitch", "a", "b", "-o", "x"],
                 ["evaluate"], ["app"]):
        assert parser.parse_args(argv + ["--turbo"]).turbo == ""
        assert parser.parse_args(argv + ["--turbo", "d:0.5"]).turbo == "d:0.5"
        assert parser.parse_args(argv).turbo is None


def test_app_turbo_defaults_and_the_lora_only_with_the_turbo_sampler(loras, monkeypatch):
    """`app --turbo DIR`: turbo sampler at 4 steps by default; the turbo LoRA acts only on
    requests that choose the turbo sampler (the others run the model without it)."""
    pytest.importorskip("gradio")
    from types import SimpleNamespace

    from framerturbo.cli import app
    from framerturbo.cli.main import main
    from framerturbo.models.adapters import active_weights
    from framerturbo.models.loading import load_components
    from framerturbo.sampling.pipeline import FramerPipeline

    seen, loaded = {}, []
    monkeypatch.setattr(FramerPipeline, "from_framer", classmethod(
        lambda cls, *a, **k: SimpleNamespace(set_progress_bar_config=lambda **_: None,
                                             load_turbo=lambda *a: loaded.append(a))))
    monkeypatch.setattr(app, "launch", lambda pipe, loras, **kw: seen.update(kw["defaults"]))
    assert main(["app", "--turbo", f"{loras[1]}:0.8"]) == 0
    assert (seen["sampler"], seen["steps"], seen["turbo_scale"]) == ("turbo", 4, 0.8)
    assert loaded == [(str(loras[1]), 0.8)]

    pipe = FramerPipeline(**load_components("random-micro", device="cpu"))
    pipe.load_turbo(loras[1], 0.8)
    runner = app.Runner(pipe, {"mine": str(loras[0])}, turbo_scale=0.8)
    runner._use_lora("mine", 0.5, "turbo")
    assert active_weights(pipe.unet) == pytest.approx({"lora0": 0.5, "turbo": 0.8})
    runner._use_lora("mine", 0.5, "euler")  # the turbo adapter off, not run at scale 0
    assert active_weights(pipe.unet) == pytest.approx({"lora0": 0.5})
    runner._use_lora("none", 1.0, "turbo")
    assert active_weights(pipe.unet) == pytest.approx({"turbo": 0.8})
    runner._use_lora("none", 1.0, "euler")  # the base model: no adapter runs at all
    assert active_weights(pipe.unet) == {}


def test_evaluate_and_stitch_take_turbo(loras, tmp_path, monkeypatch):
    """Every evaluate row runs with the turbo LoRA beside its domain LoRA, on the turbo
    sampler at 4 steps; stitch's transitions too."""
    from videos import moving_square_frames, write_video

    from framerturbo.cli.main import main
    from framerturbo.eval import compare
    from framerturbo.models.adapters import active_weights
    from framerturbo.models.schedulers import TurboScheduler

    steps, rows = [], {}
    set_timesteps = TurboScheduler.set_timesteps
    monkeypatch.setattr(TurboScheduler, "set_timesteps",
                        lambda self, n, **kw: (steps.append(n), set_timesteps(self, n, **kw)))
    score = compare.score_model
    monkeypatch.setattr(compare, "score_model", lambda pipe, clips, label, **kw: (
        rows.update({label: (active_weights(pipe.unet), kw["sampler"], kw["steps"])}),
        score(pipe, clips, label, **kw))[1])
    clips = [write_video(tmp_path / f"c{i}.mp4", moving_square_frames(12, seed=i), fps=10)
             for i in range(2)]
    out = tmp_path / "m.json"
    assert main(["evaluate", "--model", "random-micro", "--data", str(clips[0]), "--num-frames",
                 "5", "--height", "64", "--width", "64", "--stride", "2", "--max-clips", "1",
                 "--lora", str(loras[0]), "--compare", "base", "--turbo", f"{loras[1]}:0.9",
                 "--out", str(out)]) == 0
    assert rows == {"base (random-micro)": ({"turbo": pytest.approx(0.9)}, "turbo", 4),
                    "lora domain": ({"lora0": 1.0, "turbo": pytest.approx(0.9)}, "turbo", 4)}
    assert json.loads(out.read_text())["conditions"]["turbo"] == f"{loras[1]}:0.9"
    steps.clear()
    assert main(["stitch", *map(str, clips), "-o", str(tmp_path / "j.mp4"),
                 "--transition-frames", "3", "--model", "random-micro", "--height", "64",
                 "--width", "64", "--turbo", str(loras[1])]) == 0
    assert steps == [4]


def test_turbo_sampler_without_a_turbo_lora_is_flagged_in_api_cli_and_app(
        micro_pipe, pair, tmp_path, capsys):
    """The earlier toolkit ran a consistency ("LCM") sampler on undistilled weights and called
    it good; here the API warns, the CLI says it once in its own words, and the app offers
    ``turbo`` only with a turbo LoRA (and refuses a request for it otherwise)."""
    import warnings

    from framerturbo.cli import app
    from framerturbo.cli.main import main
    from framerturbo.models.schedulers import UndistilledTurboWarning

    with pytest.warns(UndistilledTurboWarning, match="load_turbo") as seen:
        micro_pipe(START, END, num_inference_steps=1, **RUN)
    assert seen[0].filename == __file__  # pointed at the caller's line
    turbo_pipe = copy.copy(micro_pipe)
    turbo_pipe.turbo_grid = {}  # what load_turbo sets for a LoRA without turbo.json
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndistilledTurboWarning)
        turbo_pipe(START, END, num_inference_steps=1, **RUN)

    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["interpolate", *map(str, pair), "-o", str(tmp_path / "o.gif"), "--model",
                     "random-micro", "--num-frames", "5", "--sampler", "turbo", "--steps",
                     "1"]) == 0
    assert capsys.readouterr().err.count("runs the undistilled model") == 1
    assert not [w for w in caught if issubclass(w.category, UndistilledTurboWarning)]

    plain = app.Runner(micro_pipe, {})
    assert app.offered_samplers(plain) == ["euler", "dpm++"]
    with_turbo = app.Runner(micro_pipe, {}, turbo_scale=1.0)
    assert app.offered_samplers(with_turbo) == ["euler", "dpm++", "turbo"]
    session = app.Session()
    session.start = session.end = Image.fromarray(START)
    with pytest.raises(ValueError, match="turbo needs `app --turbo`"):
        plain.generate(session, autopilot=False, sampler="turbo", steps=1, seed=0, gmin=1,
                       gmax=1, frames=5, height=64, width=64, lora="none", lora_scale=1.0,
                       control_scale=1.0)
