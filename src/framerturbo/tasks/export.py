"""Exporting a trained LoRA for other tools.

* ``peft``    — a PEFT adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``),
  loadable with ``peft.inject_adapter_in_model(LoraConfig.from_pretrained(folder), unet)`` +
  ``set_peft_model_state_dict`` (keys carry PEFT's ``base_model.model.`` prefix).
* ``merged``  — the LoRA folded into the base weights: a Framer folder with a full diffusers
  ``unet/`` (and the base ``controlnet/`` when there is one) and the base model's
  ``framerturbo.json``, loadable by our loader and by diffusers' ``from_pretrained``.
* ``comfyui`` — one safetensors file of the merged UNet keyed by the diffusers parameter names, as
  ComfyUI-FramerWrapper loads a Framer UNet.

Each output gets a model card (README.md; for ``comfyui`` beside the file) from the facts of the
run the LoRA came from (``RUN/card.json``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from ..core.atomic import atomic_dir, atomic_file, check_replaceable
from ..models.adapters import find_lora_dir, load_loras, shipped_turbo_dir
from ..models.card import CARD_FILE, MARKER, write_card
from ..models.loading import is_model_folder, load_components, write_components
from ..models.names import resolve_model
from ..models.record import read_record
from ..train.run_card import read_facts

FORMATS = ("peft", "merged", "comfyui")
COMFYUI_SOURCE = "framerturbo merged Framer UNet"  # in the file's metadata: ours to replace
# what an export may replace: an earlier export of the same kind
FOLDER_KINDS = {"peft": lambda folder: (folder / "adapter_config.json").is_file(),
                "merged": is_model_folder}


def merged_unet(model: str, svd: str | None, lora: Path, scale: float = 1.0):
    """The base UNet with the LoRA fused in at ``scale`` and the adapter layers removed."""
    parts = load_components(model, svd, controlnet=True, device="cpu", dtype="fp32")
    unet = parts["unet"]
    load_loras(unet, [(str(lora), scale)])
    unet.fuse_lora(lora_scale=1.0)  # set_adapters already applied the scale
    unet.unload_lora()
    return unet, parts


def export(run_or_lora: str | Path, fmt: str, out: str | Path, model: str,
           svd: str | None = None, scale: float = 1.0) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    lora, out = find_lora_dir(run_or_lora), Path(out)
    if fmt == "comfyui":  # refuse to replace what the user made, before any work
        check_replaceable(out, is_comfyui_export, file=True)
    else:  # a folder, replaced whole
        check_replaceable(out, FOLDER_KINDS[fmt])
    facts = export_facts(lora, out, model, svd, scale)
    if fmt == "peft":
        return _export_peft(lora, out, model, svd, facts)
    unet, parts = merged_unet(model, svd, lora, scale)
    if fmt == "comfyui":
        with atomic_file(out) as tmp:
            save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, tmp,
                      metadata={"format": "pt", "source": COMFYUI_SOURCE})
        card = out.parent / CARD_FILE
        if card.exists() and MARKER not in card.read_text(errors="replace"):
            card = out.with_name(out.stem + ".README.md")  # never overwrite someone's README
        write_card(card, facts, "comfyui", out.name)
        return out
    return _write_folder(out, merged_parts(model, unet, parts), facts, model)


def is_comfyui_export(path: Path) -> bool:
    """Whether ``path`` is a safetensors file an earlier ``comfyui`` export wrote."""
    try:
        with safe_open(str(path), "pt") as f:
            return (f.metadata() or {}).get("source") == COMFYUI_SOURCE
    except Exception:  # not a safetensors file at all (safetensors raises its own errors)
        return False


def trained_on(run_or_lora: str | Path, svd: str | None = None) -> tuple[str, str | None]:
    """The base model (and SVD folder) a run's ``config.toml`` names: what its LoRA needs."""
    from ..core.config import load_config

    lora = find_lora_dir(run_or_lora)
    config = lora.parent / "config.toml"
    if not config.is_file():
        raise ValueError(f"{run_or_lora}: no run config.toml names the base model of this LoRA "
                         "— pass --model (and --svd if it lacks vae/)")
    cfg = load_config(config)
    return cfg.model.pretrained, svd or cfg.model.svd or None


def export_facts(lora: Path, out: Path, model: str, svd: str | None, scale: float) -> dict:
    """The run's card facts (when the LoRA came from a run), with this export's base and
    scale."""
    facts = read_facts(lora) or {"title": out.stem}
    return facts | {"base_model": str(model), "svd": svd or "", "scale": scale}


def _export_peft(lora: Path, out: Path, model: str, svd: str | None, facts: dict) -> Path:
    from peft import get_peft_model_state_dict

    unet = load_components(model, svd, controlnet=False, device="cpu", dtype="fp32")["unet"]
    (name,) = load_loras(unet, [(str(lora), 1.0)])
    config = unet.peft_config[name]
    state = get_peft_model_state_dict(unet, adapter_name=name)

    with atomic_dir(out, replace_if=FOLDER_KINDS["peft"]) as tmp:
        config.save_pretrained(tmp)
        save_file({f"base_model.model.{k}": v.contiguous() for k, v in state.items()},
                  tmp / "adapter_model.safetensors")
        write_card(tmp, facts, "peft", str(out))
    return out


def merged_parts(model: str, unet, parts: dict) -> dict:
    """The merged UNet, the base ControlNet, and every other part the base model's own folder
    holds (the micro model's VAE, CLIP, …: its merge loads alone). Parts that came from
    ``--svd`` stay there: the merge loads with the same ``--svd``."""
    folder = Path(resolve_model(model))
    own = {name: parts.get(name) for name in ("vae", "image_encoder", "feature_extractor",
                                              "scheduler") if (folder / name).is_dir()}
    return {"unet": unet, "controlnet": parts.get("controlnet"), **own}


def _write_folder(out: Path, parts: dict, facts: dict, base: str) -> Path:
    """The merged folder samples as ``--model BASE --lora RUN`` does: with the base model's
    record (without one a micro-sized merge would run at the released 512×320 × 14, euler 30)
    and, when the base ships one, its turbo LoRA (so ``--turbo`` finds it)."""
    turbo = shipped_turbo_dir(base)
    with atomic_dir(out, replace_if=FOLDER_KINDS["merged"]) as tmp:
        write_components(parts, tmp, record=read_record(base))
        if turbo is not None and turbo.is_dir():
            shutil.copytree(turbo, tmp / turbo.name)
        write_card(tmp, facts, "merged", str(out))
    return out
