"""The VAE stage of the micro recipe resumes exactly and records its curve."""

import json

import pytest
import torch

from framerturbo.cli.main import main
from framerturbo.models.vae import FramerVAE
from framerturbo.train import vae as vae_training


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    assert main(["synth", "--domain", "signer", "--n", "2", "--out", str(d / "a"),
                 "--num-frames", "9"]) == 0
    return d / "a"


def _run(clips, out, **kw):
    return vae_training.train_vae([str(clips)], out, steps=4, frames=3, batch=1, down_blocks=3,
                                  checkpoint_every=2, val_data=[str(clips)], val_clips=1,
                                  progress=False, **kw)


def test_vae_resumes_bit_exactly_after_a_crash(clips, tmp_path, monkeypatch):
    whole = _run(clips, tmp_path / "whole")
    real_step = vae_training._step

    def crash_at_3(vae, dataset, optimizer, step, *a):
        if step == 3:
            raise KeyboardInterrupt
        return real_step(vae, dataset, optimizer, step, *a)

    monkeypatch.setattr(vae_training, "_step", crash_at_3)
    with pytest.raises(KeyboardInterrupt):
        _run(clips, tmp_path / "cut")
    assert (tmp_path / "cut" / vae_training.STATE).exists()  # the step-2 checkpoint
    monkeypatch.setattr(vae_training, "_step", real_step)
    resumed = _run(clips, tmp_path / "cut")
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert not (tmp_path / "cut" / vae_training.STATE).exists()  # finished: no state left
    rows = [json.loads(r) for r in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4]  # one row per 50 steps or at the end, no repeats
    assert rows[0]["a/psnr"] > 0 and "a/ssim" in rows[0]
    again = FramerVAE.from_pretrained(tmp_path / "cut")
    assert again.config.scaling_factor == resumed.config.scaling_factor


def test_resume_with_other_step_count_is_one_clear_error(clips, tmp_path, monkeypatch):
    def fake_step(vae, dataset, optimizer, step, *rest):
        if step == 3:
            raise KeyboardInterrupt
        optimizer.step()  # no gradients, nothing moves; the schedule sees a stepped optimizer
        return 0.0

    monkeypatch.setattr(vae_training, "_step", fake_step)
    with pytest.raises(KeyboardInterrupt):
        _run(clips, tmp_path / "v")
    with pytest.raises(ValueError, match="--steps 4"):
        vae_training.train_vae([str(clips)], tmp_path / "v", steps=8, frames=3, batch=1,
                               down_blocks=3, progress=False)


def test_decoder_only_keeps_the_encoder_and_its_scaling_factor(clips, tmp_path):
    base = _run(clips, tmp_path / "base")
    tuned = _run(clips, tmp_path / "tuned", init=tmp_path / "base", decoder_only=True)
    before, after = base.state_dict(), tuned.state_dict()
    kept = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    saved = FramerVAE.from_pretrained(tmp_path / "tuned")
    assert saved.config.scaling_factor == base.config.scaling_factor  # not recalibrated
    row = json.loads((tmp_path / "tuned" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["a/psnr"] > 0


def test_decoder_only_without_init_is_one_clear_error(clips, tmp_path):
    with pytest.raises(ValueError, match="--decoder-only needs --init"):
        _run(clips, tmp_path / "v", decoder_only=True)


@pytest.mark.parametrize("steps", [2, 3, 20])
def test_short_runs_train(clips, tmp_path, steps):
    """5 % warm-up of 20 steps has zero length, which OneCycleLR cannot divide by."""
    vae = vae_training.train_vae([str(clips)], tmp_path / "v", steps=steps, frames=3, batch=1,
                                 down_blocks=3, checkpoint_every=50, progress=False)
    assert (tmp_path / "v" / "config.json").exists() and vae.config.scaling_factor > 0
    with pytest.raises(ValueError, match="--steps must be at least 2"):
        vae_training.train_vae([str(clips)], tmp_path / "w", steps=1, progress=False)
