"""The training configuration: one typed object, loaded from TOML plus ``section.key=value``
overrides, validated with messages that name the key and the fix.

Every knob has a default here; the package's ``configs/`` holds complete examples, addressable
by name (``--config micro-lora``). ``framerturbo train --config C
--print-config`` prints the resolved configuration.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from .settings import DataConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# the lever choices (models/levers.py applies them; the CLI and this config offer them)
ATTENTION = ("sdpa", "xformers")
OFFLOAD = ("none", "vae", "model", "sequential")
# experiment trackers accelerate's tracker API offers (train.report_to; train/trackers.py)
TRACKERS = ("tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive",
            "swanlab", "trackio")


class ConfigError(ValueError):
    """A bad configuration value; the message names the key and the fix."""


@dataclass
class ModelConfig:
    pretrained: str = "micro"  # Framer folder / Hub id; micro (embedded) or random-micro
    svd: str = ""  # SVD-xt folder / Hub id when `pretrained` lacks vae/, image_encoder/
    base_dtype: str = "fp32"  # frozen weights: fp32, bf16 or fp16 (trainable weights stay fp32)
    attention: str = "sdpa"  # sdpa (PyTorch fused attention) | xformers (when installed)


@dataclass
class ObjectiveConfig:
    p_mean: float = 0.7  # σ ~ LogNormal(p_mean, p_std)
    p_std: float = 1.6
    cond_aug_mean: float = -3.0  # σ_c ~ LogNormal(mean, std), pixel-space endpoint noise
    cond_aug_std: float = 0.5
    conditioning_dropout: float = 0.1  # p: tokens dropped if r<2p, endpoints if p<=r<3p
    loss_frames: str = "all"  # all | middle
    still_clips: float = 0.0  # share of samples held still on their start frame (objective.py)
    # diffusion: EDM v-loss (`train`); consistency: latent consistency distillation of the
    # frozen base into the LoRA (`distill`, settings in [distill]; train/consistency.py)
    kind: str = "diffusion"


@dataclass
class DistillConfig:
    """Latent consistency distillation (``objective.kind = "consistency"``, docs/turbo.md)."""

    num_sigmas: int = 40  # N: points of the teacher's Karras σ grid (σ_max → σ_min)
    sigma_min: float = 0.002  # the boundary: f(x, σ_min) = x
    sigma_max: float = 700.0
    rho: float = 7.0
    skip: int = 1  # k: teacher ODE steps per consistency step (σ_{n+k} → σ_n on the grid)
    solver: str = "euler"  # euler | heun: the teacher's ODE step (euler = the `euler` sampler)
    # the teacher's per-frame CFG ramp, first → last frame; 0 and 0 = the base model's own (its
    # framerturbo.json, as `interpolate` samples it; Framer's 1 → 3). A max <= 1: no guidance
    min_guidance: float = 0.0
    max_guidance: float = 0.0
    middle_max_guidance: bool = False
    target_ema: float = 0.95  # EMA decay of the target's LoRA weights; 0 = stop-gradient online
    huber_c: float = 0.00054  # pseudo-Huber c per √dim: sqrt(mean(d²) + c²) − c (iCT's value)
    track_fraction: float = 0.5  # share of batches that feed their tracks to the ControlNet
    steps: int = 4  # the sampling steps the LoRA's turbo.json recommends
    # adversarial refinement (SF-V / OSV style, train/adversarial.py): λ of the hinge generator
    # loss on the student's estimate, judged by heads on the frozen base UNet's encoder; 0 = off
    adversarial_weight: float = 0.0
    # which estimate the discriminator judges: "grid" = the student's consistency estimate at the
    # step's grid σ (every noise level); "max" = one more student pass from σ_max, the 1-step
    # sample itself (SF-V / OSV's generator)
    adversarial_on: str = "grid"
    disc_lr: float = 1e-4  # the discriminator heads' AdamW learning rate
    disc_width: int = 64  # channels of each head
    disc_p_mean: float = -1.0  # σ_d ~ LogNormal(mean, std): noise on real and generated latents
    disc_p_std: float = 1.0  # before the frozen encoder reads them
    r1_weight: float = 1.0  # approximate R1: mean (D(x₀ + σ_r·n) − D(x₀))² on real latents
    r1_sigma: float = 0.05


@dataclass
class LoraConfig:
    mode: str = "lora"  # lora | full | none (UNet frozen: train only the ControlNet)
    preset: str = "attn"  # attn | framer | attn+ff | turbo | attn+ff+conv | custom
    targets: list[str] = field(default_factory=list)  # module-name suffixes or a regex (custom)
    rank: int = 64
    alpha: float = 64.0
    dropout: float = 0.0
    full_modules: list[str] = field(default_factory=list)  # name prefixes for mode=full (all)


@dataclass
class ControlConfig:
    use: bool = False  # feed trajectory heat-maps through the ControlNet while training
    train: str = "none"  # none | lora | full
    min_tracks: int = 1
    max_tracks: int = 10
    # the ControlNet's strength while training, validating and as the distillation teacher: 1,
    # as trained. A model record's control_scale (micro: 2) is a sampling-time choice, made
    # after training on tuning clips (docs/sign-language.md), not a training condition
    scale: float = 1.0
    # a model without controlnet/ gets a new one copied from its UNet's encoder (zero outputs),
    # with this heat-map embedding (the released layout's by default)
    embedding_channels: list[int] = field(default_factory=lambda: [16, 32, 96, 256])
    # heat-map Gaussian σ and cut-off radius in pixels; 0 = the model's ControlNet's (its
    # config.json), else the released 8 / 20. A new ControlNet records what it is trained on.
    heatmap_sigma: float = 0.0
    heatmap_radius: float = 0.0


@dataclass
class TrainConfig:
    output_dir: str = "runs/framer-lora"
    seed: int = 0
    max_steps: int = 1000
    batch_size: int = 1
    grad_accum: int = 1
    lr: float = 1e-4
    lr_scheduler: str = "constant_with_warmup"  # any diffusers get_scheduler name
    warmup_steps: int = 0
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # no | bf16 | fp16
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile the UNet (slow first steps, faster after)
    use_8bit_adam: bool = False  # bitsandbytes on CUDA only
    ema_decay: float = 0.0  # 0 = off
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    on_nan: str = "stop"  # stop | skip
    # experiment trackers through accelerate (TRACKERS); metrics.jsonl is always written
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])


@dataclass
class ValidationConfig:
    every: int = 0  # steps between validations (0 = only at the end)
    sigmas: list[float] = field(default_factory=lambda: [0.1, 1.0, 10.0])
    sample: bool = True  # also sample the middle frames and report PSNR/SSIM
    # how those samples are drawn; left empty, as the base model samples by default (its
    # framerturbo.json: sampler, steps, guidance ramp), so val/psnr is what `evaluate` reports
    sampler: str = ""
    steps: int = 0  # 0: the model's steps with its own sampler, else the sampler's default
    guidance: list[float] = field(default_factory=list)  # [first frame's, last frame's]


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        lines = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
            lines.append("")
        return "\n".join(lines)


CHOICES = {
    "model.base_dtype": ("fp32", "bf16", "fp16"),
    "model.attention": ATTENTION,
    "data.sampling": ("random", "uniform", "every-window"),
    "data.resize": ("crop", "squash"),
    "objective.loss_frames": ("all", "middle"),
    "objective.kind": ("diffusion", "consistency"),
    "distill.solver": ("euler", "heun"),
    "distill.adversarial_on": ("grid", "max"),
    "lora.mode": ("lora", "full", "none"),
    "lora.preset": ("attn", "framer", "attn+ff", "turbo", "attn+ff+conv", "custom"),
    "control.train": ("none", "lora", "full"),
    "train.mixed_precision": ("no", "bf16", "fp16"),
    "train.on_nan": ("stop", "skip"),
}


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" — did you mean {close[0]!r}?" if close else f" — valid keys: {', '.join(options)}"


def _coerce(key: str, value: Any, annotation) -> Any:
    origin = get_origin(annotation)
    if origin is list:
        if isinstance(value, str):  # from a key=value override: JSON list or comma list
            try:
                value = json.loads(value) if value.strip().startswith("[") else \
                    [v for v in value.split(",") if v]
            except json.JSONDecodeError:
                raise ConfigError(f"{key}: {value!r} is not a list — write [\"a\", \"b\"] or "
                                  "a,b") from None
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r} — write [a, b]")
        (item,) = get_args(annotation)
        return [_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if annotation in (int, float):
        if isinstance(value, str):
            try:
                value = annotation(value) if annotation is float else int(value)
            except ValueError:
                raise ConfigError(f"{key}: expected {'an integer' if annotation is int else 'a number'}"
                                  f", got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                annotation is int and isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{key}: expected {'an integer' if annotation is int else 'a number'}"
                              f", got {value!r}")
        return annotation(value)
    if annotation is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def _apply(section_obj, section: str, values: dict) -> None:
    hints = get_type_hints(type(section_obj))
    for key, value in values.items():
        full = f"{section}.{key}"
        if key not in hints:
            raise ConfigError(f"unknown key {full!r}" + _suggest(key, hints))
        value = _coerce(full, value, hints[key])
        if full in CHOICES and value not in CHOICES[full]:
            raise ConfigError(f"{full}: {value!r} is not one of {', '.join(CHOICES[full])}")
        setattr(section_obj, key, value)


def parse_override(text: str) -> tuple[str, str, str]:
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} must look like section.key=value "
                          "(e.g. train.lr=5e-5)")
    key, value = text.split("=", 1)
    section, name = key.strip().split(".", 1)
    return section, name, value.strip()


SHIPPED = Path(__file__).resolve().parents[1] / "configs"  # framerturbo/configs/


def shipped_configs() -> list[str]:
    """Names of the example configs shipped with the package (``micro-lora``, …)."""
    return sorted(str(p.relative_to(SHIPPED).with_suffix("")) for p in SHIPPED.rglob("*.toml"))


def config_path(name: str | Path) -> Path:
    """A TOML path, a run folder (its ``config.toml``), or a shipped config's name."""
    path = Path(name)
    if path.is_dir() and (path / "config.toml").is_file():
        return path / "config.toml"
    if path.is_file():
        return path
    rel = Path(*path.parts[1:]) if path.parts[:1] == ("configs",) else path  # old checkout paths
    shipped = SHIPPED / rel.with_suffix(".toml")
    if not path.is_absolute() and shipped.is_file():
        return shipped
    raise ConfigError(f"{name}: config file not found — give a TOML path, a run folder, or one "
                      f"of the shipped configs: {', '.join(shipped_configs())}")


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Defaults ← TOML file (a path, run folder or shipped name) ← overrides; then cross-field
    validation."""
    cfg = Config()
    sections = {f.name: f for f in dataclasses.fields(Config)}
    doc: dict = {}
    if path is not None:
        path = config_path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found — check the path") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: invalid TOML ({e})") from None
    for section, values in doc.items():
        if section not in sections:
            raise ConfigError(f"unknown section [{section}]" + _suggest(section, sections))
        if not isinstance(values, dict):
            raise ConfigError(f"{section} must be a [section] table")
        _apply(getattr(cfg, section), section, values)
    for text in overrides:
        section, key, value = parse_override(text)
        if section not in sections:
            raise ConfigError(f"unknown section {section!r} in {text!r}" + _suggest(section, sections))
        _apply(getattr(cfg, section), section, {key: value})
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    d, t = cfg.data, cfg.train
    if d.num_frames < 3:
        raise ConfigError("data.num_frames must be at least 3 (two endpoints + one generated)")
    for key in ("height", "width"):
        if getattr(d, key) <= 0 or getattr(d, key) % 64:
            raise ConfigError(f"data.{key} must be a positive multiple of 64, got "
                              f"{getattr(d, key)}")
    if d.stride < 1:
        raise ConfigError("data.stride must be >= 1")
    if not 0 <= d.window_overlap < d.num_frames - 1:
        raise ConfigError(f"data.window_overlap must be in [0, num_frames - 1) = "
                          f"[0, {d.num_frames - 1}), got {d.window_overlap}")
    if d.motion_bucket != "auto":
        _coerce("data.motion_bucket", d.motion_bucket, float)
    if d.fps_id != "data":
        _coerce("data.fps_id", d.fps_id, float)
    if d.aug_variants < 1:
        raise ConfigError("data.aug_variants must be >= 1")
    if d.cache_shard_size < 1:
        raise ConfigError("data.cache_shard_size must be >= 1")
    if d.bucket_multiple < 8 or d.bucket_multiple % 8:
        raise ConfigError(f"data.bucket_multiple must be a positive multiple of 8 (the VAE's "
                          f"factor; 64 for Framer), got {d.bucket_multiple}")
    if d.bucket_pixels and d.bucket_pixels < d.bucket_multiple ** 2:
        raise ConfigError(f"data.bucket_pixels must hold at least one {d.bucket_multiple}×"
                          f"{d.bucket_multiple} frame (or be 0 = height × width), got "
                          f"{d.bucket_pixels}")
    for f in d.bucket_frames:
        if f < 3 or d.window_overlap >= f - 1:
            raise ConfigError(f"data.bucket_frames: {f} must be >= 3 and leave a new frame after "
                              f"data.window_overlap = {d.window_overlap}")
    from diffusers.optimization import SchedulerType  # (its names, checked before any loading)

    schedules = [s.value for s in SchedulerType]
    if t.lr_scheduler not in schedules:
        raise ConfigError(f"train.lr_scheduler: {t.lr_scheduler!r} is not a schedule"
                          + _suggest(t.lr_scheduler, schedules).replace("valid keys", "choices"))
    positive = {"train.max_steps": t.max_steps, "train.batch_size": t.batch_size,
                "train.grad_accum": t.grad_accum, "train.checkpoint_every": t.checkpoint_every,
                "train.keep_checkpoints": t.keep_checkpoints, "train.log_every": t.log_every,
                "lora.rank": cfg.lora.rank}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}")
    if not t.lr > 0:  # torch said "Invalid learning rate" only once the models had loaded
        raise ConfigError(f"train.lr must be > 0, got {t.lr}")
    if not 0 <= cfg.objective.conditioning_dropout <= 1 / 3:
        raise ConfigError("objective.conditioning_dropout must be in [0, 1/3]")
    if not 0 <= cfg.objective.still_clips < 1:
        raise ConfigError("objective.still_clips must be in [0, 1)")
    if cfg.objective.still_clips and cfg.objective.kind != "diffusion":
        raise ConfigError("objective.still_clips is a training option: the distillation "
                          "(objective.kind = consistency) does not use it — remove it")
    if not 0 <= t.ema_decay < 1:
        raise ConfigError("train.ema_decay must be in [0, 1)")
    if cfg.lora.preset == "custom" and not cfg.lora.targets and cfg.lora.mode == "lora":
        raise ConfigError("lora.preset = 'custom' needs lora.targets")
    if cfg.lora.mode == "none" and cfg.control.train == "none":
        raise ConfigError("lora.mode = 'none' trains nothing unless control.train is set")
    if cfg.control.train != "none" and not cfg.control.use:
        raise ConfigError("control.train needs control.use = true (tracks must feed the "
                          "ControlNet to train it)")
    if t.report_to == ["none"]:  # transformers' spelling of "no tracker"
        t.report_to = []
    for name in t.report_to:
        if name not in TRACKERS:
            close = difflib.get_close_matches(name, TRACKERS, n=1)
            raise ConfigError(f"train.report_to: {name!r} is not a tracker"
                              + (f" — did you mean {close[0]!r}?" if close else "")
                              + f" (choices: {', '.join(TRACKERS)}, or none)")
    if not 1 <= cfg.control.min_tracks <= cfg.control.max_tracks:
        raise ConfigError("control.min_tracks must be >= 1 and <= control.max_tracks")
    if cfg.control.heatmap_sigma < 0 or cfg.control.heatmap_radius < 0:
        raise ConfigError("control.heatmap_sigma and heatmap_radius must be >= 0 (0: the "
                          "model's ControlNet's)")
    g = cfg.validation.guidance
    if g and (len(g) != 2 or min(g) <= 0):
        raise ConfigError(f"validation.guidance must be [first frame's, last frame's] positive "
                          f"scales, or [] for the model's own; got {g}")
    if cfg.validation.steps < 0:
        raise ConfigError("validation.steps must be >= 0 (0: the model's own)")
    if cfg.objective.kind == "consistency":
        validate_distill(cfg)


def validate_distill(cfg: Config) -> None:
    """The distillation's teacher is the frozen base (the student's UNet with its LoRA off),
    so only a UNet LoRA may train."""
    s = cfg.distill
    if cfg.lora.mode != "lora" or cfg.control.train != "none":
        raise ConfigError("distillation trains a UNet LoRA over the frozen base (the teacher) — "
                          "set lora.mode = \"lora\" and control.train = \"none\"")
    if s.num_sigmas < 2:
        raise ConfigError(f"distill.num_sigmas must be >= 2, got {s.num_sigmas}")
    if not 1 <= s.skip < s.num_sigmas:
        raise ConfigError(f"distill.skip must be in [1, num_sigmas) = [1, {s.num_sigmas}), "
                          f"got {s.skip}")
    if not 0 < s.sigma_min < s.sigma_max:
        raise ConfigError("distill.sigma_min must be > 0 and < distill.sigma_max")
    if not 0 <= s.target_ema < 1:
        raise ConfigError("distill.target_ema must be in [0, 1) (0 = stop-gradient online)")
    if s.huber_c < 0:
        raise ConfigError("distill.huber_c must be >= 0 (0 = plain L2 distance)")
    if not 0 <= s.track_fraction <= 1:
        raise ConfigError("distill.track_fraction must be in [0, 1]")
    if s.steps < 1:
        raise ConfigError("distill.steps must be >= 1")
    if min(s.min_guidance, s.max_guidance) < 0 or (s.min_guidance == 0) != (s.max_guidance == 0):
        raise ConfigError("distill.min_guidance and max_guidance: set both (> 0), or leave both "
                          f"at 0 for the model's own ramp; got {s.min_guidance} and "
                          f"{s.max_guidance}")
    if s.adversarial_weight < 0 or s.r1_weight < 0 or s.r1_sigma < 0:
        raise ConfigError("distill.adversarial_weight, r1_weight and r1_sigma must be >= 0")
    if s.adversarial_weight > 0 and (s.disc_lr <= 0 or s.disc_width < 1 or s.disc_p_std < 0):
        raise ConfigError("distill.disc_lr and disc_width must be positive and disc_p_std >= 0")
