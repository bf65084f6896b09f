"""The heart of training: the trainer asks the model exactly what the sampler asks, and the loss
is EDM's v-objective."""

from __future__ import annotations

import torch

from conftest import textured_image
from framerturbo.core import edm
from framerturbo.denoising.denoiser import FramerDenoiser
from framerturbo.denoising.encoding import EncodedBatch, encode_endpoints, pixels_from_uint8
from framerturbo.train.objective import (
    StepNoise,
    diffusion_loss,
    hold_still,
    predict,
    training_conditioning,
)


def capture_unet_calls(pipe):
    calls = []
    handle = pipe.unet.register_forward_pre_hook(
        lambda m, args, kwargs: calls.append((args, kwargs)), with_kwargs=True)
    return calls, handle


def trainer_batch(micro_parts, start, end, aug_noise, num_frames, aug=0.02):
    vae, enc = micro_parts["vae"], micro_parts["image_encoder"]
    start_px = pixels_from_uint8(torch.from_numpy(start).permute(2, 0, 1))[None]
    end_px = pixels_from_uint8(torch.from_numpy(end).permute(2, 0, 1))[None]
    ends = encode_endpoints(vae, enc, start_px, end_px, torch.tensor([aug]), aug_noise)
    h = start.shape[0] // 8
    return EncodedBatch(
        latents=torch.zeros(1, num_frames, 4, h, h),  # replaced by the pipeline's x_σ below
        endpoint_latents=ends.endpoint_latents, aug_sigma=ends.aug_sigma,
        image_embeddings=ends.image_embeddings,
        fps=torch.tensor([7.0]), motion_bucket=torch.tensor([100.0]))


def test_trainer_model_input_equals_pipeline_model_input(micro_pipe, micro_parts):
    start, end = textured_image(64, 5), textured_image(64, 6)
    calls, handle = capture_unet_calls(micro_pipe)
    states = []
    try:
        micro_pipe(start, end, num_frames=5, height=64, width=64, num_inference_steps=3,
                   generator=torch.Generator().manual_seed(0), output_type="np",
                   callback_on_step_end=lambda p, i, t, info: states.append(info["latents"]))
    finally:
        handle.remove()
    # the pipeline's draws, in its documented order: latents, start noise, end noise
    g = torch.Generator().manual_seed(0)
    first = torch.randn(1, 5, 4, 8, 8, generator=g)
    aug = (torch.randn(1, 3, 64, 64, generator=g), torch.randn(1, 3, 64, 64, generator=g))
    batch = trainer_batch(micro_parts, start, end, aug, 5)

    from framerturbo.models.schedulers import make_scheduler
    sched = make_scheduler("euler")
    sched.set_timesteps(3)
    x_states = [first * sched.init_noise_sigma] + states[:-1]
    doubled = EncodedBatch(**{**vars(batch), **{k: torch.cat([getattr(batch, k)] * 2) for k in (
        "latents", "endpoint_latents", "aug_sigma", "image_embeddings", "fps", "motion_bucket")}})
    for step, (args, kwargs) in enumerate(calls):
        # the trainer's network call at the pipeline's x_σ and σ, dropout = [uncond, cond]
        sigma = sched.sigmas[step].repeat(2)
        x_sigma = x_states[step].repeat(2, 1, 1, 1, 1)
        draw = StepNoise(sigma, torch.zeros_like(x_sigma), torch.tensor([True, False]),
                         torch.tensor([True, False]))
        denoiser = FramerDenoiser(micro_parts["unet"])
        trainer_calls, handle = capture_unet_calls(micro_pipe)
        try:
            with torch.no_grad():
                denoiser(x_sigma, sigma, training_conditioning(denoiser, doubled, draw))
        finally:
            handle.remove()
        (x, t, tokens, ids), (x_pipe, t_pipe, tokens_pipe, ids_pipe) = \
            trainer_calls[0][0][:4], args[:4]
        assert torch.equal(x, x_pipe), step  # [uncond, cond], bit for bit
        assert torch.equal(tokens, tokens_pipe)
        assert torch.equal(ids, ids_pipe)
        assert torch.equal(t, torch.as_tensor(t_pipe).expand(2)), step  # c_noise, exactly


def test_loss_is_the_v_objective_computed_from_the_formulas(micro_parts):
    g = torch.Generator().manual_seed(0)
    b, f = 2, 5
    batch = EncodedBatch(latents=torch.randn(b, f, 4, 8, 8, generator=g),
                         endpoint_latents=torch.randn(b, 2, 4, 8, 8, generator=g),
                         aug_sigma=torch.tensor([0.02, 0.07]),
                         image_embeddings=torch.randn(b, 2, 32, generator=g),
                         fps=torch.tensor([7.0, 12.0]), motion_bucket=torch.tensor([100.0, 30.0]))
    draw = StepNoise.draw(batch.latents, torch.Generator().manual_seed(1), 0.7, 1.6, 0.1)
    unet = micro_parts["unet"]
    with torch.no_grad():
        out = predict(FramerDenoiser(unet), batch, draw).output
        loss = diffusion_loss(out, batch, draw)
    # independent: x = x0 + σε; F_target = (ε − σx0)/√(σ²+1); loss = mean (F − F_target)²
    s = draw.sigma.view(b, 1, 1, 1, 1)
    target = (draw.noise - s * batch.latents) / torch.sqrt(s**2 + 1)
    expected = ((out - target) ** 2).mean(dim=(1, 2, 3, 4))
    assert torch.allclose(loss, expected, rtol=1e-5, atol=1e-7)
    # EDM form: λ(σ)·‖D − x0‖² with D = c_skip·x + c_out·F
    x = batch.latents + s * draw.noise
    d = x / (s**2 + 1) - s / torch.sqrt(s**2 + 1) * out
    edm_form = ((s**2 + 1) / s**2 * (d - batch.latents) ** 2).mean(dim=(1, 2, 3, 4))
    assert torch.allclose(loss, edm_form, rtol=1e-3, atol=1e-5)
    # a model that outputs the v-target has zero loss
    assert float(diffusion_loss(target, batch, draw).abs().max()) < 1e-12
    # middle-frames option ignores the endpoints
    assert torch.allclose(diffusion_loss(out, batch, draw, "middle"),
                          ((out - target) ** 2)[:, 1:-1].mean(dim=(1, 2, 3, 4)), rtol=1e-5)


def test_training_step_uses_the_sampled_sigma_and_c_noise(micro_parts):
    g = torch.Generator().manual_seed(3)
    batch = EncodedBatch(latents=torch.randn(1, 5, 4, 8, 8, generator=g),
                         endpoint_latents=torch.randn(1, 2, 4, 8, 8, generator=g),
                         aug_sigma=torch.tensor([0.05]), image_embeddings=torch.ones(1, 2, 32),
                         fps=torch.tensor([8.0]), motion_bucket=torch.tensor([60.0]))
    draw = StepNoise(torch.tensor([2.5]), torch.randn(1, 5, 4, 8, 8, generator=g),
                     torch.tensor([True]), torch.tensor([False]))
    unet = micro_parts["unet"]
    seen = []
    handle = unet.register_forward_pre_hook(lambda m, a, k: seen.append(a), with_kwargs=True)
    try:
        with torch.no_grad():
            out = predict(FramerDenoiser(unet), batch, draw)
    finally:
        handle.remove()
    x, t, tokens, ids = seen[0][:4]
    x_sigma = batch.latents + 2.5 * draw.noise
    assert torch.allclose(x[:, :, :4], x_sigma / (2.5**2 + 1) ** 0.5)
    assert torch.allclose(t, torch.tensor([0.25 * torch.log(torch.tensor(2.5))]))
    assert float(tokens.abs().max()) == 0  # tokens dropped
    assert torch.equal(x[:, 0, 4:8], batch.endpoint_latents[:, 0])  # endpoints kept
    assert torch.allclose(ids, torch.tensor([[7.0, 60.0, 0.05]]))
    # D(x_σ) = c_skip·x_σ + c_out·F
    expect = x_sigma / (2.5**2 + 1) - 2.5 / (2.5**2 + 1) ** 0.5 * out.output
    assert torch.allclose(out.denoised, expect, atol=1e-6)
    cond = training_conditioning(FramerDenoiser(unet), batch, draw)
    assert float(cond.image_embeddings.abs().max()) == 0


def test_dropout_probabilities_follow_the_svd_xtend_scheme():
    lat = torch.zeros(20000, 1)
    d = StepNoise.draw(lat, torch.Generator().manual_seed(0), 0.7, 1.6, 0.1)
    assert abs(d.drop_tokens.float().mean() - 0.2) < 0.01
    assert abs(d.drop_endpoints.float().mean() - 0.2) < 0.01
    assert abs((d.drop_tokens & d.drop_endpoints).float().mean() - 0.1) < 0.01
    assert float(edm.c_noise(torch.tensor(1.0))) == 0.0


def test_still_clips_hold_the_start_frame_and_leave_other_draws_unchanged():
    lat = torch.randn(6, 5, 4, 2, 2)
    plain = StepNoise.draw(lat, torch.Generator().manual_seed(3), 0.7, 1.6, 0.1)
    held = StepNoise.draw(lat, torch.Generator().manual_seed(3), 0.7, 1.6, 0.1, still_clips=0.5)
    assert plain.still is None  # a run without still clips draws exactly as before
    for a, b in ((plain.sigma, held.sigma), (plain.noise, held.noise),
                 (plain.drop_tokens, held.drop_tokens)):
        assert torch.equal(a, b)
    which = torch.tensor([True, False, True, False, False, True])
    batch = EncodedBatch(latents=lat, endpoint_latents=torch.randn(6, 2, 4, 2, 2),
                         aug_sigma=torch.rand(6), image_embeddings=torch.randn(6, 2, 8),
                         fps=torch.full((6,), 7.0), motion_bucket=torch.full((6,), 100.0),
                         heatmaps=torch.rand(6, 5, 3, 8, 8))
    out = hold_still(batch, which)
    for name in ("latents", "endpoint_latents", "image_embeddings", "heatmaps"):
        x, y = getattr(batch, name), getattr(out, name)
        for b in range(6):
            expected = x[b, :1].expand_as(x[b]) if which[b] else x[b]
            assert torch.equal(y[b], expected), (name, b)
    assert torch.equal(out.aug_sigma, batch.aug_sigma)
    assert hold_still(batch, None) is batch
    rate = StepNoise.draw(torch.zeros(20000, 1), torch.Generator().manual_seed(0), 0.7, 1.6,
                          0.1, still_clips=0.2).still.float().mean()
    assert abs(float(rate) - 0.2) < 0.01
