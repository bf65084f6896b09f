"""Hub-style model cards (README.md) for run folders, LoRAs and exports, so a folder can be
uploaded to a model hub as it is.

The card is rendered from *facts* — a plain dict the trainer writes once (``RUN/card.json``: base
model, data summary, LoRA settings, steps, metrics) — plus the kind of artefact (``run``,
``lora``, ``model``, ``peft``, ``merged``, ``comfyui``), which decides ``library_name``, the tags
and the "how to use" section. YAML front matter first (base_model, library_name, license, tags,
pipeline_tag), then the text. Written atomically; nothing is uploaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..core.atomic import atomic_file

CARD_FILE = "README.md"
MARKER = "<!-- written by framerturbo -->"
# local folder names of the released weights (docs/quickstart.md) → their Hub ids
KNOWN_IDS = {"framer_512x320": "wwen1997/framer_512x320",
             "stable-video-diffusion-img2vid-xt": "stabilityai/stable-video-diffusion-img2vid-xt"}
SVD_LICENSE = {"license": "other", "license_name": "stable-video-diffusion-nc-community",
               "license_link": "https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt/blob/main/LICENSE"}
MICRO = ("micro", "random-micro")  # the embedded micro Framer: this project's, Apache-2.0
LIBRARY = {"peft": "peft"}  # everything else is a diffusers folder or diffusers-keyed file


def hub_id(name: str) -> str | None:
    """The Hub id a base model name stands for, when it is known (None for local folders of
    unknown origin and for the embedded micro model)."""
    if not name or name in MICRO:
        return None
    path = Path(name)
    if path.exists():
        return KNOWN_IDS.get(path.resolve().name)
    return name if re.fullmatch(r"[\w.-]+/[\w.-]+", name) else None


def license_of(base: str, svd: str) -> dict:
    """The base's licence: Apache-2.0 for the micro model (trained by this project); SVD-xt's
    non-commercial community licence for Framer (fine-tuned from SVD-xt) and SVD; else ``other``
    with a note that the base's own terms apply."""
    if base in MICRO:
        return {"license": "apache-2.0"}
    ids = {hub_id(base), hub_id(svd)}
    if ids & set(KNOWN_IDS.values()):
        return dict(SVD_LICENSE)
    return {"license": "other"}


def _yaml(front: dict) -> str:
    lines = ["---"]
    for k, v in front.items():
        if isinstance(v, list):
            lines.append(f"{k}:")
            lines += [f"- {json.dumps(x)}" for x in v]
        else:
            lines.append(f"{k}: {json.dumps(v)}")
    return "\n".join(lines + ["---", ""])


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _counts(d: dict) -> str:
    return ", ".join(f"{k} ({v})" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "—"


def _data_section(data: dict) -> list[str]:
    out = ["## Training data", ""]
    settings = data.get("settings", {})
    for split in ("train", "validation"):
        s = data.get(split)
        if not s:
            continue
        out.append(f"- **{split}**: {_n(s['clips'], 'clip')} from {_n(s['files'], 'file')} "
                   f"({s['seconds']:.1f} s of video; {s['skipped']} files skipped); "
                   f"source sizes {_counts(s['sizes'])}; source fps {_counts(s['fps'])}; "
                   f"sampled at {_counts(s['sampled_fps'])} fps")
    if settings:
        out.append(f"- clips: {settings['num_frames']} frames at {settings['width']}×"
                   f"{settings['height']} ({settings['resize']}), "
                   + (f"target fps {settings['target_fps']:g}" if settings.get("target_fps")
                      else f"stride {settings['stride']}") + f", sampling {settings['sampling']}")
    for key in ("sources", "validation_sources"):
        if data.get(key):
            out.append(f"- {key.replace('_', ' ')}: " + ", ".join(f"`{s}`" for s in data[key]))
    if data.get("domain"):
        out.append(f"- domain: {data['domain']}")
    return out + [""]


def _metrics_section(facts: dict) -> list[str]:
    out = []
    metrics = facts.get("metrics") or {}
    if metrics:
        out += ["## Metrics", "", "| metric | value |", "|---|---|"]
        out += [f"| {k} | {v:.4g} |" for k, v in metrics.items() if isinstance(v, (int, float))]
        out += ["", "Validation (`val/…`): held-out clips sampled as `evaluate` does; PSNR/SSIM "
                "on the generated middle frames.", ""]
    rows = (facts.get("evaluation") or {}).get("rows") or {}
    if rows:
        keys = sorted({k for r in rows.values() for k, v in r.items()
                       if isinstance(v, (int, float))})
        out += ["## Evaluation (`framerturbo evaluate`)", "",
                "| row | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        out += [f"| {label} | " + " | ".join(f"{r[k]:.4g}" if k in r else "—" for k in keys)
                + " |" for label, r in rows.items()]
        out.append("")
    return out


def _usage(kind: str, facts: dict, name: str) -> list[str]:
    base, svd = facts.get("base_model", "micro"), facts.get("svd", "")
    model = f"--model {base}" + (f" --svd {svd}" if svd else "")
    cli = "framerturbo interpolate start.png end.png -o out.mp4"
    shipped = kind == "shipped-turbo"  # inside a model folder's turbo/: a bare --turbo finds it
    if shipped or (kind in ("run", "lora") and facts.get("distillation")):  # its own flag
        flag, folder = ("--turbo", "") if shipped else (f"--turbo {name}", repr(name))
        intro = ["Shipped inside the model's folder, where a bare `--turbo` finds it:", ""]
        return [*(intro if shipped else []), f"```bash\n{cli} {model} {flag}\n```", "",
                "```python\nfrom framerturbo import FramerPipeline\n\n"
                f"pipe = FramerPipeline.from_framer({base!r}" + (f", {svd!r}" if svd else "")
                + f")\npipe.load_turbo({folder})\n"
                "frames = pipe(\"start.png\", \"end.png\", sampler=\"turbo\").frames[0]\n```", "",
                "It stacks with a domain LoRA: add `--lora DIR` (Python: `load_lora_weights` "
                "before `load_turbo`)."]
    if kind in ("run", "lora"):
        return [f"```bash\n{cli} {model} --lora {name}:1.0\n```", "",
                "```python\nfrom framerturbo import FramerPipeline\n\n"
                f"pipe = FramerPipeline.from_framer({base!r}"
                + (f", {svd!r}" if svd else "") + ")\n"
                f"pipe.load_lora_weights({name!r}, adapter_name=\"this\")\n"
                "pipe.set_adapters([\"this\"], adapter_weights=[1.0])\n"
                "frames = pipe(\"start.png\", \"end.png\").frames[0]\n```"]
    if kind in ("model", "merged"):
        return [f"```bash\n{cli} --model {name}" + (f" --svd {svd}" if svd else "") + "\n```",
                "", "`FramerUNet.from_pretrained(folder / \"unet\")` also loads it (stock "
                "`UNetSpatioTemporalConditionModel` too, reporting the extra `mask_token`)."]
    if kind == "peft":
        return ["```python\nfrom peft import LoraConfig, inject_adapter_in_model, "
                "set_peft_model_state_dict\nfrom safetensors.torch import load_file\n\n"
                f"unet = inject_adapter_in_model(LoraConfig.from_pretrained({name!r}), unet)\n"
                f"state = load_file({name!r} + \"/adapter_model.safetensors\")\n"
                "set_peft_model_state_dict(unet, {k.removeprefix(\"base_model.model.\"): v "
                "for k, v in state.items()})\n```"]
    return [f"Put `{name}` in ComfyUI's `models/diffusion_models` (ComfyUI-FramerWrapper loads "
            "a merged Framer UNet keyed by diffusers names)."]


def render(facts: dict, kind: str, name: str) -> str:
    """The README.md text for ``kind`` (run, lora, shipped-turbo, model, peft, merged, comfyui)
    called ``name`` (the folder or file the usage lines refer to)."""
    base, svd = facts.get("base_model", ""), facts.get("svd", "")
    train = facts.get("training", {})
    ids = [i for i in (hub_id(base), hub_id(svd)) if i]
    lora = train.get("mode") == "lora" and kind not in ("model", "merged", "comfyui")
    front = ({"base_model": ids if len(ids) > 1 else ids[0]} if ids else {}) | {
        "library_name": LIBRARY.get(kind, "diffusers"),
        **license_of(base, svd),
        "pipeline_tag": "image-to-video",
        "tags": ["framerturbo", "framer", "frame-interpolation", "stable-video-diffusion",
                 *(["lora"] if lora else []), *facts.get("tags", [])]}
    scale = f" at scale {facts['scale']:g}" if "scale" in facts and kind in (
        "merged", "comfyui") else ""
    what = {"run": "training run", "lora": "LoRA", "shipped-turbo": "LoRA",
            "model": "fine-tuned model",
            "peft": "LoRA (PEFT format)", "merged": f"model with the LoRA merged{scale}",
            "comfyui": f"merged UNet for ComfyUI{scale}"}[kind]
    lines = [_yaml(front), MARKER, f"# {facts.get('title', name)} — Framer {what}", "",
             f"Framer (interactive frame interpolation on Stable Video Diffusion) fine-tuned "
             f"with FramerTurbo from `{base}`"
             + (f" (SVD parts: `{svd}`)" if svd else "") + ".", "",
             "## Training", ""]
    if train:
        if train.get("mode") == "lora":
            lines.append(f"- LoRA preset `{train['preset']}`, rank {train['rank']}, alpha "
                         f"{train['alpha']:g}" + (f", {train['parameters']:,} parameters"
                                                  if train.get("parameters") else ""))
        else:
            lines.append(f"- {train.get('mode')} fine-tuning")
        if train.get("control") not in (None, "none"):
            lines.append(f"- ControlNet: {train['control']}")
        lines.append(f"- {train['steps']} steps of {train['max_steps']}, effective batch "
                     f"{train['effective_batch']}, lr {train['lr']:g} ({train['lr_scheduler']}), "
                     f"seed {train['seed']}, EMA {train['ema_decay']:g}, "
                     f"precision {train['mixed_precision']}")
        turbo = facts.get("distillation")
        if turbo:
            grid = turbo["sigma_grid"]
            lines.append(f"- objective: latent consistency distillation of the base (a **turbo "
                         f"LoRA**: sampler `{turbo['sampler']}`, {turbo['steps']} steps, no CFG; "
                         f"teacher {turbo['teacher']['solver']} on a Karras grid of "
                         f"{grid['num_sigmas']} σ from {grid['sigma_max']:g} to "
                         f"{grid['sigma_min']:g}, skip {grid['skip']}; docs/turbo.md)")
        else:
            lines.append("- objective: EDM v-prediction loss on the sampler's own conditioning "
                         "(docs/lora-principles.md)")
    else:
        lines.append("- no training record found next to this LoRA (no `card.json` in its run "
                     "folder)")
    lines += [""] + (_data_section(facts["data"]) if facts.get("data") else [])
    lines += _metrics_section(facts)
    lines += ["## Use", ""] + _usage(kind, facts, name) + [""]
    lic = license_of(base, svd)
    lines += ["## Licence", "", {
        "apache-2.0": "The embedded micro Framer is this project's (Apache-2.0).",
        "other": ("Framer is fine-tuned from Stable Video Diffusion img2vid-xt: its licence "
                  f"({lic.get('license_name', '')}, {lic.get('license_link', '')}) governs "
                  "this derivative; check the base repositories' terms too."
                  if "license_name" in lic else
                  f"The licence of the base model `{base}` applies.")}[lic["license"]], ""]
    return "\n".join(lines)


def write_card(path: str | Path, facts: dict, kind: str, name: str | None = None) -> Path:
    """Write ``render(...)`` to ``path`` (a folder → its README.md), atomically."""
    path = Path(path)
    target = path / CARD_FILE if path.is_dir() else path
    with atomic_file(target) as tmp:
        tmp.write_text(render(facts, kind, name or path.name))
    return target
