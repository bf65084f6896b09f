"""The run's facts for its model card (``RUN/card.json``) and the cards themselves: the run
folder, ``lora/`` / ``controlnet_lora/`` and ``model/`` each get a README.md (``models/card.py``),
and ``framerturbo export`` re-renders the facts for its outputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..core.atomic import atomic_file
from ..core.config import Config
from ..models.card import write_card
from .consistency import turbo_info
from .metrics_log import read_log

FACTS_FILE = "card.json"


def data_summary(dataset) -> dict | None:
    """Clip and file counts, total seconds, source sizes, source and sampled fps of a
    ClipDataset (or the cache's view of one)."""
    if dataset is None:
        return None
    clips = len(dataset)
    dataset = getattr(dataset, "dataset", dataset)  # CachedClipDataset → its ClipDataset
    refs = list(getattr(dataset, "items", []))
    files = {str(r.source.path): r for r in refs}
    return {"clips": clips, "files": len(files),
            "skipped": len(getattr(getattr(dataset, "skipped", None), "reasons", {})),
            "seconds": float(sum(r.span.end - r.span.start for r in files.values())),
            "sizes": dict(Counter(f"{w}x{h}" for w, h in (r.size for r in files.values()))),
            "fps": dict(Counter(f"{r.span.fps:g}" for r in files.values())),
            "sampled_fps": dict(Counter(f"{1 / r.step:.3g}" for r in refs if r.step > 0))}


def last_metrics(run_dir: Path) -> dict:
    """The last value of every number in metrics.jsonl (loss, lr, val/…)."""
    out: dict = {}
    for row in read_log(run_dir):
        out |= {k: v for k, v in row.items() if isinstance(v, (int, float))
                and not isinstance(v, bool) and k != "step"
                and (k in ("loss",) or k.startswith("val/"))}
    return out


def facts(cfg: Config, run_dir: Path, step: int, train_set, val_set, world: int = 1,
          parameters: int | None = None) -> dict:
    d, t, lo = cfg.data, cfg.train, cfg.lora
    evaluation = run_dir / "eval.json"
    return {
        "title": run_dir.resolve().name, "base_model": cfg.model.pretrained, "svd": cfg.model.svd,
        "training": {"mode": lo.mode, "preset": lo.preset, "rank": lo.rank, "alpha": lo.alpha,
                     "parameters": parameters, "control": cfg.control.train, "steps": step,
                     "max_steps": t.max_steps, "lr": t.lr, "lr_scheduler": t.lr_scheduler,
                     "effective_batch": t.batch_size * t.grad_accum * world, "seed": t.seed,
                     "ema_decay": t.ema_decay, "mixed_precision": t.mixed_precision,
                     "objective": cfg.objective.kind},
        **({"distillation": turbo_info(cfg)} if cfg.objective.kind == "consistency" else {}),
        "data": {"train": data_summary(train_set), "validation": data_summary(val_set),
                 "sources": list(d.sources), "validation_sources": list(d.validation_sources),
                 "settings": {k: getattr(d, k) for k in ("num_frames", "height", "width",
                                                         "stride", "target_fps", "sampling",
                                                         "resize")}},
        "metrics": last_metrics(run_dir),
        "evaluation": json.loads(evaluation.read_text()) if evaluation.is_file() else None}


def write_run_cards(run_dir: Path, run_facts: dict) -> None:
    """card.json + the run folder's README.md + one in each product folder."""
    with atomic_file(run_dir / FACTS_FILE) as tmp:
        tmp.write_text(json.dumps(run_facts, indent=1))
    full = not (run_dir / "lora").is_dir() and (run_dir / "model").is_dir()
    write_card(run_dir, run_facts, "model" if full else "run",
               str(run_dir / "model") if full else str(run_dir))
    for sub, kind in (("lora", "lora"), ("controlnet_lora", "lora"), ("model", "model")):
        if (run_dir / sub).is_dir():
            write_card(run_dir / sub, run_facts, kind, str(run_dir / sub))


def read_facts(folder: Path) -> dict:
    """The facts of the run a LoRA folder (or run folder) came from; {} if there are none."""
    for candidate in (folder, folder.parent):
        if (candidate / FACTS_FILE).is_file():
            return json.loads((candidate / FACTS_FILE).read_text())
    return {}
