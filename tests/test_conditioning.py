"""Conditioning recipe: layout of the conditioning video, the unconditional branch, time ids,
CLIP preprocessing and the unscaled, pixel-augmented endpoint latents."""

from __future__ import annotations

import pytest
import torch

from framerturbo.denoising import conditioning as C
from framerturbo.denoising import encoding as E
from framerturbo.models.configs import CLIP_MEAN, CLIP_STD


def test_cond_video_layout():
    start, end = torch.full((2, 4, 3, 3), 1.0), torch.full((2, 4, 3, 3), 2.0)
    token = torch.arange(4.0).reshape(1, 1, 4, 1, 1)
    video = C.build_cond_video(start, end, token, 6)
    assert video.shape == (2, 6, 5, 3, 3)
    assert torch.equal(video[:, 0, :4], start) and torch.equal(video[:, -1, :4], end)
    for f in range(1, 5):
        assert torch.equal(video[:, f, :4], token[0, 0].expand(2, 4, 3, 3))
    assert video[:, :, 4, 0, 0].tolist() == [[0, 1, 1, 1, 1, 0]] * 2
    with pytest.raises(ValueError, match="at least 3"):
        C.build_cond_video(start, end, token, 2)


def test_drop_is_the_unconditional_branch_and_keeps_mask_tokens():
    video = C.build_cond_video(torch.ones(2, 4, 2, 2), torch.ones(2, 4, 2, 2),
                               torch.full((1, 1, 4, 1, 1), 7.0), 4)
    cond = C.FramerConditioning(torch.ones(2, 2, 8), video, torch.ones(2, 3))
    uncond = cond.drop()
    assert float(uncond.image_embeddings.abs().max()) == 0
    assert float(uncond.cond_video[:, [0, -1], :4].abs().max()) == 0
    assert torch.equal(uncond.cond_video[:, 1:-1], video[:, 1:-1])  # mask tokens kept
    assert torch.equal(uncond.cond_video[:, :, 4], video[:, :, 4])  # mask channel kept
    assert torch.equal(uncond.added_time_ids, cond.added_time_ids)
    partial = cond.drop(tokens=torch.tensor([True, False]), endpoints=torch.tensor([False, True]))
    assert float(partial.image_embeddings[0].abs().max()) == 0
    assert torch.equal(partial.image_embeddings[1], cond.image_embeddings[1])
    assert torch.equal(partial.cond_video[0], video[0])
    assert float(partial.cond_video[1, [0, -1], :4].abs().max()) == 0


def test_time_ids_use_fps_minus_one():
    ids = C.make_time_ids(7, 100, torch.tensor([0.02, 0.05]), 2)
    assert torch.allclose(ids, torch.tensor([[6, 100, 0.02], [6, 100, 0.05]]))


def test_clip_preprocessing_normalises_a_flat_image():
    img = torch.full((1, 3, 100, 60), 0.2)  # [-1, 1] pixels
    px = E.clip_pixel_values(img)
    assert px.shape == (1, 3, 224, 224)
    expected = (torch.tensor(0.6) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(px[0, :, 50, 50], expected, atol=1e-4)


def test_endpoint_latents_are_unscaled_mode_of_pixel_augmented_frames(micro_parts):
    vae = micro_parts["vae"]
    g = torch.Generator().manual_seed(0)
    start, end = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1, torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    noise = (torch.randn(1, 3, 64, 64, generator=g), torch.randn(1, 3, 64, 64, generator=g))
    endpoints = E.encode_endpoints(vae, micro_parts["image_encoder"], start, end, 0.1, noise)
    cond = C.assemble(endpoints, micro_parts["unet"].mask_token, 5, fps=7, motion_bucket_id=100)
    with torch.no_grad():
        expect_start = vae.encode(start + 0.1 * noise[0]).latent_dist.mode()
        expect_end = vae.encode(end + 0.1 * noise[1]).latent_dist.mode()
    assert torch.allclose(cond.cond_video[:, 0, :4], expect_start, atol=1e-5)
    assert torch.allclose(cond.cond_video[:, -1, :4], expect_end, atol=1e-5)
    assert torch.allclose(cond.added_time_ids, torch.tensor([[6.0, 100.0, 0.1]]))
    assert cond.image_embeddings.shape == (1, 2, 32)
    with torch.no_grad():
        tokens = micro_parts["image_encoder"](E.clip_pixel_values(start)).image_embeds
    assert torch.allclose(cond.image_embeddings[:, 0], tokens, atol=1e-5)
