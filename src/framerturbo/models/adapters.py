"""LoRA on Framer's UNet/ControlNet through PEFT and diffusers' adapter API.

Presets (module-name regexes over the stock SVD UNet):

* ``attn``    — to_q/to_k/to_v/to_out.0 of every spatial and temporal attention (256 modules in
  the released UNet; 26.6 M parameters at rank 64, 1.74 %);
* ``framer``  — everything in the temporal transformer blocks (attention, ff, ff_in) plus
  ``conv_in``: the paper's "temporal layers + input conv" recipe;
* ``attn+ff`` — ``attn`` plus proj_in/proj_out, ff and ff_in (384 modules, 63.3 M, 4.15 %);
* ``turbo``   — ``attn`` plus the spatial resnets' convs and every resnet's ``time_emb_proj``
  (the σ embedding, which consistency distillation moves most): the turbo LoRA's targets;
* ``attn+ff+conv`` — the union of ``attn+ff`` and ``turbo``: every transformer layer and the
  spatial resnets (for the demo's LoRA it measured no better than ``turbo``, and slower);
* ``custom``  — ``lora.targets``: suffixes, or one regex.

Saved adapters are diffusers LoRA folders (``pytorch_lora_weights.safetensors`` + PEFT metadata),
loadable with ``load_lora_adapter`` and, on a FramerPipeline, with diffusers' own pipeline API
(``FramerLoraLoaderMixin``: ``load_lora_weights``, ``set_adapters``, ``fuse_lora``); several can
be stacked with per-adapter scales (scale 0 reproduces the base model).

A turbo LoRA (``framerturbo distill``) is such a folder too; it loads as the adapter named
``turbo`` (:meth:`FramerLoraLoaderMixin.load_turbo`), next to any domain LoRAs and with its own
scale, and its ``scheduler_config.json`` (if any) says on which Karras grid it was distilled.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers.loaders.lora_base import LoraBaseMixin
from torch import nn

_ATTN = r"attn[12]\.(to_q|to_k|to_v|to_out\.0)"
_FF = r"ff\.net\.(0\.proj|2)|ff_in\.net\.(0\.proj|2)"
_RESNET = (r"resnets\.\d+\.spatial_res_block\.(conv1|conv2|time_emb_proj)"
           r"|temporal_res_block\.time_emb_proj")
PRESETS = {
    "attn": rf".*transformer_blocks\.\d+\.({_ATTN})",
    "attn+ff": rf".*(transformer_blocks\.\d+\.({_ATTN}|{_FF})|attentions\.\d+\.(proj_in|proj_out))",
    "framer": rf"(.*temporal_transformer_blocks\.\d+\.({_ATTN}|{_FF})|conv_in)",
    "turbo": rf".*(transformer_blocks\.\d+\.({_ATTN})|{_RESNET})",
    "attn+ff+conv": rf".*(transformer_blocks\.\d+\.({_ATTN}|{_FF})|attentions\.\d+\."
                    rf"(proj_in|proj_out)|{_RESNET})",
}
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
# next to the weights of a consistency-distilled LoRA: how to sample it (sampler, steps, σ grid)
TURBO_INFO = "turbo.json"


def target_regex(preset: str, targets: list[str] | None = None) -> str:
    """The PEFT ``target_modules`` regex (PEFT full-matches it against module names)."""
    if preset != "custom":
        if preset not in PRESETS:
            raise ValueError(f"unknown LoRA preset {preset!r}; choose one of: "
                             f"{', '.join(PRESETS)}, custom")
        return PRESETS[preset]
    if not targets:
        raise ValueError("the custom LoRA preset needs a list of target module names")
    if len(targets) == 1 and any(c in targets[0] for c in "*()|\\["):
        return targets[0]
    return r".*(^|\.)(" + "|".join(re.escape(t) for t in targets) + ")"


def matching_modules(model: nn.Module, regex: str) -> list[tuple[str, nn.Module]]:
    pattern = re.compile(regex)
    return [(n, m) for n, m in model.named_modules()
            if pattern.fullmatch(n) and isinstance(m, (nn.Linear, nn.Conv2d))]


def lora_parameter_count(model: nn.Module, regex: str, rank: int) -> int:
    """LoRA parameters PEFT adds for this target set (works on a meta-device model)."""
    total = 0
    for _, m in matching_modules(model, regex):
        if isinstance(m, nn.Linear):
            total += rank * (m.in_features + m.out_features)
        else:
            k = m.kernel_size[0] * m.kernel_size[1]
            total += rank * m.in_channels * k + m.out_channels * rank
    return total


def add_lora(model, rank: int, alpha: float, dropout: float, regex: str,
             adapter_name: str = "default") -> list[nn.Parameter]:
    """Inject a trainable LoRA; returns its parameters, kept in fp32 whatever the base dtype."""
    from peft import LoraConfig

    if not matching_modules(model, regex):
        raise ValueError(f"LoRA targets match no module of {type(model).__name__}: {regex}")
    model.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                                 target_modules=regex, init_lora_weights=True),
                      adapter_name=adapter_name)
    params = [p for n, p in model.named_parameters() if "lora_" in n]
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    return params


def is_lora_folder(folder: Path) -> bool:
    """A LoRA folder this program wrote (what a new save of one may replace)."""
    return (folder / LORA_WEIGHTS).is_file()


def save_lora(model, folder: str | Path, adapter_name: str = "default",
              extra: dict[str, str] | None = None) -> Path:
    """Write the adapter as a diffusers LoRA folder, atomically, with ``extra`` text files
    (``turbo.json`` for a turbo LoRA) inside the same all-or-nothing write."""
    from ..core.atomic import atomic_dir

    folder = Path(folder)
    with atomic_dir(folder, replace_if=is_lora_folder) as tmp:
        model.save_lora_adapter(tmp, adapter_name=adapter_name, safe_serialization=True)
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)
    return folder


def copy_lora(source: str | Path, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Copy a LoRA folder (weights, ``turbo.json``, card) atomically, its weights cast to
    ``dtype`` (fp16 halves a shipped LoRA; loading casts them back to the model's dtype). The
    safetensors metadata — PEFT's rank/alpha — is kept."""
    import shutil

    from safetensors import safe_open
    from safetensors.torch import save_file

    from ..core.atomic import atomic_dir

    source = find_lora_dir(source)
    with safe_open(source / LORA_WEIGHTS, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open API)
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    with atomic_dir(folder, replace_if=is_lora_folder) as tmp:
        save_file(tensors, tmp / LORA_WEIGHTS, metadata=metadata)
        for extra in source.iterdir():
            if extra.name != LORA_WEIGHTS and extra.is_file():
                shutil.copy2(extra, tmp / extra.name)
    return Path(folder)


def read_turbo_info(folder: str | Path) -> dict | None:
    """The ``turbo.json`` of a LoRA folder (sampler, steps, σ grid of a turbo LoRA), or None
    for an ordinary LoRA."""
    import json

    path = Path(folder) / TURBO_INFO
    return json.loads(path.read_text()) if path.is_file() else None


def parse_lora_spec(spec: str) -> tuple[str, float]:
    """``DIR[:SCALE]`` → (DIR, SCALE); the scale defaults to 1."""
    path, _, scale = spec.rpartition(":") if re.search(r":-?[\d.]+$", spec) else (spec, "", "1")
    try:
        return path, float(scale)
    except ValueError:
        raise ValueError(f"--lora {spec!r}: the scale after ':' must be a number") from None


def find_lora_dir(path: str | Path) -> Path:
    """A run folder (its ``lora/``) or a LoRA folder itself."""
    path = Path(path)
    for candidate in (path, path / "lora"):
        if (candidate / LORA_WEIGHTS).is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no {LORA_WEIGHTS} here or in {path / 'lora'} — pass a run "
                            "folder or a LoRA folder from `framerturbo train`")


def load_adapter(unet, source, **kwargs) -> None:
    """``unet.load_lora_adapter``, without PEFT's "Already found a `peft_config` attribute …
    Make sure to know what you are doing!" warning, which it gives for every adapter after the
    first: stacking LoRAs (domain + turbo) is what this toolkit means to do."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        unet.load_lora_adapter(source, **kwargs)


def load_loras(target, specs: list[tuple[str, float]]) -> list[str]:
    """Load several LoRA folders into ``target`` and activate them with their scales. A
    pipeline loads through diffusers' pipeline API (``load_lora_weights`` + ``set_adapters``),
    a bare model through its ``load_lora_adapter`` — the same adapters either way. A loaded
    turbo LoRA stays active at its scale (the domain LoRAs replace the other active ones)."""
    unet = target.unet if isinstance(target, LoraBaseMixin) else target
    keep = {k: v for k, v in active_weights(unet).items() if k == TURBO_ADAPTER}
    names = []
    for i, (path, _) in enumerate(specs):
        folder = Path(path)
        if not (folder / LORA_WEIGHTS).is_file():
            raise FileNotFoundError(f"{folder}: no {LORA_WEIGHTS} — pass a LoRA folder written "
                                    "by `framerturbo train` (its lora/ sub-folder)")
        name = f"lora{i}"
        if isinstance(target, LoraBaseMixin):
            target.load_lora_weights(str(folder), adapter_name=name)
        else:
            load_adapter(target, str(folder), prefix=None, use_safetensors=True,
                         adapter_name=name, weight_name=LORA_WEIGHTS)
        names.append(name)
    set_weights(target, dict(zip(names, (s for _, s in specs))) | keep)
    return names


TURBO_ADAPTER = "turbo"
TURBO_GRID_FILE = "scheduler_config.json"  # the TurboScheduler config the LoRA was distilled on
_GRID_KEYS = ("num_train_timesteps", "rho", "sigma_min", "sigma_max")
DISTILL_HINT = "framerturbo distill --config micro/turbo"


def active_weights(model) -> dict[str, float]:
    """The active adapters of a PEFT-injected model and their scales, read back from its LoRA
    layers (so it is true whoever set them); {} without adapters."""
    weights: dict[str, float] = {}
    for module in model.modules():
        scaling = getattr(module, "scaling", None)
        if not isinstance(scaling, dict) or not hasattr(module, "active_adapters"):
            continue
        for name in module.active_adapters:
            if name in scaling and name not in weights:
                rank = module.r[name] ** (0.5 if module.use_rslora.get(name) else 1)
                weights[name] = scaling[name] * rank / module.lora_alpha[name]
    return weights


def set_weights(target, weights: dict[str, float]) -> None:
    """Activate exactly the adapters of ``weights`` whose scale is not 0, at their scales (a
    pipeline or a bare model); an adapter at 0 is left inactive rather than run at 0, because
    PEFT computes an active adapter's two matmuls per layer whatever its scale (the app's and
    the demo's turbo LoRA at 0 made every euler-10 sample of the micro model 32 % slower)."""
    live = {name: scale for name, scale in weights.items() if scale != 0}
    names, scales = list(live), list(live.values())
    if isinstance(target, LoraBaseMixin) and names:
        target.set_adapters(names, adapter_weights=scales)
    else:  # a bare model, or none active (diffusers' pipeline API refuses an empty list)
        model = target.unet if isinstance(target, LoraBaseMixin) else target
        model.set_adapters(names, weights=scales)


@contextmanager
def adapters_off(unet):
    """The base model: every LoRA layer of ``unet`` skipped (PEFT's disable flag), restored —
    requires_grad included — on exit."""
    unet.disable_adapters()
    try:
        yield unet
    finally:
        unet.enable_adapters()


def shipped_turbo_dir(model: str | Path | None) -> Path | None:
    """Where a model keeps its own turbo LoRA: ``<model>/turbo/`` (``new-model --turbo`` puts
    it there; the embedded micro model's is the package's ``assets/micro/turbo/``)."""
    from .configs import MICRO_PATH
    from .names import MICRO, RANDOM_MICRO

    if model is None or str(model) == RANDOM_MICRO:
        return None
    return (MICRO_PATH if str(model) == MICRO else Path(model)) / "turbo"


def find_turbo_dir(path: str | Path | None, model: str | Path | None = None) -> Path:
    """The turbo LoRA folder: ``path`` (a run folder of ``framerturbo distill`` or its lora/),
    or with no path the one shipped with ``model``; a missing one is one line saying how to
    get it."""
    if path:
        try:
            return find_lora_dir(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"--turbo {path}: no {LORA_WEIGHTS} here or in "
                                    f"{Path(path) / 'lora'} — pass a run folder of "
                                    f"`framerturbo distill` or its lora/") from None
    place = shipped_turbo_dir(model)
    if place is not None and (place / LORA_WEIGHTS).is_file():
        return place
    where = place or "nowhere (no model folder)"
    raise FileNotFoundError(f"no turbo LoRA ships with model {model!s} (looked in {where}) — "
                            f"distil one with `{DISTILL_HINT}` and pass --turbo RUN_DIR")


def grid_settings(sigma_grid: dict) -> dict:
    """TurboScheduler settings from a ``turbo.json`` ``sigma_grid`` record (N, ρ, σ range)."""
    return {"num_train_timesteps": sigma_grid["num_sigmas"], "rho": sigma_grid["rho"],
            "sigma_min": sigma_grid["sigma_min"], "sigma_max": sigma_grid["sigma_max"]}


def read_turbo_grid(folder: str | Path) -> dict:
    """The distillation grid (N, ρ, σ range) as TurboScheduler settings: from the ``turbo.json``
    that ``framerturbo distill`` writes into the LoRA folder, else from a ``scheduler_config.json``
    in the LoRA folder or its run folder; {} when there is neither (the sampler's defaults)."""
    import json

    folder = Path(folder)
    grid = (read_turbo_info(folder) or {}).get("sigma_grid")
    if grid:
        return grid_settings(grid)
    for place in (folder, folder.parent):
        path = place / TURBO_GRID_FILE
        if path.is_file():
            try:
                doc = json.loads(path.read_text())
            except ValueError:
                raise ValueError(f"{path}: not valid JSON — rewrite it or delete it to use "
                                 "the turbo sampler's default grid") from None
            return {k: doc[k] for k in _GRID_KEYS if doc.get(k) is not None}
    return {}


def _lora_prefix(folder: Path, weight_name: str) -> str | None:
    """``unet`` for files written by diffusers' pipeline savers (keys ``unet.…``, e.g. its
    training scripts), None for ours (keys as the UNet names its modules)."""
    from safetensors import safe_open

    with safe_open(str(folder / weight_name), framework="pt") as f:
        keys = list(f.keys())
    return "unet" if keys and all(k.startswith("unet.") for k in keys) else None


class FramerLoraLoaderMixin(LoraBaseMixin):
    """diffusers' pipeline LoRA API for FramerPipeline: ``load_lora_weights``, ``set_adapters``,
    ``fuse_lora``/``unfuse_lora``, ``unload_lora_weights``, ``delete_adapters``, … — all but
    the loading come from diffusers' ``LoraBaseMixin`` unchanged. diffusers has no SVD mixin, and
    ``StableDiffusionLoraLoaderMixin`` does not fit (it expects ``unet.``-prefixed keys and a
    ``text_encoder``; docs/lora-principles.md), so the loading is this one method."""

    _lora_loadable_modules = ["unet"]
    unet_name = "unet"

    def load_lora_weights(self, pretrained_model_name_or_path_or_dict, adapter_name=None,
                          **kwargs):
        """A LoRA folder from ``framerturbo train`` (or its run folder), a diffusers LoRA
        folder with ``unet.``-prefixed keys, or a state dict, as adapter ``adapter_name``."""
        source = pretrained_model_name_or_path_or_dict
        if isinstance(source, dict):
            prefix = "unet" if all(k.startswith("unet.") for k in source) else None
            load_adapter(self.unet, dict(source), prefix=prefix, adapter_name=adapter_name,
                         **kwargs)
            return
        weight_name = kwargs.pop("weight_name", LORA_WEIGHTS)
        prefix = None
        if Path(source).exists():
            source = find_lora_dir(source) if weight_name == LORA_WEIGHTS else Path(source)
            prefix = _lora_prefix(source, weight_name)
        load_adapter(self.unet, str(source), prefix=prefix, adapter_name=adapter_name,
                     weight_name=weight_name, use_safetensors=True, **kwargs)

    def load_turbo(self, path: str | Path | None = None, scale: float = 1.0) -> Path:
        """Load a turbo LoRA as adapter ``turbo`` at ``scale``, keeping the active domain LoRAs
        at theirs; with no ``path``, the one shipped with the model (``from_framer``'s). Sets
        ``turbo_grid`` for the ``turbo`` sampler. Loading again replaces the previous one."""
        folder = find_turbo_dir(path, getattr(self, "model_source", None))
        grid = read_turbo_grid(folder)
        if TURBO_ADAPTER in (self.get_list_adapters().get("unet") or []):
            self.delete_adapters(TURBO_ADAPTER)
        keep = {k: v for k, v in active_weights(self.unet).items() if k != TURBO_ADAPTER}
        self.load_lora_weights(str(folder), adapter_name=TURBO_ADAPTER)
        set_weights(self, keep | {TURBO_ADAPTER: float(scale)})
        self.turbo_grid, self.turbo_dir = grid, folder
        return folder


def trainable_full(model: nn.Module, prefixes: list[str]) -> list[nn.Parameter]:
    """Full fine-tuning: all parameters, or those under the given name prefixes."""
    params = []
    for name, p in model.named_parameters():
        train = not prefixes or any(name == q or name.startswith(q + ".") for q in prefixes)
        p.requires_grad_(train)
        if train:
            p.data = p.data.float()
            params.append(p)
    if not params:
        raise ValueError(f"lora.full_modules {prefixes} match no parameter")
    return params


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
