"""Experiment trackers through accelerate (``train.report_to``): TensorBoard, W&B, MLflow, and
whatever else accelerate's tracker API offers.

Every tracker gets the same scalars as ``metrics.jsonl`` and the resolved config (flattened to
``section.key``); validation images go to the trackers that take images (TensorBoard, W&B) and
the validation GIF to those that take files or videos (W&B as a video, MLflow as an artifact).
TensorBoard keeps its place in the run folder (``tensorboard/``); a resumed run discards the
TensorBoard events after the checkpoint's step (``purge_step``), as ``metrics.jsonl`` does.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from ..core.config import Config, ConfigError
from .checkpoint import resolve_resume

logger = logging.getLogger(__name__)

PROJECT = "framerturbo"  # the W&B project / MLflow experiment (WANDB_PROJECT, MLFLOW_EXPERIMENT_NAME)
PACKAGES = {"comet_ml": "comet-ml", "aim": "aim", "clearml": "clearml", "dvclive": "dvclive",
            "swanlab": "swanlab", "trackio": "trackio", "wandb": "wandb", "mlflow": "mlflow",
            "tensorboard": "tensorboard"}


def check_trackers(names: list[str]) -> None:
    """Before anything loads: every tracker named must be installed (accelerate itself would
    drop a missing one silently)."""
    if not names:
        return
    from accelerate.tracking import get_available_trackers

    available = {str(t) for t in get_available_trackers()}
    for name in names:
        if name not in available:
            extra = " 'framerturbo[trackers]'" if name in ("wandb", "mlflow") else ""
            raise ConfigError(f"train.report_to names {name!r} but its package is not installed "
                              f"— pip install{extra or ' ' + PACKAGES.get(name, name)}, or drop "
                              f"it from train.report_to")
    if "wandb" in names:
        check_wandb_login()


def check_wandb_login() -> None:
    """W&B online needs an API key; without one its init fails with a traceback after the run
    folder is made. Read the key the way wandb does (env, settings, .netrc; no network)."""
    import os

    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return
    import wandb
    from wandb.apis.internal import Api

    try:
        found = Api().api_key or os.environ.get("WANDB_IDENTITY_TOKEN_FILE")
    finally:
        wandb.teardown()  # leave no W&B session behind: the run's own init starts afresh
    if not found:
        raise ConfigError("train.report_to names 'wandb' but W&B has no API key — run `wandb "
                          "login` (or set WANDB_API_KEY), or set WANDB_MODE=offline to log "
                          "locally")


def log_with(cfg: Config, run_dir: Path, resume: str | None) -> list:
    """``Accelerator(log_with=…)``: tracker names, TensorBoard as an instance so its events stay
    in ``RUN/tensorboard/`` (accelerate would add the project name below it)."""
    source = resolve_resume(run_dir, resume) if resume else None
    step = json.loads((source / "state.json").read_text())["step"] if source else 0
    out = []
    for name in cfg.train.report_to:
        if name == "tensorboard":
            from accelerate.tracking import TensorBoardTracker

            out.append(TensorBoardTracker("tensorboard", str(run_dir),
                                          **({"purge_step": step + 1} if step else {})))
        else:
            out.append(name)
    return out


def flat_config(cfg: Config) -> dict:
    """``section.key`` → value; lists as JSON text (TensorBoard's hparams and MLflow's params
    take only scalars)."""
    return {f"{section}.{key}": (json.dumps(v) if isinstance(v, (list, dict)) else v)
            for section, values in cfg.to_dict().items() for key, v in values.items()}


def start(accelerator, cfg: Config, run_dir: Path, step: int) -> Trackers | None:
    """``init_trackers`` with the resolved config; the run is named after its folder (a resumed
    one adds ``@step-N``: W&B drops steps below a resumed run's last, so it gets a new run)."""
    if not cfg.train.report_to:
        return None
    name = run_dir.resolve().name + (f"@step-{step}" if step else "")
    kwargs = {"wandb": {"name": name, **({} if os.environ.get("WANDB_DIR")
                                         else {"dir": str(run_dir)})},
              "mlflow": {"run_name": name}}
    project = os.environ.get("WANDB_PROJECT", PROJECT)
    accelerator.init_trackers(project, config=flat_config(cfg), init_kwargs=kwargs)
    return Trackers(accelerator)


class Trackers:
    """What :class:`~.metrics_log.MetricsLog` hands on: scalars to all, media where it fits."""

    def __init__(self, accelerator):
        self.accelerator = accelerator

    def log(self, step: int, scalars: dict, images: dict, files: dict) -> None:
        numbers = {k: v for k, v in scalars.items()
                   if isinstance(v, (int, float)) and math.isfinite(v)}
        if numbers:
            self.accelerator.log(numbers, step=step)
        for tracker in self.accelerator.trackers:
            try:
                _media(tracker, step, images, files)
            except Exception as e:  # a tracker's media hiccup must not stop training
                logger.warning("%s: could not log validation media (%s)", tracker.name, e)


def _media(tracker, step: int, images: dict, files: dict) -> None:
    if tracker.name == "tensorboard":
        for k, v in images.items():
            tracker.writer.add_image(k, v, step, dataformats="HWC")
        tracker.writer.flush()
    elif tracker.name == "wandb":
        import wandb

        media = {k: wandb.Image(v) for k, v in images.items()}
        media |= {k: wandb.Video(str(p), format="gif") for k, p in files.items()
                  if str(p).endswith(".gif")}
        if media:
            tracker.run.log(media, step=step)
    elif tracker.name == "mlflow":
        for p in files.values():
            tracker.log_artifact(str(p), artifact_path="samples")
