"""Seeds derived from names, so every random choice is a function of (seed, what, where)."""

from __future__ import annotations

import zlib


def stable_seed(*parts) -> int:
    """A 63-bit seed from any parts (stable across processes, unlike ``hash``)."""
    return zlib.crc32(repr(parts).encode()) * 2654435761 % (2**63)
