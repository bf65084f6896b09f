"""Glosses → clips: the lexicon lookup behind `framerturbo sentence`.

A lexicon is a folder of clips named by gloss (``HELLO.mp4``, matched case-insensitively; a
``lexicon.jsonl`` inside it is read too) or a JSONL file of ``{"gloss": "HELLO", "path":
"clips/hello_003.mp4"}`` lines (paths relative to the file). The first entry of a gloss wins.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..media.video import VIDEO_EXTS


def read_lexicon(lexicon: str | Path) -> dict[str, Path]:
    """GLOSS (upper case) → clip path."""
    lexicon = Path(lexicon)
    entries: dict[str, Path] = {}
    if lexicon.is_dir():
        for path in sorted(lexicon.iterdir()):
            if path.is_file() and path.suffix.lower() in VIDEO_EXTS:
                entries.setdefault(path.stem.upper(), path)
        listing = lexicon / "lexicon.jsonl"
        if listing.is_file():
            for gloss, path in _read_jsonl(listing).items():
                entries.setdefault(gloss, path)
    elif lexicon.is_file():
        entries = _read_jsonl(lexicon)
    else:
        raise ValueError(f"{lexicon}: no such lexicon — give a folder of GLOSS.mp4 clips or a "
                         ".jsonl of {\"gloss\", \"path\"} lines")
    return entries


def _read_jsonl(path: Path) -> dict[str, Path]:
    entries: dict[str, Path] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            gloss, clip = str(item["gloss"]).upper(), Path(item["path"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}:{number}: not a {{\"gloss\": …, \"path\": …}} line") \
                from None
        entries.setdefault(gloss, clip if clip.is_absolute() else path.parent / clip)
    return entries


def resolve_glosses(glosses: str | list[str], lexicon: str | Path) -> list[Path]:
    """The clip of every gloss, in order; one error naming every gloss the lexicon lacks."""
    words = glosses.split() if isinstance(glosses, str) else list(glosses)
    if not words:
        raise ValueError("no glosses given")
    entries = read_lexicon(lexicon)
    unknown = list(dict.fromkeys(w for w in words if w.upper() not in entries))
    if unknown:
        raise ValueError(f"{lexicon}: unknown gloss{'es' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)} — add a clip named after each (GLOSS.mp4) or a "
                         "lexicon.jsonl line")
    clips = [entries[w.upper()] for w in words]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        raise ValueError(f"{lexicon}: lexicon clips not found: {', '.join(missing)}")
    return clips
