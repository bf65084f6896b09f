"""Memory and speed levers shared by training and sampling: the attention kernel,
``torch.compile`` and CPU offload. Each is chosen by name; one whose package or hardware is
missing fails with a single line that says what to install or pick instead."""

from __future__ import annotations

import importlib.util

from ..core.config import ATTENTION, OFFLOAD  # the choices, named once


class LeverError(ValueError):
    """A lever that cannot work here; the message names the fix."""


def apply_kernels(unet, controlnet, attention: str, compile_unet: bool) -> None:
    """The attention kernel on both networks, then (optionally) compile the UNet — after any
    LoRA injection, so what is compiled is what runs. Training and sampling both call this."""
    for model in (unet, controlnet):
        if model is not None:
            set_attention(model, attention)
    if compile_unet:
        compile_model(unet)


def set_attention(model: torch.nn.Module, kind: str) -> None:
    """``sdpa``: PyTorch's fused scaled-dot-product attention (flash / memory-efficient kernels
    on CUDA, picked by PyTorch); ``xformers``: xformers' memory-efficient kernel. Works on any
    model built from diffusers' ``Attention`` layers (the UNet and our ControlNet alike)."""
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    if kind not in ATTENTION:
        raise LeverError(f"attention must be one of {', '.join(ATTENTION)}, got {kind!r}")
    if kind == "xformers" and importlib.util.find_spec("xformers") is None:
        raise LeverError("attention = xformers needs the xformers package (pip install "
                         "xformers) — or use sdpa, PyTorch's own fused attention")
    for module in model.modules():
        if isinstance(module, Attention):
            if kind == "sdpa":
                module.set_processor(AttnProcessor2_0())
            else:
                module.set_use_memory_efficient_attention_xformers(True)


def compile_model(model: torch.nn.Module) -> None:
    """Compile the forward in place (names and state dict unchanged, so checkpoints, LoRA
    saving and PEFT keep working); the first steps are slow while kernels are built."""
    model.compile()


def apply_offload(pipe, mode: str, device: str | torch.device | None = None) -> None:
    """Sampling on small GPUs. ``vae``: the VAE stays on the CPU (endpoint encoding and the
    final decode run there); ``model``: each model visits the GPU only while it runs
    (diffusers' model CPU offload); ``sequential``: layer by layer (slowest, least memory)."""
    if mode == "none":
        return
    if mode not in OFFLOAD:
        raise LeverError(f"offload must be one of {', '.join(OFFLOAD)}, got {mode!r}")
    if mode == "vae":
        pipe.vae.to("cpu")
        return
    import torch

    if not torch.cuda.is_available():
        raise LeverError(f"offload = {mode} moves models between the CPU and a GPU, and there "
                         "is no GPU here — use offload none")
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
