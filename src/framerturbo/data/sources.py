"""Where clips come from: folders of videos (recursive), frame-sequence folders, JSONL manifests.

Manifest lines (paths relative to the manifest)::

    {"path": "clips/a.mp4", "start": 12, "end": 80, "fps": 30, "tracks": "a.tracks.npz"}
    {"path": "clips/b.mp4", "start_time": 1.5, "end_time": 4.0}
    {"path": "frames/c/"}                      # a folder of frames

``start``/``end`` are frame numbers, ``start_time``/``end_time`` seconds; all optional. A video's
tracks default to ``<video>.tracks.npz`` next to it when that file exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..media.video import IMAGE_EXTS, VIDEO_EXTS


@dataclass
class ClipSource:
    path: Path
    start_time: float | None = None
    end_time: float | None = None
    start_frame: int | None = None
    end_frame: int | None = None
    fps: float | None = None  # overrides the container's rate (frame folders default to 25)
    tracks: Path | None = None

    @property
    def key(self) -> str:
        return (f"{self.path}|{self.start_time}|{self.end_time}|{self.start_frame}|"
                f"{self.end_frame}|{self.fps}")


def default_tracks_path(path: Path) -> Path:
    return path.with_name(path.name.rstrip("/") + ".tracks.npz")


def _with_tracks(src: ClipSource) -> ClipSource:
    if src.tracks is None and default_tracks_path(src.path).exists():
        src.tracks = default_tracks_path(src.path)
    return src


def read_manifest(path: Path) -> list[ClipSource]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            rel = Path(item["path"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"{path}:{n}: expected a JSON object with a \"path\" — see "
                             "docs/data-preparation.md") from None
        if not isinstance(item, dict):
            raise ValueError(f"{path}:{n}: expected a JSON object")
        tracks = item.get("tracks")
        out.append(_with_tracks(ClipSource(
            path=rel if rel.is_absolute() else path.parent / rel,
            start_time=item.get("start_time"), end_time=item.get("end_time"),
            start_frame=item.get("start"), end_frame=item.get("end"), fps=item.get("fps"),
            tracks=(path.parent / tracks) if tracks else None)))
    return out


def _is_frame_folder(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTS for p in folder.iterdir() if p.is_file())


def check_source_exists(path: str | Path) -> Path:
    """A data source path that exists, else one error naming it and what it should be."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: data source not found — check the path (a clip folder, "
                         "a video or a .jsonl manifest)")
    return path


def discover(paths: list[str | Path]) -> list[ClipSource]:
    """All clip sources under the given folders/manifests/files, in a stable order."""
    found: list[ClipSource] = []
    for raw in paths:
        path = check_source_exists(raw)
        if path.is_file() and path.suffix == ".jsonl":
            found += read_manifest(path)
        elif path.is_file():
            found.append(_with_tracks(ClipSource(path)))
        elif _is_frame_folder(path) and not any(
                p.suffix.lower() in VIDEO_EXTS for p in path.iterdir()):
            found.append(_with_tracks(ClipSource(path)))
        else:
            for p in sorted(path.rglob("*")):
                if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
                    found.append(_with_tracks(ClipSource(p)))
                elif p.is_dir() and _is_frame_folder(p):
                    found.append(_with_tracks(ClipSource(p)))
    return found
