"""FramerPipeline behaviour on the micro model: reproducibility, CFG on/off, trajectories,
autopilot re-rasterisation and fallback, batching, guidance ramps, input validation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import textured_image
from framerturbo.sampling.pipeline import guidance_weights
from framerturbo.core.tracks import TrackSet, Track

START = textured_image(64, seed=3)
END = textured_image(64, seed=3, shift=(5, 2))
RUN = dict(num_frames=5, height=64, width=64, num_inference_steps=3, output_type="np")


def run(pipe, seed=0, start=START, end=END, **kw):
    return pipe(start, end, generator=torch.Generator().manual_seed(seed), **{**RUN, **kw})


def test_same_seed_same_frames_different_seed_differs(micro_pipe):
    a, b, c = run(micro_pipe, 0), run(micro_pipe, 0), run(micro_pipe, 1)
    assert a.frames.shape == (1, 5, 64, 64, 3)
    assert np.array_equal(a.frames, b.frames)
    assert np.abs(a.frames - c.frames).max() > 1e-3


def test_cfg_off_runs_and_differs_from_cfg_on(micro_pipe):
    off = run(micro_pipe, min_guidance_scale=1.0, max_guidance_scale=1.0)
    on = run(micro_pipe)
    assert np.isfinite(off.frames).all()
    assert np.abs(off.frames - on.frames).max() > 1e-4


def test_tracks_change_the_output_and_both_track_forms_agree(micro_pipe):
    base = run(micro_pipe)
    arr = np.stack([np.linspace([10, 10], [50, 40], 5), np.linspace([40, 50], [20, 20], 5)], 1)
    with_tracks = run(micro_pipe, tracks=arr)
    assert np.abs(with_tracks.frames - base.frames).max() > 1e-3
    # the same tracks as a TrackSet in a 2x larger source frame, rescaled to 64x64
    ts = TrackSet([Track(np.array([[20.0, 20.0], [100.0, 80.0]])),
                   Track(np.array([[80.0, 100.0], [40.0, 40.0]]))], image_size=(128, 128))
    assert np.array_equal(run(micro_pipe, tracks=ts).frames, with_tracks.frames)
    assert np.allclose(with_tracks.tracks[0], arr)


def test_control_step_range_and_scale_zero(micro_pipe):
    arr = np.stack([np.linspace([10, 10], [50, 40], 5)], 1)
    base = run(micro_pipe)
    assert np.allclose(run(micro_pipe, tracks=arr, control_scale=0.0).frames, base.frames,
                       atol=1e-6)
    assert np.allclose(run(micro_pipe, tracks=arr, control_step_range=(0.0, 0.0)).frames,
                       base.frames, atol=1e-6)


def test_autopilot_rerasterises_heatmaps_every_step(micro_pipe):
    seen = []  # the heat-maps the ControlNet is actually given, step by step
    handle = micro_pipe.controlnet.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["controlnet_cond"].clone()), with_kwargs=True)
    try:
        out = run(micro_pipe, start=textured_image(128, seed=1),
                  end=textured_image(128, seed=1, shift=(6, 3)), height=128, width=128,
                  num_inference_steps=4, autopilot=True, autopilot_consistency_px=1e9)
    finally:
        handle.remove()
    assert len(seen) == 4 and seen[0].shape == (2, 5, 3, 128, 128)  # CFG: both halves
    assert float(seen[0].max()) == 255.0
    assert torch.equal(seen[0][0], seen[0][1])  # trajectories are not dropped for uncond
    assert any(not torch.equal(seen[i], seen[i + 1]) for i in range(3))
    assert out.tracks[0] is not None and out.tracks[0].shape[0] == 5


def test_autopilot_without_matches_falls_back_to_no_control(micro_pipe):
    flat_a = np.full((64, 64, 3), 100, np.uint8)
    flat_b = np.full((64, 64, 3), 160, np.uint8)
    with pytest.warns(UserWarning, match="no matches"):
        auto = run(micro_pipe, start=flat_a, end=flat_b, autopilot=True)
    plain = run(micro_pipe, start=flat_a, end=flat_b)
    assert np.array_equal(auto.frames, plain.frames)
    assert auto.tracks == [None]


def test_batch_of_two_equals_two_single_runs(micro_parts):
    """Checked in float64, where a batch equals single runs to ~1e-9; in fp32 the random micro
    model's 3-step trajectory amplifies kernel reordering (1e-4 in one UNet call) to ~1e-2.
    The batch mix-up of diffusers < 0.28 differed by ~0.3 in a single UNet call."""
    from framerturbo.sampling.pipeline import FramerPipeline

    pipe = FramerPipeline(**{k: copy.deepcopy(v).double() if isinstance(v, torch.nn.Module)
                             else v for k, v in micro_parts.items()})
    pipe.set_progress_bar_config(disable=True)
    other = textured_image(64, seed=9)
    gens = [torch.Generator().manual_seed(s) for s in (11, 12)]
    batch = pipe([START, other], [END, START], generator=gens, **RUN)
    one = pipe(START, END, generator=torch.Generator().manual_seed(11), **RUN)
    two = pipe(other, START, generator=torch.Generator().manual_seed(12), **RUN)
    assert batch.frames.shape[0] == 2
    assert np.abs(batch.frames[0] - one.frames[0]).max() < 1e-6
    assert np.abs(batch.frames[1] - two.frames[0]).max() < 1e-6
    # nothing leaks between batch elements: changing video 2 leaves video 1 bit-identical
    gens = [torch.Generator().manual_seed(s) for s in (11, 13)]
    changed = pipe([START, END], [END, other], generator=gens, **RUN)
    assert np.array_equal(changed.frames[0], batch.frames[0])


def test_output_types(micro_pipe):
    pil = run(micro_pipe, output_type="pil").frames
    assert len(pil) == 1 and len(pil[0]) == 5 and pil[0][0].size == (64, 64)
    pt = run(micro_pipe, output_type="pt").frames
    assert pt.shape == (1, 5, 3, 64, 64) and 0 <= float(pt.min()) and float(pt.max()) <= 1
    assert np.allclose(pt.permute(0, 1, 3, 4, 2).numpy(), run(micro_pipe).frames)


def test_dpmpp_sampler_runs_reproducibly_and_is_not_euler(micro_pipe):
    """End to end only; each dpm++ step is pinned to an independent DPM-Solver++(2M) in
    tests/test_sampling_contract.py."""
    out = run(micro_pipe, sampler="dpm++", num_inference_steps=4)
    assert np.isfinite(out.frames).all()
    again = run(micro_pipe, sampler="dpm++", num_inference_steps=4)
    assert np.array_equal(out.frames, again.frames)
    euler = run(micro_pipe, sampler="euler", num_inference_steps=4)
    assert np.abs(out.frames - euler.frames).max() > 1e-3


def test_tensor_and_resized_inputs(micro_pipe):
    t = torch.from_numpy(START).permute(2, 0, 1).float() / 255
    assert np.array_equal(run(micro_pipe, start=t).frames, run(micro_pipe).frames)
    big = textured_image(128, seed=3)
    assert run(micro_pipe, start=big).frames.shape == (1, 5, 64, 64, 3)


def test_a_stretched_endpoint_is_said_and_a_framed_one_is_not(micro_pipe):
    """Left to its default resize, the API stretches an image of another aspect (as diffusers'
    pipelines do) but says so, naming the fix; the same image framed by frame_pair (what
    interpolate does) passes quietly."""
    import warnings

    from framerturbo.sampling.framing import StretchWarning, frame_pair
    from framerturbo.sampling.pipeline import stretched

    wide = textured_image(96, seed=3)[:64]  # 96×64
    with pytest.warns(StretchWarning, match=r"96x64 are stretched to 64x64.*resize='pad'") as said:
        run(micro_pipe, start=wide, end=wide, num_inference_steps=1)
    said = [w for w in said if w.category is StretchWarning]
    assert len(said) == 1 and said[0].filename == __file__  # once per call, at the caller's line
    framed = frame_pair(wide, wide, None, 64, 64, "pad")
    with warnings.catch_warnings():
        warnings.simplefilter("error", StretchWarning)
        run(micro_pipe, start=framed.start, end=framed.end, num_inference_steps=1)
        run(micro_pipe, start=textured_image(128, seed=3), num_inference_steps=1)
    # rounding a canvas to whole pixels is not a stretch; 2 % is
    assert not stretched(451, 451, 64, 64) and not stretched(301, 481, 320, 512)
    assert stretched(300, 451, 64, 64) and stretched(100, 103, 64, 64)


def test_resize_frames_the_pair_as_interpolate_does(micro_pipe):
    """resize="pad"/"crop" give what frame_pair + the pipeline + the canvas's content give (the
    CLI's path): a 96×64 pair letterboxed comes back 64×43 with its tracks moved and shifted
    into the picture; "squash" is the plain stretch without a warning; a batch of two aspects
    comes back per video; tracks as arrays have no picture to move with."""
    import warnings

    from framerturbo.sampling.framing import StretchWarning, frame_pair

    wide = textured_image(96, seed=3)[:64]  # 96×64
    tall = np.ascontiguousarray(textured_image(96, seed=4)[:, :48])  # 48×96
    moving = TrackSet([Track(np.array([[20.0, 30.0], [60.0, 34.0]]))], (96, 64))
    fast = dict(num_inference_steps=2)
    for mode in ("pad", "crop"):
        framed = frame_pair(wide, wide, moving, 64, 64, mode)
        by_hand = run(micro_pipe, start=framed.start, end=framed.end, tracks=framed.tracks,
                      **fast)
        frames = framed.canvas.content(by_hand.frames[0])
        out = run(micro_pipe, start=wide, end=wide, tracks=moving, resize=mode, **fast)
        assert out.frames.shape == (1, 5, *frames.shape[1:])
        assert np.array_equal(out.frames[0], frames)
        top, left = framed.canvas.content_box(64, 64)[:2]
        assert np.allclose(out.tracks[0], by_hand.tracks[0] - [left, top])
    assert out.frames.shape[2:4] == (64, 64)  # crop fills the frame
    assert run(micro_pipe, start=wide, end=wide, resize="pad", **fast).frames.shape == (
        1, 5, 43, 64, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StretchWarning)
        squashed = run(micro_pipe, start=wide, end=wide, resize="squash", **fast)
    with pytest.warns(StretchWarning):
        stretched = run(micro_pipe, start=wide, end=wide, **fast)
    assert np.array_equal(squashed.frames, stretched.frames)
    both = micro_pipe([wide, tall], [wide, tall], resize="pad", **(RUN | fast)).frames
    assert [v.shape for v in both] == [(5, 43, 64, 3), (5, 64, 32, 3)]
    with pytest.raises(ValueError, match="TrackSets in the images' pixels"):
        run(micro_pipe, start=wide, end=wide, resize="pad", tracks=np.zeros((5, 1, 2)))
    with pytest.raises(ValueError, match="resize must be"):
        run(micro_pipe, resize="stretch")


@pytest.mark.parametrize("kw,match", [
    (dict(height=60), "multiples of 64"),
    (dict(sampler="lcm"), "unknown sampler"),
    (dict(tracks=np.zeros((3, 1, 2))), "num_frames=5"),
    (dict(tracks=np.zeros((5, 1, 2)), autopilot=True), "either tracks or autopilot"),
    (dict(num_frames=2), "at least 3"),
    (dict(tracks=np.full((5, 1, 2), np.nan)), "finite pixel positions"),  # ran before
    (dict(fps=0), "fps must be > 0"),  # conditioned the model on fps − 1 = −1 before
    (dict(motion_bucket_id=-5), "motion_bucket_id >= 0"),
])
def test_bad_arguments(micro_pipe, kw, match):
    with pytest.raises(ValueError, match=match):
        run(micro_pipe, **kw)


def test_a_generator_list_must_match_the_batch(micro_pipe):
    """Three generators for one video ran (two were ignored); now it is one clear error."""
    with pytest.raises(ValueError, match="3 generators for a batch of 1"):
        micro_pipe(START, END, generator=[torch.Generator()] * 3, **RUN)


def test_guidance_ramps():
    assert torch.allclose(guidance_weights(1.0, 3.0, 5), torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]))
    w = guidance_weights(1.0, 3.0, 14, middle_max=True)
    assert w[0] == pytest.approx(1.0769, abs=1e-3) and w[6] == pytest.approx(2.923, abs=1e-3)
    assert torch.allclose(w, w.flip(0), atol=1e-6)


def test_decode_is_the_vaes_own_per_video_and_chunk(micro_pipe):
    """The decode's memory layout (channels-last on a CPU) and chunking change no pixel beyond
    float rounding: each chunk is the VAE's plain decode of those frames."""
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 5, 4, 8, 8, generator=g)
    out = micro_pipe.decode_latents(latents, chunk=3)
    vae, scale = micro_pipe.vae, micro_pipe.vae.config.scaling_factor
    with torch.no_grad():
        for b in range(2):
            for i in (0, 3):
                z = (latents[b, i:i + 3] / scale).contiguous()
                plain = vae.decode(z, num_frames=len(z)).sample
                want = ((plain + 1) / 2).clamp(0, 1)
                assert torch.allclose(out[b, i:i + 3], want, atol=1e-5)


def test_decode_dtype_runs_the_vae_decode_in_bf16_and_nothing_else(micro_pipe, monkeypatch):
    """``decode_dtype`` (what ``--dtype auto`` picks on a CPU with native bf16) runs the decoder's
    convolutions in bf16 under autocast and returns frames within a few levels of the fp32
    decode; the UNet's inputs are untouched, and None decodes exactly as before."""
    seen = []
    conv = micro_pipe.vae.decoder.conv_in
    hook = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    latents = torch.randn(1, 5, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    try:
        plain = micro_pipe.decode_latents(latents, chunk=5)
        monkeypatch.setattr(micro_pipe, "decode_dtype", torch.bfloat16)
        fast = micro_pipe.decode_latents(latents, chunk=5)
    finally:
        hook.remove()
    assert seen == [torch.float32, torch.bfloat16]
    assert fast.dtype == torch.float32 and not torch.equal(fast, plain)
    assert (fast - plain).abs().max() < 8 / 255  # random weights; the trained decode: 1.8/255


def test_cpu_decode_dtype_only_for_auto_on_a_bf16_cpu(monkeypatch):
    from framerturbo.models.loading import cpu_decode_dtype

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert cpu_decode_dtype("auto", torch.device("cpu")) == torch.bfloat16
    assert cpu_decode_dtype("fp32", torch.device("cpu")) is None  # an explicit fp32 is kept
    assert cpu_decode_dtype(torch.float32, torch.device("cpu")) is None
    assert cpu_decode_dtype("auto", torch.device("cuda")) is None
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert cpu_decode_dtype("auto", torch.device("cpu")) is None  # emulated bf16 is slower
