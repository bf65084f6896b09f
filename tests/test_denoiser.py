"""FramerDenoiser is the one network step: the pipeline and the trainer both go through it, it
applies edm.py's preconditioning, and it combines classifier-free guidance the right way round."""

from __future__ import annotations

import pytest
import torch

from framerturbo.denoising import denoiser as D
from framerturbo.core import edm
from framerturbo.denoising.conditioning import FramerConditioning
from framerturbo.denoising.denoiser import FramerDenoiser, combine_guidance
from framerturbo.models.schedulers import SAMPLERS, make_scheduler


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("steps", [4, 12, 30])
def test_scheduler_timesteps_are_c_noise_of_its_sigmas(name, steps):
    """The denoiser derives the timestep from σ; the stock schedulers' own timesteps agree."""
    sched = make_scheduler(name)
    sched.set_timesteps(steps)
    sigmas = sched.sigmas[:len(sched.timesteps)]
    assert torch.equal(sched.timesteps, edm.c_noise(sigmas))


class StandIn(torch.nn.Module):
    """A 'UNet' whose output is known: 10 + (first CLIP token's sum), per sample."""

    dtype = torch.float32
    mask_token = torch.zeros(1, 1, 4, 1, 1)

    def forward(self, x, t, tokens, time_ids, return_up_block_features=False, return_dict=False,
                **_):
        out = (10 + tokens[:, 0].sum(dim=-1)).reshape(-1, 1, 1, 1, 1).expand(
            x.shape[0], x.shape[1], 4, *x.shape[3:])
        return (out.clone(),)


def _cond(batch=1, frames=3):
    return FramerConditioning(torch.ones(batch, 2, 2), torch.ones(batch, frames, 5, 2, 2),
                              torch.zeros(batch, 3))


def test_guidance_direction_uncond_plus_w_times_cond_minus_uncond():
    # conditional F = 10 + 2 = 12 (tokens kept), unconditional F = 10 (tokens zeroed)
    den = FramerDenoiser(StandIn())
    w = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1, 1)
    out = den(torch.zeros(1, 3, 4, 2, 2), 1.0, _cond(), guidance=w).output
    assert torch.allclose(out[0, :, 0, 0, 0], torch.tensor([12.0, 14.0, 16.0]))
    both = torch.stack([torch.zeros(2), torch.ones(2)])  # [uncond; cond]
    assert torch.equal(combine_guidance(both, torch.tensor(3.0)), torch.full((1, 2), 3.0))


def test_denoised_is_c_skip_x_plus_c_out_f():
    den = FramerDenoiser(StandIn())
    x = torch.randn(2, 3, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.5, 8.0])
    out = den(x, sigma, _cond(batch=2))
    s = sigma.reshape(2, 1, 1, 1, 1)
    assert torch.allclose(out.denoised, x / (s**2 + 1) - s / torch.sqrt(s**2 + 1) * out.output)


def test_pipeline_and_trainer_both_call_the_denoiser(micro_pipe, monkeypatch, tmp_path,
                                                     tiny_train_config):
    from framerturbo.train.loop import train
    from videos import make_dataset

    calls = []
    original = FramerDenoiser.__call__

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("guidance") is not None)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(D.FramerDenoiser, "__call__", spy)
    micro_pipe(torch.rand(3, 64, 64), torch.rand(3, 64, 64), num_frames=3, height=64, width=64,
               num_inference_steps=2, output_type="pt")
    assert calls == [True, True]  # one guided call per sampling step
    calls.clear()
    clips = make_dataset(tmp_path / "clips", n=2)
    train(tiny_train_config(clips, tmp_path / "run", "data.num_frames=3", "train.max_steps=2"))
    assert calls == [False, False]  # one unguided call per training step
