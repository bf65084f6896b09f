"""Loading and saving every Framer component, in the released folder layout.

Two layouts load:

(a) the released pair — a Framer folder with ``unet/`` (and optionally ``controlnet/``) plus an
    SVD-xt folder with ``vae/``, ``image_encoder/``, ``feature_extractor/``, ``scheduler/``;
(b) one self-contained folder holding all six — which is what :func:`save_components` writes.

Each may be a local path or a Hugging Face Hub id. Components are looked up in the model folder
first, then in the SVD folder. Weights load only from safetensors (``*.safetensors`` or the
``fp16`` variant SVD-xt ships).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.atomic import atomic_dir
from .configs import CLIP_MEAN, CLIP_STD, SVD_SCHEDULER, config
from .controlnet import FramerControlNet
from .names import RANDOM_MICRO, ModelNotFoundError, resolve_model
from .unet import FramerUNet
from .vae import FramerVAE

logger = logging.getLogger(__name__)

REQUIRED = ("unet", "vae", "image_encoder")
OPTIONAL = ("controlnet", "feature_extractor", "scheduler")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when there is one, else the CPU; a named device must exist here (one line
    saying so, not a traceback from deep inside the first tensor move)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device}: not a device name; use auto, cpu, cuda or "
                         "cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            build = "the CPU build" if torch.version.cuda is None else "no GPU is visible"
            raise ValueError(f"--device {device}: this PyTorch has no CUDA ({build}) — install "
                             "a CUDA build of torch (pytorch.org) or use --device cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: there are {torch.cuda.device_count()} CUDA "
                             f"devices (cuda:0 … cuda:{torch.cuda.device_count() - 1})")
    elif resolved.type not in ("cpu", "mps", "xpu"):
        raise ValueError(f"--device {device}: not a device to run on; use auto, cpu, cuda or "
                         "cuda:N")
    elif resolved.type != "cpu":
        try:
            torch.empty(0, device=resolved)
        except (RuntimeError, AssertionError):
            raise ValueError(f"--device {device}: this PyTorch cannot use it here; use auto, "
                             "cpu or cuda") from None
    return resolved


def resolve_dtype(dtype: str | torch.dtype = "auto", device: torch.device | None = None):
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
             "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if dtype == "auto":
        if device is not None and device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, fp32, fp16 or bf16")
    return table[dtype]


def cpu_decode_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype | None:
    """bf16 for the VAE decode when ``dtype`` is ``auto`` on a CPU with native bf16 kernels
    (AVX512-BF16 or AMX), else None (the VAE's own dtype). The decode is the one part whose
    cost turbo's four steps leave whole: on a 2-core AVX512-BF16 CPU the micro decode runs in
    64 instead of 133 ms a video, its frames 60.8 dB from the fp32 decode (mean 0.18/255;
    docs/performance.md). An explicit ``fp32`` keeps every part in fp32."""
    if dtype != "auto" or device.type != "cpu":
        return None
    try:  # oneDNN's own check (AVX512-BF16 or AMX); private, so a torch without it means fp32
        native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        native = False
    return torch.bfloat16 if native else None


@dataclass
class _Source:
    """A local folder or a Hub repository that may hold some of the components."""

    location: str

    @property
    def is_local(self) -> bool:
        return Path(self.location).exists()

    def has(self, component: str) -> bool:
        if self.is_local:
            return (Path(self.location) / component).is_dir()
        from huggingface_hub import list_repo_files

        try:
            files = list_repo_files(self.location)
        except Exception as e:  # offline, unknown repo, no network: one line, not a traceback
            raise ModelNotFoundError(
                f"{self.location}: no such local folder, and the Hub did not give it "
                f"({e.__class__.__name__}) — check the path (a local folder must exist), or the "
                "Hub id and the network") from None
        return any(f.startswith(component + "/") for f in files)

    def variant(self, component: str) -> str | None:
        """``fp16`` when a local folder holds only the fp16-variant weights (as SVD-xt may)."""
        if not self.is_local:
            return None
        folder = Path(self.location) / component
        if any(folder.glob("*.fp16.safetensors")) and not any(
                p for p in folder.glob("*.safetensors") if ".fp16." not in p.name):
            return "fp16"
        if not any(folder.glob("*.safetensors")) and component not in (
                "feature_extractor", "scheduler") and not self.legacy_bin(component):
            raise ModelNotFoundError(f"{folder}: no .safetensors weights — is this a model "
                                     "folder in the diffusers layout?")
        return None

    def legacy_bin(self, component: str) -> bool:
        """Only a pickled ``.bin`` here: loaded with torch.load(weights_only=True), warned."""
        if not self.is_local:
            return False
        folder = Path(self.location) / component
        if any(folder.glob("*.safetensors")) or not any(folder.glob("*.bin")):
            return False
        logger.warning("%s: loading a legacy .bin checkpoint (tensors only, weights_only=True); "
                       "convert it to safetensors", folder)
        return True


def _source(location: str | os.PathLike | None, what: str) -> _Source | None:
    if location is None:
        return None
    location = resolve_model(location)  # a named model (micro) is a folder too
    first = Path(location).parts[0] if Path(location).parts else ""
    local = Path(location).exists() or not _HUB_ID.match(location) or Path(first).is_dir()
    if local and not Path(location).is_dir():  # (owner/name whose owner is a local folder: a path)
        raise ModelNotFoundError(f"{what} folder not found: {location} — pass an existing "
                                 "folder or a Hub id like owner/name")
    return _Source(location)


def _find(component: str, sources: list[_Source]) -> _Source | None:
    return next((s for s in sources if s.has(component)), None)


def load_components(model: str | os.PathLike, svd: str | os.PathLike | None = None, *,
                    controlnet: bool = True, device: str | torch.device = "auto",
                    dtype: str | torch.dtype = "auto") -> dict:
    """All Framer components as a dict of stock-diffusers objects, ready for ``FramerPipeline``.

    ``model`` is a Framer folder/Hub id (or ``random-micro`` for the untrained micro model);
    ``svd`` supplies what the model folder lacks. ``controlnet=False`` skips the ControlNet."""
    device = resolve_device(device) if isinstance(device, str) else device
    dtype = resolve_dtype(dtype, device)
    if str(model) == RANDOM_MICRO:
        parts = random_micro_components(controlnet=controlnet)
    else:
        parts = _load_from_sources(resolve_model(model), svd, controlnet, dtype)
    for name in ("unet", "controlnet", "vae", "image_encoder"):
        part = parts.get(name)
        if part is not None:
            if part.dtype != dtype:
                part = part.to(dtype=dtype)
            parts[name] = part.to(device=device).eval()
    return parts


def _load_from_sources(model, svd, want_controlnet: bool, dtype) -> dict:
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPVisionModelWithProjection

    sources = [s for s in (_source(model, "model"), _source(svd, "SVD")) if s is not None]
    looked = " and ".join(s.location for s in sources)
    found = {c: _find(c, sources) for c in REQUIRED + OPTIONAL}
    missing = [c for c in REQUIRED if found[c] is None]
    if missing:
        hint = "" if svd else " — pass --svd pointing at stable-video-diffusion-img2vid-xt"
        raise ModelNotFoundError(f"missing {', '.join(f'{m}/' for m in missing)} in {looked}{hint}")

    def kwargs(component):
        src = found[component]
        return dict(pretrained_model_name_or_path=src.location, subfolder=component,
                    variant=src.variant(component),
                    use_safetensors=not src.legacy_bin(component))

    parts = {
        "unet": FramerUNet.from_pretrained(**kwargs("unet"), torch_dtype=dtype),
        "vae": FramerVAE.from_pretrained(**kwargs("vae"), torch_dtype=dtype),
        "image_encoder": CLIPVisionModelWithProjection.from_pretrained(**kwargs("image_encoder"),
                                                                       dtype=dtype),
        "controlnet": None,
    }
    if want_controlnet and found["controlnet"] is not None:
        parts["controlnet"] = FramerControlNet.from_pretrained(**kwargs("controlnet"),
                                                               torch_dtype=dtype)
    elif want_controlnet:
        logger.info("no controlnet/ in %s: trajectory control is unavailable", looked)
    if found["scheduler"] is not None:
        parts["scheduler"] = EulerDiscreteScheduler.from_pretrained(
            found["scheduler"].location, subfolder="scheduler")
    else:
        parts["scheduler"] = EulerDiscreteScheduler.from_config(SVD_SCHEDULER)
    parts["feature_extractor"] = _load_feature_extractor(found["feature_extractor"])
    return parts


def _image_processor_class():
    """transformers 5 has a PIL-only CLIP processor; the default one wants torchvision, which
    this project does not depend on (only its mean/std are used anyway)."""
    try:
        from transformers import CLIPImageProcessorPil
        return CLIPImageProcessorPil
    except ImportError:
        from transformers import CLIPImageProcessor
        return CLIPImageProcessor


def _load_feature_extractor(source: _Source | None):
    if source is None:
        return make_feature_extractor()
    return _image_processor_class().from_pretrained(source.location, subfolder="feature_extractor")


def make_feature_extractor():
    return _image_processor_class()(image_mean=CLIP_MEAN, image_std=CLIP_STD, size={"shortest_edge": 224},
                              crop_size={"height": 224, "width": 224}, do_center_crop=True)


def random_micro_components(controlnet: bool = True, seed: int = 0,
                            unet_widths: tuple[int, ...] | None = None) -> dict:
    """The micro Framer family with *random* weights (seeded): for tests and first runs.
    ``unet_widths`` replaces the UNet's (and so the ControlNet's) ``block_out_channels``: a
    wider or narrower micro model, e.g. to measure what capacity buys (docs/micro-model.md)."""
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    unet_config = config("micro-unet")
    if unet_widths is not None:
        widths = tuple(int(w) for w in unet_widths)
        wrong = any(w <= 0 or w % 32 for w in widths)
        if wrong or len(widths) != len(unet_config["block_out_channels"]):
            # the stock blocks are built with 32 norm groups before set_norm_groups runs
            raise ValueError(f"UNet widths must be {len(unet_config['block_out_channels'])} "
                             f"positive multiples of 32 (the stock blocks build 32 norm groups "
                             f"first), got {','.join(map(str, widths))}")
        unet_config["block_out_channels"] = widths
    # each part from its own seed, so asking for the ControlNet or not changes nothing else
    torch.manual_seed(seed)
    unet = FramerUNet(**unet_config)
    control = None
    if controlnet:
        torch.manual_seed(seed + 1)
        control = FramerControlNet.from_unet(unet, **{
            k: v for k, v in config("micro-controlnet").items() if k.startswith("conditioning")})
    with torch.no_grad():
        torch.manual_seed(seed + 2)
        unet.mask_token.normal_()
        if control is not None:  # random model: let trajectories have a visible effect
            for name, p in control.named_parameters():
                if name.startswith(("controlnet_down", "controlnet_mid",
                                    "controlnet_cond_embedding.conv_out")):
                    p.normal_(0.0, 0.05)
    torch.manual_seed(seed + 3)
    vae = FramerVAE(**config("micro-vae"))
    torch.manual_seed(seed + 4)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**config("micro-clip")))
    return {
        "unet": unet,
        "controlnet": control,
        "vae": vae,
        "image_encoder": image_encoder,
        "scheduler": EulerDiscreteScheduler.from_config(SVD_SCHEDULER),
        "feature_extractor": make_feature_extractor(),
    }


def is_model_folder(folder: Path) -> bool:
    """A self-contained model folder (what a new save of one may replace)."""
    return any((folder / name).exists()
               for name in ("framerturbo.json", "model_index.json", "unet"))


def save_components(parts: dict, folder: str | os.PathLike,
                    dtype: torch.dtype | None = None, record=None) -> Path:
    """Write a self-contained folder in the released layout, atomically (all or nothing);
    ``dtype`` stores the weights in that precision (the embedded micro model uses fp16);
    ``record`` (a :class:`~.record.ModelRecord`) says what the model is made for."""
    folder = Path(folder)
    with atomic_dir(folder, replace_if=is_model_folder) as tmp:
        write_components(parts, tmp, dtype, record)
    return folder


def write_components(parts: dict, folder: Path, dtype: torch.dtype | None = None,
                     record=None) -> None:
    """The body of :func:`save_components`, into a folder the caller makes atomic."""
    from .record import write_record

    if record is not None:
        write_record(folder, record)
    index = {}
    for name, part in parts.items():
        if part is None:
            continue
        if dtype is not None and isinstance(part, torch.nn.Module):
            part = copy.deepcopy(part).to(dtype)
        part.save_pretrained(folder / name)
        index[name] = [type(part).__module__.split(".")[0], type(part).__name__]
    (folder / "model_index.json").write_text(json.dumps(
        {"_class_name": "FramerPipeline", **index}, indent=2))
