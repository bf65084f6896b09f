"""The EDM formulas against hand-computed values, and the samplers against them."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import EulerDiscreteScheduler

from framerturbo.core import edm
from framerturbo.models.schedulers import make_scheduler

# SVD-xt's scheduler_config.json, written out here independently of the package.
SVD_XT_SCHEDULER = {
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
    "prediction_type": "v_prediction", "set_alpha_to_one": False, "sigma_max": 700.0,
    "sigma_min": 0.002, "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
    "timestep_type": "continuous", "trained_betas": None, "use_karras_sigmas": True,
}


def test_preconditioning_hand_values():
    assert float(edm.c_in(1.0)) == pytest.approx(1 / math.sqrt(2))
    assert float(edm.c_skip(1.0)) == pytest.approx(0.5)
    assert float(edm.c_out(1.0)) == pytest.approx(-1 / math.sqrt(2))
    assert float(edm.c_noise(1.0)) == pytest.approx(0.0)
    assert float(edm.c_noise(math.exp(4))) == pytest.approx(1.0)
    assert float(edm.c_in(3.0)) == pytest.approx(1 / math.sqrt(10))
    assert float(edm.c_skip(3.0)) == pytest.approx(0.1)
    assert float(edm.c_out(3.0)) == pytest.approx(-3 / math.sqrt(10))
    assert float(edm.c_noise(700.0)) == pytest.approx(1.6378, abs=1e-4)
    assert float(edm.loss_weight(2.0)) == pytest.approx(5 / 4)


def test_v_target_is_what_the_denoiser_needs():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 2, 5, 5, generator=g), torch.randn(3, 4, 2, 5, 5, generator=g)
    sigma = torch.tensor([0.01, 1.3, 80.0])
    x = edm.add_noise(x0, eps, sigma)
    v = edm.v_target(x0, eps, sigma)
    hand = (eps - sigma.view(3, 1, 1, 1, 1) * x0) / torch.sqrt(sigma.view(3, 1, 1, 1, 1) ** 2 + 1)
    assert torch.allclose(v, hand)
    assert torch.allclose(edm.denoised(x, v, sigma), x0, atol=1e-4)
    # λ(σ)·‖D − x₀‖² equals ‖F − v‖² for any network output F
    f = torch.randn_like(x0, generator=g)
    lhs = edm.loss_weight(sigma).view(3, 1, 1, 1, 1) * (edm.denoised(x, f, sigma) - x0) ** 2
    assert torch.allclose(lhs, (f - v) ** 2, rtol=1e-3, atol=1e-4)


def test_sigma_sampling_is_lognormal():
    g = torch.Generator().manual_seed(0)
    s = edm.sample_sigmas(40000, 0.7, 1.6, generator=g)
    assert (s > 0).all()
    assert float(s.log().mean()) == pytest.approx(0.7, abs=0.03)
    assert float(s.log().std()) == pytest.approx(1.6, abs=0.03)


def test_euler_is_svd_euler_step_for_step():
    ours, ref = make_scheduler("euler"), EulerDiscreteScheduler.from_config(SVD_XT_SCHEDULER)
    for s in (ours, ref):
        s.set_timesteps(30)
    assert torch.equal(ours.timesteps, ref.timesteps)
    assert torch.equal(ours.sigmas, ref.sigmas)
    assert float(ours.sigmas[0]) == pytest.approx(700.0)
    assert torch.allclose(ours.timesteps, edm.c_noise(ours.sigmas[:-1]).float(), atol=1e-5)
    g = torch.Generator().manual_seed(0)
    x_a = x_b = torch.randn(1, 3, 4, 4, 4, generator=g) * ours.init_noise_sigma
    for t in ours.timesteps:
        out = torch.randn(1, 3, 4, 4, 4, generator=g)
        assert torch.equal(ours.scale_model_input(x_a, t), ref.scale_model_input(x_b, t))
        x_a = ours.step(out, t, x_a).prev_sample
        x_b = ref.step(out, t, x_b).prev_sample
        assert torch.equal(x_a, x_b)


def test_euler_step_uses_edm_formulas():
    sched = make_scheduler("euler")
    sched.set_timesteps(10)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 4, 3, 3, generator=g) * 5
    for i in (0, 4, 8):
        sched._step_index = i
        sigma, nxt = sched.sigmas[i], sched.sigmas[i + 1]
        t = sched.timesteps[i]
        assert torch.allclose(sched.scale_model_input(x, t), edm.scale_input(x, sigma))
        f = torch.randn_like(x, generator=g)
        sched._step_index = i
        d = edm.denoised(x, f, sigma)
        expect = x + (nxt - sigma) * (x - d) / sigma
        assert torch.allclose(sched.step(f, t, x).prev_sample, expect, rtol=1e-4, atol=1e-4)


def test_dpmpp_uses_continuous_edm_timesteps():
    sched = make_scheduler("dpm++")
    sched.set_timesteps(12)
    sigmas = sched.sigmas[:-1]
    assert float(sigmas[0]) == pytest.approx(700.0, rel=1e-4)
    assert float(sigmas[-1]) == pytest.approx(0.002, rel=1e-3)
    assert torch.allclose(sched.timesteps.double(), edm.c_noise(sigmas.double()), atol=1e-4)
    assert not torch.equal(sched.timesteps, sched.timesteps.round())  # no integer VP timesteps
    assert torch.allclose(sigmas.double(), edm.karras_sigmas(12), rtol=1e-4)
    assert float(sched.init_noise_sigma) == pytest.approx(700.0, rel=1e-4)
    x = torch.ones(1)
    assert torch.allclose(sched.scale_model_input(x, sched.timesteps[3]),
                          edm.scale_input(x, sigmas[3]).float())


def test_unknown_sampler_lists_valid_names():
    with pytest.raises(ValueError, match="euler, dpm\\+\\+"):
        make_scheduler("lcm")
    assert type(make_scheduler("DPMPP")).__name__ == "EDMDPMSolverMultistepScheduler"
