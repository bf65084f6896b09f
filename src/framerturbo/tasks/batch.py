"""Batch interpolation: many start/end pairs, resumable, one bad pair never stops the rest.

Pairs come from a folder (``{id}_start.*`` + ``{id}_end.*``, any of png/jpg/jpeg/webp/bmp, any
case) or a JSONL list (``{"start": …, "end": …, "tracks": …, "output": …}``, paths relative to
the list). Outputs are ``OUT/{id}.{mp4|gif}`` or ``OUT/{id}/`` PNG folders; existing outputs are
skipped, so re-running continues an interrupted batch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..media.video import IMAGE_EXTS


@dataclass
class Pair:
    id: str
    start: Path
    end: Path
    tracks: Path | None = None


@dataclass
class BatchSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        return (f"{len(self.done)} written, {len(self.skipped)} already there, "
                f"{len(self.failed)} failed")


_PAIR = re.compile(r"^(?P<id>.+)_(?P<role>start|end)$", re.IGNORECASE)


def discover_pairs(source: str | Path) -> tuple[list[Pair], list[str]]:
    """(pairs, problems) from a folder or a .jsonl list."""
    source = Path(source)
    if source.is_file():
        return _pairs_from_jsonl(source)
    if not source.is_dir():
        raise ValueError(f"{source}: not found — give a folder of {{id}}_start/{{id}}_end "
                         "images or a .jsonl list")
    found: dict[str, dict[str, Path]] = {}
    for p in sorted(source.iterdir()):
        m = _PAIR.match(p.stem)
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS and m:
            found.setdefault(m["id"], {})[m["role"].lower()] = p
    pairs, problems = [], []
    for pid, roles in sorted(found.items()):
        if set(roles) == {"start", "end"}:
            pairs.append(Pair(pid, roles["start"], roles["end"]))
        else:
            missing = ({"start", "end"} - set(roles)).pop()
            problems.append(f"{pid}: no {pid}_{missing} image")
    return pairs, problems


def _pairs_from_jsonl(path: Path) -> tuple[list[Pair], list[str]]:
    pairs, problems = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            start, end = path.parent / item["start"], path.parent / item["end"]
        except (json.JSONDecodeError, KeyError, TypeError):
            problems.append(f"{path}:{n}: needs a JSON object with \"start\" and \"end\"")
            continue
        pid = Path(item.get("output") or f"{Path(item['start']).stem}").stem
        tracks = path.parent / item["tracks"] if item.get("tracks") else None
        pairs.append(Pair(pid, start, end, tracks))
    return pairs, problems


def output_path(out_dir: Path, pair: Pair, fmt: str) -> Path:
    return out_dir / (pair.id if fmt == "png" else f"{pair.id}.{fmt}")


def run_batch(interpolate_one, pairs: list[Pair], out_dir: str | Path, fmt: str = "mp4",
              progress: bool = True) -> BatchSummary:
    """``interpolate_one(pair, out_path)`` does one pair; errors in it are recorded, not raised."""
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary()
    for pair in tqdm(pairs, desc="pairs", unit="pair", disable=not progress):
        target = output_path(out_dir, pair, fmt)
        if target.exists():
            summary.skipped.append(pair.id)
            continue
        try:
            interpolate_one(pair, target)
            summary.done.append(pair.id)
        except (ValueError, OSError) as e:
            summary.failed[pair.id] = str(e).splitlines()[0]
    return summary
