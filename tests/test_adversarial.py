"""The adversarial refinement of the turbo distillation (train/adversarial.py): the discriminator
reads the frozen base's encoder, its losses equal hand computations, the student's loss is the
consistency loss plus λ times the generator term (and exactly the consistency loss at λ = 0),
the heads learn to tell real latents from generated ones, and a run resumes bit-exactly."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_distill import FRAMES, distill_config, fresh_unet, random_batch, run_config

from framerturbo.core.config import ConfigError
from framerturbo.denoising import conditioning as C
from framerturbo.denoising.denoiser import FramerDenoiser
from framerturbo.train.adversarial import (
    Adversary,
    AdversarialDraw,
    feature_channels,
    hinge_discriminator,
    hinge_generator,
    level_features,
    r1_penalty,
)
from framerturbo.train.consistency import ConsistencyObjective


class OneProcess:
    num_processes = 1


def objective(unet, *extra):
    cfg = distill_config("distill.num_sigmas=8", *extra)
    lora = {n: p for n, p in unet.named_parameters() if p.requires_grad}
    return ConsistencyObjective(cfg, FramerDenoiser(unet), unet, None, lora), lora


def conditioning(unet, batch):
    return C.assemble(batch.endpoints, unet.mask_token, FRAMES, batch.fps, batch.motion_bucket)


def test_features_are_the_frozen_base_encoders_one_map_per_level():
    unet, base = fresh_unet(lora_rank=4), fresh_unet()
    batch = random_batch()
    sigma = torch.tensor([0.5, 3.0])
    adversary = Adversary(distill_config("distill.adversarial_weight=1"), unet, 0, "cpu")
    zeros = torch.zeros_like(batch.latents)
    draw = AdversarialDraw(sigma, torch.randn_like(batch.latents), zeros, zeros)
    with torch.no_grad():
        got = adversary.features(batch.latents, draw, conditioning(unet, batch))
        want = level_features(base, batch.latents + sigma[:, None, None, None, None] * draw.noise,
                              sigma, conditioning(base, batch))
        with_lora = level_features(unet, batch.latents + sigma[:, None, None, None, None]
                                   * draw.noise, sigma, conditioning(unet, batch))
    assert [f.shape[2] for f in got] == feature_channels(base) == [32, 32, 64, 64, 64]
    assert [f.shape[-1] for f in got] == [16, 8, 4, 2, 2]  # one map per resolution + mid
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, want))  # LoRA off
    assert not all(torch.allclose(a, b, atol=1e-5) for a, b in zip(with_lora, want))


def test_losses_equal_hand_computations():
    real = [torch.tensor([[2.0, 0.5], [-1.0, 0.0]]), torch.tensor([[1.0], [3.0]])]
    fake = [torch.tensor([[-2.0, 0.5], [1.0, -0.5]]), torch.tensor([[0.0], [-4.0]])]
    # sample 0: head 1 (0 + .5 + 0 + 1.5)/2 = 1.0, head 2 0 + 1 = 1 → 1.0
    # sample 1: head 1 (2 + 1 + 2 + .5)/2 = 2.75, head 2 0 + 0 = 0 → 1.375
    assert torch.allclose(hinge_discriminator(real, fake), torch.tensor([1.0, 1.375]))
    # −mean D(fake): sample 0 −(−0.75 + 0)/2, sample 1 −(0.25 − 4)/2
    assert torch.allclose(hinge_generator(fake), torch.tensor([0.375, 1.875]))
    moved = [r + 0.5 for r in real]
    assert torch.allclose(r1_penalty(real, moved), torch.tensor([0.25, 0.25]))


def test_student_loss_is_consistency_plus_lambda_times_the_generator_term():
    torch.manual_seed(0)
    unet = fresh_unet(lora_rank=4)
    batch = random_batch()
    plain, _ = objective(unet)
    adv, _ = objective(unet, "distill.adversarial_weight=0.5")
    g = torch.Generator().manual_seed(3)
    d_plain = plain.draw(batch, torch.Generator().manual_seed(3))
    d_adv = adv.draw(batch, g)
    # the consistency draws are unchanged by the adversary's, which come after them
    assert torch.equal(d_plain.index, d_adv.index) and torch.equal(d_plain.noise, d_adv.noise)
    assert d_plain.adversarial is None and d_adv.adversarial is not None
    with torch.no_grad():
        consistency, _ = plain.loss(batch, d_plain)
        total, _ = adv.loss(batch, d_adv)
    parts = adv.metrics()
    assert parts["consistency"] == pytest.approx(float(consistency.mean()), rel=1e-5)
    assert float(total.mean()) == pytest.approx(
        parts["consistency"] + 0.5 * parts["adv/g_loss"], rel=1e-5)
    assert plain.metrics() == {} and plain.adversary is None


def test_on_max_the_discriminator_judges_the_students_one_step_sample():
    from framerturbo.core import edm

    torch.manual_seed(0)
    unet = fresh_unet(lora_rank=4)
    batch = random_batch()
    obj, lora = objective(unet, "distill.adversarial_weight=1", "distill.adversarial_on=max")
    draw = obj.draw(batch, torch.Generator().manual_seed(2))
    loss, _ = obj.loss(batch, draw)
    judged = obj.adversary.stash[0].fake
    sigma_max = torch.full((2,), 700.0)
    x = batch.latents + 700.0 * draw.adversarial.start
    with torch.no_grad():
        out = FramerDenoiser(unet)(x, sigma_max, conditioning(unet, batch)).output
    want = edm.consistency_denoised(x, out, sigma_max, 0.002)
    assert torch.allclose(judged, want, atol=1e-4)
    loss.mean().backward()  # the 1-step sample's term reaches the LoRA too
    assert any(float(p.grad.abs().sum()) > 0 for p in lora.values())


def test_generator_term_moves_the_lora_not_the_heads_and_the_heads_learn():
    torch.manual_seed(0)
    unet = fresh_unet(lora_rank=4)
    batch = random_batch()
    obj, lora = objective(unet, "distill.adversarial_weight=1", "distill.disc_lr=1e-2",
                          "distill.r1_weight=0")
    draw = obj.draw(batch, torch.Generator().manual_seed(1))
    loss, _ = obj.loss(batch, draw)
    loss.mean().backward()
    assert all(p.grad is None for p in obj.adversary.heads.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in lora.values())

    # the heads alone: real latents against a blurred copy, the same draws every step
    adversary = obj.adversary
    cond = conditioning(unet, batch)
    fake = torch.nn.functional.avg_pool2d(batch.latents.flatten(0, 1), 5, 1, 2
                                          ).reshape(batch.latents.shape)
    zeros = torch.zeros_like(batch.latents)
    adv_draw = AdversarialDraw(torch.full((2,), 0.1), zeros, zeros, zeros)
    frozen = {n: p.detach().clone() for n, p in unet.named_parameters()}
    losses = []
    for _ in range(30):
        adversary.keep(batch.latents, fake, cond, adv_draw)
        adversary.step(OneProcess())
        losses.append(adversary.last["adv/d_loss"])
    assert losses[-1] < 0.5 * losses[0], losses
    assert adversary.last["adv/d_real"] > adversary.last["adv/d_fake"]
    assert all(torch.equal(p, frozen[n]) for n, p in unet.named_parameters())  # heads only
    assert adversary.stash == []


def test_config_checks():
    for bad in ("distill.adversarial_weight=-1", "distill.r1_weight=-0.1"):
        with pytest.raises(ConfigError, match="adversarial_weight"):
            distill_config(bad)
    with pytest.raises(ConfigError, match="adversarial_on"):
        distill_config("distill.adversarial_on=sometimes")
    with pytest.raises(ConfigError, match="disc_lr"):
        distill_config("distill.adversarial_weight=1", "distill.disc_lr=0")
    assert distill_config().distill.adversarial_weight == 0  # off unless asked for


def test_the_draws_of_a_step_are_seeded():
    unet = fresh_unet(lora_rank=4)
    obj, _ = objective(unet, "distill.adversarial_weight=1")
    batch = random_batch()
    a = obj.draw(batch, torch.Generator().manual_seed(7)).adversarial
    b = obj.draw(batch, torch.Generator().manual_seed(7)).adversarial
    assert all(torch.equal(getattr(a, k), getattr(b, k))
               for k in ("sigma", "noise", "perturbation", "start"))


@pytest.mark.system  # 7 tiny distillation steps
def test_adversarial_distill_resumes_bit_exactly(shapes, tmp_path):
    from framerturbo.train.loop import train

    extra = ["train.max_steps=3", "train.checkpoint_every=1", "distill.adversarial_weight=1",
             "distill.disc_lr=1e-3", "train.lr=1e-3"]
    straight = train(run_config(shapes, tmp_path / "a", *extra))
    broken = tmp_path / "b"
    train(run_config(shapes, broken, *extra), stop_at_step=1)
    train(run_config(shapes, broken, *extra), resume="latest")
    rows = {run: [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
            for run in (straight, broken)}
    keys = ("loss", "consistency", "adv/g_loss", "adv/d_loss", "adv/d_real", "adv/d_fake")
    steps = {run: [(r["step"], *(r[k] for k in keys)) for r in rows[run] if "loss" in r]
             for run in rows}
    assert steps[broken] == steps[straight] and len(steps[straight]) == 3
    end = "checkpoints/step-00000003"
    for name in ("trainable.safetensors", "discriminator.safetensors"):
        a, b = load_file(straight / end / name), load_file(broken / end / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    info = json.loads((straight / "lora" / "turbo.json").read_text())
    assert info["adversarial"]["weight"] == 1.0

    # a checkpoint written without the discriminator cannot silently start a fresh one
    plain = tmp_path / "plain"
    train(run_config(shapes, plain, "train.max_steps=3", "train.checkpoint_every=1"),
          stop_at_step=1)
    with pytest.raises(ValueError, match="discriminator.safetensors"):
        train(run_config(shapes, plain, *extra), resume="latest")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from framerturbo.data.synthetic import write_dataset

    folder = tmp_path_factory.mktemp("shapes")
    write_dataset("shapes", 3, folder, num_frames=9, seed=1, progress=False)
    return folder
