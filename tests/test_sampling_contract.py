"""What the sampling loop must do, pinned against references written here from ``edm.py``'s
formulas alone: the DPM-Solver++(2M) and Euler updates, the timestep the networks receive at every
step (c_noise(σ), never a rounded or VP timestep), and the direction of the CFG combination.

The pipeline runs the random micro model with a *stand-in network*: a forward hook replaces the
UNet's output with a known function of its input (different for the conditional and the
unconditional half), so every step's expected latents can be computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import textured_image
from framerturbo.core import edm
from framerturbo.sampling.pipeline import guidance_weights
from framerturbo.models.schedulers import make_scheduler

START = textured_image(64, seed=3)
END = textured_image(64, seed=3, shift=(5, 2))
FRAMES = 5
GUIDANCE = (1.0, 3.0)  # per-frame ramp 1, 1.5, 2, 2.5, 3
K_UNCOND, K_COND, SLOPE = -0.3, 0.7, 0.5  # stand-in F = SLOPE·(c_in·x) + K_{half}


# ---- independent samplers (EDM, σ_data = 1, α = 1: λ = −ln σ) --------------------------------

def reference_sigmas(steps: int) -> torch.Tensor:
    """Karras σ grid 700 → 0.002 (ρ = 7) with the final 0, in float64."""
    return torch.cat([edm.karras_sigmas(steps), torch.zeros(1, dtype=torch.float64)])


def dpmpp_2m(x, f, sigmas, i, prev_x0):
    """One DPM-Solver++(2M) step (Lu et al. 2022, data prediction) from σ_i to σ_{i+1}; first
    order on the first step and on the last (σ_{i+1} = 0, where it returns x₀ exactly).
    Returns (x_{i+1}, x₀ estimate at step i)."""
    s, nxt = float(sigmas[i]), float(sigmas[i + 1])
    x0 = edm.c_skip(s) * x + edm.c_out(s) * f  # D = c_skip·x + c_out·F (v-prediction)
    if nxt == 0.0:
        return x0, x0
    h = math.log(s / nxt)  # λ_{i+1} − λ_i
    d = x0
    if prev_x0 is not None:
        h_prev = math.log(float(sigmas[i - 1]) / s)
        r = h_prev / h
        d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
    return (nxt / s) * x - math.expm1(-h) * d, x0


def euler(x, f, sigmas, i, prev_x0=None):
    s, nxt = float(sigmas[i]), float(sigmas[i + 1])
    x0 = edm.c_skip(s) * x + edm.c_out(s) * f
    return x + (nxt - s) * (x - x0) / s, x0


REFERENCE = {"euler": euler, "dpm++": dpmpp_2m}


# ---- the scheduler alone ------------------------------------------------------------------------

@pytest.mark.parametrize("steps", [4, 12])
def test_dpmpp_scheduler_is_dpm_solver_pp_2m(steps):
    sched = make_scheduler("dpm++")
    sched.set_timesteps(steps)
    sigmas = reference_sigmas(steps)
    assert torch.allclose(sched.sigmas.double(), sigmas, rtol=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 4, 4, 4, generator=g, dtype=torch.float64) * math.sqrt(700.0**2 + 1)
    ours, prev_x0 = x.float(), None
    for i, t in enumerate(sched.timesteps):
        f = torch.randn(x.shape, generator=g, dtype=torch.float64)
        x, prev_x0 = dpmpp_2m(x, f, sigmas, i, prev_x0)
        ours = sched.step(f.float(), t, ours).prev_sample
        scale = float(x.abs().max()) + 1.0
        assert torch.allclose(ours.double(), x, rtol=1e-4, atol=1e-4 * scale), (i, steps)


# ---- the pipeline with a stand-in network ------------------------------------------------------

class StandIn:
    """Forward hook: the UNet's output becomes SLOPE·x[:, :, :4] + K, with K = K_UNCOND for the
    unconditional half (CLIP tokens all zero, the conditioning contract) and K_COND otherwise.
    Records the timestep and (σ-free) input of every call."""

    def __init__(self, module):
        self.timesteps, self.inputs = [], []
        self.handle = module.register_forward_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs, output):
        x = args[0] if args else kwargs["sample"]
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        tokens = args[2] if len(args) > 2 else kwargs["encoder_hidden_states"]
        self.timesteps.append(float(torch.as_tensor(t).reshape(-1)[0]))
        uncond = tokens.flatten(1).abs().amax(1) == 0
        k = torch.where(uncond, K_UNCOND, K_COND).to(x.dtype).view(-1, 1, 1, 1, 1)
        f = SLOPE * x[:, :, :4] + k
        return (f, *output[1:]) if isinstance(output, tuple) else type(output)(sample=f)

    def remove(self):
        self.handle.remove()


def run_with_stand_in(pipe, sampler, steps, **kw):
    """(per-step latents as float64, initial latents, recorded UNet timesteps)."""
    latents = torch.randn(1, FRAMES, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    seen = []
    hook = StandIn(pipe.unet)
    try:
        pipe(START, END, num_frames=FRAMES, height=64, width=64, num_inference_steps=steps,
             sampler=sampler, min_guidance_scale=GUIDANCE[0], max_guidance_scale=GUIDANCE[1],
             latents=latents.clone(), output_type="np",
             callback_on_step_end=lambda p, i, t, info: seen.append(
                 info["latents"].detach().double().clone()), **kw)
    finally:
        hook.remove()
    return seen, latents.double(), hook.timesteps


def guided(x, sigma):
    """The CFG-combined stand-in output the sampler must be given: uncond + w·(cond − uncond)."""
    w = guidance_weights(*GUIDANCE, FRAMES).double().view(1, FRAMES, 1, 1, 1)
    scaled = edm.scale_input(x, torch.tensor(sigma, dtype=torch.float64))
    return SLOPE * scaled + K_UNCOND + w * (K_COND - K_UNCOND)


@pytest.mark.parametrize("sampler,steps", [("euler", 4), ("dpm++", 5)])
def test_pipeline_steps_equal_the_reference_sampler(micro_pipe, sampler, steps):
    """Every step's latents equal the independent update applied to the previous step's latents
    (so one wrong step cannot hide behind the others); catches a wrong c_skip/c_out (e.g. the
    DPM++ scheduler told ``prediction_type="epsilon"``), a wrong σ grid and a wrong CFG."""
    seen, x, _ = run_with_stand_in(micro_pipe, sampler, steps)
    sigmas = reference_sigmas(steps)
    assert len(seen) == steps
    x = x * math.sqrt(float(sigmas[0]) ** 2 + 1)  # init_noise_sigma
    prev_x0 = None
    for i in range(steps):
        expect, prev_x0 = REFERENCE[sampler](x, guided(x, float(sigmas[i])), sigmas, i, prev_x0)
        scale = float(expect.abs().max()) + 1.0
        err = float((seen[i] - expect).abs().max())
        assert err < 1e-4 * scale, (sampler, i, err, scale)
        x = seen[i]  # continue from what the pipeline produced


@pytest.mark.parametrize("sampler,steps", [("euler", 4), ("dpm++", 5)])
def test_networks_receive_c_noise_of_each_sigma(micro_pipe, sampler, steps):
    """The UNet (both CFG halves, one call per step) and the ControlNet get exactly
    c_noise(σ_i) = ¼·ln σ_i — not a rounded, integer or VP timestep."""
    control = []

    def record(module, args, kwargs):
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        control.append(float(torch.as_tensor(t).reshape(-1)[0]))

    handle = micro_pipe.controlnet.register_forward_pre_hook(record, with_kwargs=True)
    tracks = np.stack([np.linspace([10, 10], [50, 40], FRAMES)], 1)
    try:
        _, _, unet_t = run_with_stand_in(micro_pipe, sampler, steps, tracks=tracks)
    finally:
        handle.remove()
    expect = edm.c_noise(reference_sigmas(steps)[:-1]).tolist()
    assert unet_t == pytest.approx(expect, abs=1e-4), (sampler, unet_t, expect)
    assert control == pytest.approx(expect, abs=1e-4), (sampler, control, expect)
    # the rounded-timestep bug would give integers: the grid has non-integers at every step
    assert all(abs(v - round(v)) > 1e-3 for v in expect)


def test_cfg_pushes_from_unconditional_towards_conditional(micro_pipe):
    """With uncond → K_UNCOND and cond → K_COND, frame f's guided output is
    K_UNCOND + w_f·(K_COND − K_UNCOND): 0.7 at w = 1 and 2.7 at w = 3 (the swapped combination
    cond + w·(uncond − cond) would give 0.7 and −2.3). Read back from the first dpm++ step
    (first order: x₁ = (σ₁/σ₀)·x₀ + (1 − σ₁/σ₀)·D)."""
    seen, x, _ = run_with_stand_in(micro_pipe, "dpm++", 3)
    sigmas = reference_sigmas(3)
    s0, s1 = float(sigmas[0]), float(sigmas[1])
    x0 = x * math.sqrt(s0**2 + 1)
    d = (seen[0] - (s1 / s0) * x0) / (1 - s1 / s0)
    f = (d - edm.c_skip(s0) * x0) / edm.c_out(s0)  # what the sampler was given
    k = f - SLOPE * edm.scale_input(x0, torch.tensor(s0, dtype=torch.float64))
    per_frame = k.mean(dim=(0, 2, 3, 4))
    w = guidance_weights(*GUIDANCE, FRAMES).double()
    right = K_UNCOND + w * (K_COND - K_UNCOND)
    swapped = K_COND + w * (K_UNCOND - K_COND)
    assert torch.allclose(per_frame, right, atol=0.05), (per_frame, right)
    assert (per_frame - swapped).abs().max() > 2.0
    # the last frame (w = 3) is pushed beyond the conditional output, away from uncond
    assert per_frame[-1] > K_COND + 1.5
