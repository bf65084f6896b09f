"""FramerPipeline: start frame + end frame (+ optional point trajectories) → the frames between.

A diffusers ``DiffusionPipeline``; the conditioning comes from ``conditioning.py`` (shared with the
trainer), the sampler from ``schedulers.py``, trajectories from ``tracks.py``/``autopilot.py``.
Fixed relative to the released pipeline: CFG can be switched off (max guidance ≤ 1), the generator
is honoured everywhere (latents, endpoint augmentation), a batch of N equals N single runs,
autopilot re-rasterises its refined tracks, and VAE decoding is chunked per video.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from ..core.tracks import TrackSet, match_sift, rasterize_heatmaps, resample_tracks, rescale_points
from ..denoising import conditioning as C
from ..denoising.denoiser import FramerDenoiser, combine_guidance
from ..denoising.encoding import encode_endpoints, pixels_from_uint8
from ..media.files import load_image
from ..models.adapters import FramerLoraLoaderMixin
from ..models.configs import CLIP_MEAN, CLIP_STD, size_step
from ..models.record import (AUTOPILOT_CONTROL_SCALE, RELEASED, ModelRecord,
                             check_control_scale, check_keep_static, read_record, sampling_choice)
from ..models.schedulers import (DEFAULT_STEPS, TURBO, UndistilledTurboWarning, canonical_name,
                                make_scheduler, sigma_range)
from .autopilot import AutopilotState, refine_tracks
from .framing import StretchWarning, frame_batch
from .keep_static import keep_static as keep_static_pixels

logger = logging.getLogger(__name__)


@dataclass
class FramerPipelineOutput(BaseOutput):
    frames: list | np.ndarray | torch.Tensor  # per video: F PIL images / (B,F,H,W,3) / (B,F,3,H,W)
    tracks: list[np.ndarray | None]  # final (F, K, 2) tracks per video, generation pixels


def guidance_weights(min_scale: float, max_scale: float, num_frames: int,
                     middle_max: bool = False) -> torch.Tensor:
    """Per-frame CFG weights: a linear ramp min→max, or (``middle_max``) the ramp mirrored and
    resampled so it peaks in the middle — SVD/Framer's scheme."""
    w = torch.linspace(min_scale, max_scale, num_frames, dtype=torch.float64)
    if middle_max:
        both = torch.cat([w, w.flip(0)])[None, None]
        w = F.interpolate(both, size=num_frames, mode="linear", align_corners=False)[0, 0]
    return w.float()


def _check_tensor(image: torch.Tensor) -> None:
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image tensors must be (3, H, W) in [0, 1], got {tuple(image.shape)}")


def _endpoint_array(image) -> np.ndarray:
    """One endpoint as an (h, w, 3) uint8 array. Accepts a path, PIL image, uint8 or [0, 1]
    float HWC array, or a float tensor (3, H, W) in [0, 1]."""
    if isinstance(image, torch.Tensor):
        _check_tensor(image)
        return (image.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if isinstance(image, (str, Path)):
        image = load_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"unsupported image type {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image arrays must be (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    # PIL's arrays are read-only; torch warns on those
    return image if image.flags.writeable else image.copy()


def _as_pixels(image) -> torch.Tensor:
    """One endpoint → (3, h, w) float in [−1, 1] at its own size (a float tensor as it is, not
    quantised)."""
    if isinstance(image, torch.Tensor):
        _check_tensor(image)
        return image.float() * 2 - 1
    return pixels_from_uint8(torch.from_numpy(_endpoint_array(image)).permute(2, 0, 1))


def _resized(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(3, h, w) → (3, height, width), antialiased bicubic (stretched if the aspect differs)."""
    if pixels.shape[1:] == (height, width):
        return pixels
    return F.interpolate(pixels[None], size=(height, width), mode="bicubic", antialias=True,
                         align_corners=False)[0].clamp(-1, 1)


def stretched(h: int, w: int, height: int, width: int) -> bool:
    """Whether resizing an (h, w) image to (height, width) changes its aspect by more than 1 %
    plus the half pixel a side that rounding a canvas of the model's aspect leaves."""
    return abs(w * height / (h * width) - 1) > 0.01 + 1 / min(h, w)


def _warn_if_stretched(pixels: list[torch.Tensor], height: int, width: int) -> None:
    sizes = sorted({tuple(p.shape[1:]) for p in pixels if stretched(*p.shape[1:], height, width)})
    if sizes:
        listed = ", ".join(f"{w}x{h}" for h, w in sizes)
        warnings.warn(StretchWarning(
            f"endpoint images of {listed} are stretched to {width}x{height}, another aspect; "
            "pass resize='pad' or 'crop' to keep theirs (as `interpolate --resize` does), or "
            "resize='squash' to stretch them without this warning"), stacklevel=4)


MATCH_MAX_SIDE = 1024  # autopilot's SIFT works on endpoints at most this large


def _match_view(image) -> np.ndarray:
    """An endpoint at its own resolution (long side ≤ MATCH_MAX_SIDE) as uint8 (H, W, 3), for
    autopilot's SIFT matching."""
    if isinstance(image, (str, Path)):
        image = load_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    elif isinstance(image, torch.Tensor):
        image = image.detach().float().permute(1, 2, 0).cpu().numpy()
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    scale = MATCH_MAX_SIDE / max(image.shape[:2])
    if scale < 1:
        import cv2

        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def _as_batch(images) -> list:
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        return list(images)
    return list(images) if isinstance(images, (list, tuple)) else [images]


class FramerPipeline(DiffusionPipeline, FramerLoraLoaderMixin):
    """Framer interpolation on stock diffusers components (see ``models.loading``); LoRAs
    through diffusers' pipeline API (``load_lora_weights``, ``set_adapters``, ``fuse_lora``),
    a turbo LoRA through ``load_turbo`` (then ``sampler="turbo"``, 4 steps)."""

    turbo_grid: dict | None = None  # the loaded turbo LoRA's distillation grid (load_turbo)
    model_source: str | None = None  # what from_framer loaded: where a shipped turbo LoRA lies
    # what that model was made for (models.record): the defaults of __call__; Framer's for a
    # pipeline built from parts
    record: ModelRecord = RELEASED
    # the dtype the VAE decodes in under autocast, None for its own: from_framer picks bf16 for
    # dtype "auto" on a CPU with native bf16 (models.loading.cpu_decode_dtype)
    decode_dtype: torch.dtype | None = None

    model_cpu_offload_seq = "image_encoder->controlnet->unet->vae"
    _optional_components = ["controlnet"]

    def __init__(self, vae, image_encoder, unet, scheduler, feature_extractor, controlnet=None):
        super().__init__()
        self.register_modules(vae=vae, image_encoder=image_encoder, unet=unet,
                              scheduler=scheduler, feature_extractor=feature_extractor,
                              controlnet=controlnet)

    @classmethod
    def from_framer(cls, model, svd=None, **kwargs) -> FramerPipeline:
        """Load from a Framer folder/Hub id (+ SVD-xt), see ``models.loading.load_components``."""
        from ..models.loading import cpu_decode_dtype, load_components

        pipe = cls(**load_components(model, svd, **kwargs))
        pipe.model_source, pipe.record = str(model), read_record(model)
        pipe.decode_dtype = cpu_decode_dtype(kwargs.get("dtype", "auto"), pipe.vae.device)
        return pipe

    @property
    def _execution_device(self) -> torch.device:
        """Where the denoising runs: the UNet's device, even when the VAE stays on the CPU
        (``levers.apply_offload(pipe, "vae")``); diffusers' own rule under model offload."""
        if getattr(self.unet, "_hf_hook", None) is not None:
            return super()._execution_device
        return self.unet.device

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Pixel sizes must divide into the UNet's downsampling: 64 for the released layout."""
        return size_step(len(self.vae.config.block_out_channels),
                         len(self.unet.config.block_out_channels))

    def check_size(self, height: int, width: int) -> None:
        multiple = self.size_multiple
        if height <= 0 or width <= 0 or height % multiple or width % multiple:
            raise ValueError(f"height and width must be positive multiples of {multiple}, got "
                             f"{width}x{height}")

    def fuse_adapters(self) -> dict[str, float]:
        """Fold the active LoRAs (domain and turbo, at their scales) into the UNet's weights and
        drop the adapter layers; returns what was fused. An unfused LoRA costs two extra
        matmuls and a Python call per adapted layer at every step: on the micro model on a
        2-core CPU, turbo-4 took 0.62 s a clip unfused and 0.46 s fused (docs/performance.md).
        For one-shot jobs (``interpolate``, ``stitch``, ``batch``): afterwards adapters can no
        longer be switched."""
        from ..models.adapters import active_weights

        weights = active_weights(self.unet)
        if weights:
            self.fuse_lora(components=["unet"], lora_scale=1.0, adapter_names=list(weights))
            self.unload_lora_weights()
        return weights

    def _clip_stats(self):
        fe = self.feature_extractor
        return (getattr(fe, "image_mean", None) or CLIP_MEAN,
                getattr(fe, "image_std", None) or CLIP_STD)

    def condition(self, start_px: torch.Tensor, end_px: torch.Tensor, aug_noise, *,
                  num_frames: int, fps, motion_bucket_id, noise_aug_strength: float = 0.02
                  ) -> C.FramerConditioning:
        """The conditional branch a call samples with: endpoints (B, 3, H, W) in [−1, 1],
        noise-augmented by ``noise_aug_strength``·``aug_noise`` (start, end), encoded and
        assembled with the mask tokens and the time ids."""
        mean, std = self._clip_stats()
        endpoints = encode_endpoints(self.vae, self.image_encoder, start_px, end_px,
                                     noise_aug_strength, aug_noise, mean, std)
        return C.assemble(endpoints, self.unet.mask_token, num_frames, fps, motion_bucket_id)

    @torch.inference_mode()
    def __call__(self, start, end, *, num_frames: int | None = None, height: int | None = None,
                 width: int | None = None, num_inference_steps: int | None = None,
                 sampler: str | None = None, min_guidance_scale: float | None = None,
                 max_guidance_scale: float | None = None, middle_max_guidance: bool = False,
                 fps: float | None = None, motion_bucket_id: int | None = None,
                 noise_aug_strength: float = 0.02, tracks=None, autopilot: bool = False,
                 control_scale: float | None = None,
                 control_step_range: tuple[float, float] = (0.0, 1.0),
                 autopilot_search_radius: int = 5, autopilot_consistency_px: float = 2.0,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 latents: torch.Tensor | None = None, decode_chunk_size: int | None = None,
                 keep_static: float | None = None, resize: str | None = None,
                 output_type: str = "pil", callback_on_step_end=None) -> FramerPipelineOutput:
        """Interpolate between ``start`` and ``end`` (one each, or lists for a batch).

        Every size, conditioning and sampling argument left as None is the model's own
        (:attr:`record`: its ``framerturbo.json``, as the CLI reads it; Framer's 512×320 × 14,
        fps 7, motion bucket 100, euler 30 with the 1 → 3 guidance ramp for the released
        weights or a pipeline not made by ``from_framer``).

        ``tracks``: a :class:`TrackSet` (points in its ``image_size`` frame, else in generation
        pixels), an (F, K, 2) array in generation pixels, or a list of either per video.
        ``autopilot``: SIFT endpoints + straight tracks refined every step (needs a ControlNet).
        ``callback_on_step_end(pipe, step, timestep, info)`` receives the heat-maps in ``info``.
        ``sampler="turbo"`` (after ``load_turbo``): multistep consistency sampling, one network
        call per step; there is no CFG, so the guidance arguments are ignored (the turbo LoRA was
        distilled with the guidance folded in).
        ``keep_static`` τ: pixels both endpoints show unchanged and the sample draws as
        background come back as the endpoints' cross-fade (``keep_static.py``; 0: off).
        ``control_scale``: the ControlNet's strength; None: the record's for given tracks
        (1 for Framer, 2 for the micro model), Framer's 0.5 for autopilot's SIFT tracks.
        ``resize``: endpoints of another aspect than ``height``×``width`` are stretched to it and
        a :class:`StretchWarning` says so (None), or framed as ``interpolate --resize`` frames
        them (``framing.frame_pair``; an end of another size takes the start's): stretched
        (``"squash"``), centre-cropped (``"crop"``) or letterboxed (``"pad"``: the bars are cut
        off the frames and tracks it returns, so each video keeps its images' aspect — a batch
        of several aspects comes back as one item per video). With crop or pad, tracks are
        TrackSets in the images' pixels.

        Runs under ``torch.inference_mode`` (≈ 10 % faster than ``no_grad`` for the micro model on
        a CPU, where per-op overhead dominates); the returned tensors are ordinary ones.
        """
        record = self.record

        def given_or(value, default):
            return default if value is None else value

        num_frames = given_or(num_frames, record.num_frames)
        height, width = given_or(height, record.height), given_or(width, record.width)
        fps = given_or(fps, record.fps)
        motion_bucket_id = given_or(motion_bucket_id, record.motion_bucket)
        sampler, num_inference_steps = sampling_choice(record, sampler, num_inference_steps)
        min_guidance_scale = given_or(min_guidance_scale, record.guidance[0])
        max_guidance_scale = given_or(max_guidance_scale, record.guidance[1])
        keep_static = check_keep_static(given_or(keep_static, record.keep_static))
        control_scale = check_control_scale(given_or(
            control_scale, AUTOPILOT_CONTROL_SCALE if autopilot else record.control_scale))
        self.check_size(height, width)
        starts, ends = _as_batch(start), _as_batch(end)
        if len(starts) != len(ends):
            raise ValueError(f"got {len(starts)} start frames but {len(ends)} end frames")
        batch = len(starts)
        if isinstance(generator, list) and len(generator) != batch:
            raise ValueError(f"got {len(generator)} generators for a batch of {batch} videos: "
                             "give one generator, or one per video")
        if not fps > 0 or motion_bucket_id < 0:
            raise ValueError(f"fps must be > 0 and motion_bucket_id >= 0, got {fps} and "
                             f"{motion_bucket_id}")
        if resize not in (None, "squash", "crop", "pad"):
            raise ValueError(f"resize must be None, 'squash', 'crop' or 'pad', got {resize!r}")
        framed = None
        if resize is not None:  # as interpolate frames them (an end of another size included)
            framed = frame_batch([_endpoint_array(i) for i in starts],
                                 [_endpoint_array(i) for i in ends], tracks, height, width, resize)
            starts, ends = [f.start for f in framed], [f.end for f in framed]
            if tracks is not None and resize != "squash":
                tracks = [f.tracks for f in framed]
        device = self._execution_device
        start_px, end_px = ([_as_pixels(i) for i in images] for images in (starts, ends))
        if resize is None:
            _warn_if_stretched(start_px + end_px, height, width)
        start_px = torch.stack([_resized(p, height, width) for p in start_px]).to(device)
        end_px = torch.stack([_resized(p, height, width) for p in end_px]).to(device)

        turbo = canonical_name(sampler) == TURBO
        if turbo and self.turbo_grid is None:
            warnings.warn(UndistilledTurboWarning(
                "sampler='turbo' without a turbo LoRA samples the undistilled model in a few "
                "consistency steps (blurred frames); load one first with pipe.load_turbo() (no "
                "path: the one shipped with the model)"), stacklevel=3)
        scheduler = make_scheduler(sampler, *sigma_range(self.scheduler),
                                   turbo_grid=self.turbo_grid)
        if num_inference_steps is not None and num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        steps = num_inference_steps or DEFAULT_STEPS[canonical_name(sampler)]
        scheduler.set_timesteps(steps, device=device)

        # Random draws, per video from its own generator: latents, then endpoint augmentation.
        h, w = height // self.vae_scale_factor, width // self.vae_scale_factor
        # The sampler state stays fp32 (or fp64 when the whole model is) whatever the model dtype.
        # diffusers' .dtype/.device walk every module (≈ 3 ms each on the micro UNet): read once
        unet_dtype = self.unet.dtype
        state_dtype = torch.float64 if unet_dtype == torch.float64 else torch.float32
        if latents is None:
            latents = randn_tensor((batch, num_frames, 4, h, w), generator=generator,
                                   device=device, dtype=state_dtype)
        latents = latents.to(device=device, dtype=state_dtype) * scheduler.init_noise_sigma
        start_px, end_px = start_px.to(state_dtype), end_px.to(state_dtype)
        aug_noise = (randn_tensor(start_px.shape, generator=generator, device=device,
                                  dtype=state_dtype),
                     randn_tensor(end_px.shape, generator=generator, device=device,
                                  dtype=state_dtype))

        cond = self.condition(start_px, end_px, aug_noise, num_frames=num_frames, fps=fps,
                              motion_bucket_id=motion_bucket_id,
                              noise_aug_strength=noise_aug_strength)
        do_cfg = max_guidance_scale > 1.0 and not turbo
        weights = guidance_weights(min_guidance_scale, max_guidance_scale, num_frames,
                                   middle_max_guidance).to(device)[None, :, None, None, None]

        track_list = self._prepare_tracks(tracks, autopilot, starts, ends, num_frames,
                                          (width, height), batch)
        states = [AutopilotState.from_tracks(t) if autopilot and t is not None else None
                  for t in track_list]
        use_control = self.controlnet is not None and any(t is not None for t in track_list)
        heatmaps = (self._heatmaps(track_list, num_frames, height, width, device)
                    if use_control else None)

        denoiser = FramerDenoiser(self.unet, self.controlnet, dtype=unet_dtype)
        want_features = any(s is not None for s in states)
        lo, hi = control_step_range
        with self.progress_bar(total=steps) as progress:
            for i, t in enumerate(scheduler.timesteps):
                # the scheduler's timestep is edm.c_noise of its σ (tests pin it); the denoiser
                # derives it from σ, as the trainer does
                scheduler.is_scale_input_called = True
                step = denoiser(latents, scheduler.sigmas[i], cond,
                                heatmaps=heatmaps if use_control and lo <= i / steps < hi
                                else None, control_scale=control_scale,
                                guidance=weights if do_cfg else None,
                                return_features=want_features)
                if want_features:
                    heatmaps = self._autopilot_step(step.features, states, weights, do_cfg,
                                                    num_frames, (width, height),
                                                    autopilot_search_radius,
                                                    autopilot_consistency_px)
                # turbo re-noises with fresh ε from the call's generator(s), per video
                latents = scheduler.step(step.output, t, latents,
                                         **({"generator": generator} if turbo else {})
                                         ).prev_sample
                if callback_on_step_end is not None:
                    callback_on_step_end(self, i, t, {"heatmaps": heatmaps, "latents": latents})
                progress.update()

        frames = self.decode_latents(latents, decode_chunk_size or num_frames)
        frames = keep_static_pixels(frames, (start_px + 1) / 2, (end_px + 1) / 2, keep_static)
        final_tracks = [s.tracks.copy() if s is not None else t for s, t in zip(states, track_list)]
        if resize == "pad":  # each video's picture, without the bars
            boxes = [f.canvas.content_box(height, width) for f in framed]
            frames = [video[..., top:top + h, left:left + w]
                      for video, (top, left, h, w) in zip(frames, boxes)]
            final_tracks = [t if t is None else t - np.array([left, top], float)
                            for t, (top, left, _, _) in zip(final_tracks, boxes)]
        return FramerPipelineOutput(frames=self._postprocess(frames, output_type),
                                    tracks=final_tracks)

    def _prepare_tracks(self, tracks, autopilot, starts, ends, num_frames, size, batch):
        """Per video: (F, K, 2) tracks in generation pixels, or None for no control. ``starts``
        and ends are the endpoints as given (autopilot matches them at their own resolution)."""
        if autopilot and tracks is not None:
            raise ValueError("give either tracks or autopilot, not both")
        if (autopilot or tracks is not None) and self.controlnet is None:
            raise ValueError("trajectory control needs a ControlNet, but this model has no "
                             "controlnet/ folder — load one, or drop --tracks/--autopilot")
        if autopilot:
            return [self._autopilot_tracks(s, e, num_frames, size) for s, e in zip(starts, ends)]
        if tracks is None:
            return [None] * batch
        per_video = tracks if isinstance(tracks, list) else [tracks] * batch
        if len(per_video) != batch:
            raise ValueError(f"got tracks for {len(per_video)} videos but a batch of {batch}")
        out = []
        for item in per_video:
            if item is None:
                out.append(None)
                continue
            if isinstance(item, TrackSet):
                arr = resample_tracks(item, num_frames)
                if item.image_size is not None:
                    arr = rescale_points(arr, item.image_size, size)
            else:
                arr = np.asarray(item, dtype=np.float64)
                if arr.ndim != 3 or arr.shape[0] != num_frames or arr.shape[2] != 2:
                    raise ValueError(f"track arrays must be (num_frames={num_frames}, K, 2), "
                                     f"got {arr.shape}")
                if not np.isfinite(arr).all():
                    raise ValueError("track arrays must hold finite pixel positions, got NaN "
                                     "or inf")
            out.append(arr if arr.shape[1] else None)
        return out

    @staticmethod
    def _autopilot_tracks(start, end, num_frames, size):
        """Straight tracks between SIFT matches, in generation pixels. SIFT runs on the endpoints
        at their own resolution (at most MATCH_MAX_SIDE): resized to a small generation size
        first, textures vanish and SIFT finds nothing. Points stay ≥ 24 generation px apart."""
        a, b = _match_view(start), _match_view(end)
        a_size, b_size = (a.shape[1], a.shape[0]), (b.shape[1], b.shape[0])
        p0, p1 = match_sift(a, b, min_distance=24.0 * max(a_size[0] / size[0],
                                                          a_size[1] / size[1]))
        p0, p1 = rescale_points(p0, a_size, size), rescale_points(p1, b_size, size)
        if len(p0) == 0:
            warnings.warn("autopilot: SIFT found no matches between the endpoints; "
                          "interpolating without trajectory control", stacklevel=3)
            return None
        ramp = np.linspace(0.0, 1.0, num_frames)[:, None, None]
        return p0[None] * (1 - ramp) + p1[None] * ramp

    def _heatmaps(self, track_list, num_frames, height, width, device) -> torch.Tensor:
        """The heat-maps the ControlNet was trained on (its config's σ and radius)."""
        empty = np.zeros((num_frames, 0, 2))
        sigma, radius = self.controlnet.config.heatmap_sigma, self.controlnet.config.heatmap_radius
        maps = [rasterize_heatmaps(t if t is not None else empty, height, width, sigma, radius)
                for t in track_list]
        return torch.stack(maps).to(device, dtype=torch.float32)

    def _autopilot_step(self, features, states, weights, do_cfg, num_frames, size, radius,
                        consistency):
        feats = features[self.unet.autopilot_feature_index].float()
        feats = feats.reshape(-1, num_frames, *feats.shape[1:])
        if do_cfg:
            feats = combine_guidance(feats, weights)
        for b, state in enumerate(states):
            if state is not None:
                refine_tracks(state, feats[b].cpu(), size, radius, consistency)
        tracks = [s.tracks if s is not None else None for s in states]
        return self._heatmaps(tracks, num_frames, size[1], size[0], feats.device)

    def decode_latents(self, latents: torch.Tensor, chunk: int) -> torch.Tensor:
        """(B, F, 4, h, w) latents → (B, F, 3, H, W) in [0, 1]; chunks never span two videos
        (the temporal decoder mixes frames within a chunk)."""
        scaled = latents / self.vae.config.scaling_factor
        vae_device, vae_dtype = self.vae.device, self.vae.dtype
        # on a CPU, oneDNN runs the decoder's convolutions and upsampling faster on channels-last
        # input (the micro decode: 164 → 133 ms, outputs within 2e-6; docs/performance.md)
        layout = torch.channels_last if vae_device.type == "cpu" else torch.contiguous_format
        autocast = torch.autocast("cpu", self.decode_dtype, enabled=vae_device.type == "cpu"
                                  and self.decode_dtype not in (None, vae_dtype))
        videos = []
        for video in scaled:
            with autocast:
                parts = [self.vae.decode(video[i:i + chunk].to(vae_device, vae_dtype).contiguous(
                    memory_format=layout), num_frames=len(video[i:i + chunk])).sample
                         for i in range(0, len(video), chunk)]
            videos.append(torch.cat(parts).to(latents.device, latents.dtype))
        return ((torch.stack(videos) + 1) / 2).clamp(0, 1)

    @staticmethod
    def _postprocess(frames: torch.Tensor | list[torch.Tensor], output_type: str):
        """(B, F, 3, H, W) in [0, 1] → ``output_type``; a list of per-video (F, 3, h, w) of
        different sizes (``resize="pad"``) → a list with one item per video."""
        if isinstance(frames, list):
            if len({v.shape for v in frames}) > 1:
                return [FramerPipeline._postprocess(v[None], output_type)[0] for v in frames]
            frames = torch.stack(frames)
        if output_type in ("pt", "tensor"):
            with torch.inference_mode(False):  # a tensor the caller may edit in place
                return frames.cpu().clone()
        array = frames.permute(0, 1, 3, 4, 2).cpu().numpy()
        if output_type == "np":
            return array
        if output_type == "pil":
            return [[Image.fromarray((f * 255).round().astype(np.uint8)) for f in video]
                    for video in array]
        raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
