"""JSON that every reader accepts: Python writes a metric that could not be computed (NaN) or an
infinite one as the bare token ``NaN``/``Infinity``, which strict parsers (JavaScript's
``JSON.parse``, jq, most other languages) refuse; here they become ``null``, as "not measured"."""

from __future__ import annotations

import json
import math


def finite_or_none(value):
    """``value`` with every non-finite float inside it (dicts, lists, tuples) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def strict_json(doc, indent: int | None = 1) -> str:
    return json.dumps(finite_or_none(doc), indent=indent, allow_nan=False)
