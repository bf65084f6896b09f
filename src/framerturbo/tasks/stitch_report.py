"""``stitch --report``: hand metrics of every generated transition, beside the joined video.

Per transition, for the method the stitch ran (Framer, with or without hand control), the other
one (the same transition generated again for the report, so both Framer rows sit side by side)
and, on the very same endpoints, hard cut, cross-fade and optical flow (cheap, no model): the share of
(frame, hand) slots in which a hand is found in the transition's frames — next to the same share
in the clips' own frames — and the jerk of the hand paths through the transition with
:data:`CONTEXT` real frames of each clip around it. Hands in generated frames are found by the
synthetic signer's hand finder (``--landmarks ground-truth``) or MediaPipe (``eval/hands.py``).
Writes ``OUT.metrics.json`` and ``OUT.report.html``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.jsonout import strict_json
from ..data.landmarks import PALM, ClipLandmarks
from ..eval import tables
from ..eval.baselines import crossfade, flow_interpolate, hard_cut
from ..eval.hands import (HAND_COLUMNS, MediaPipeHands, detection_rate, hand_finder,
                          is_ground_truth, nanmean, path_jerk, summarise, transition_scores)

CONTEXT = 3  # real frames each side: every third difference that touches a join is counted
OWN = "clips' own frames"


@dataclass
class Join:
    """One transition as the stitch made it."""
    a: np.ndarray  # clip A's frames (after trimming)
    b: np.ndarray  # clip B's frames
    marks_a: ClipLandmarks
    marks_b: ClipLandmarks
    middle: np.ndarray  # the generated frames between A's last and B's first
    names: tuple[str, str] = ("", "")  # the two clips
    other: np.ndarray | None = None  # the same transition by the other Framer row (report only)


def method_label(control: str) -> str:
    return "framer + hand control" if control == "hands" else "framer (no control)"


def other_label(control: str) -> str:
    """The Framer row the stitch did not put in the video, generated for the comparison."""
    return method_label("none" if control == "hands" else "hands")


def score_join(join: Join, method: str, source: str, fps: float = 8.0,
               mediapipe=None, other: str | None = None) -> dict[str, dict]:
    """The scores of one transition: the stitch's ``method`` (and the ``other`` Framer row,
    when the join carries it), the baselines on its endpoints and the clips' own frames
    (:data:`OWN`)."""
    start, end = join.a[-1], join.b[0]
    n = len(join.middle)
    videos = {method: join.middle} | (
        {other: join.other} if other and join.other is not None else {})
    videos |= {"hard cut": hard_cut(start, end, n + 2)[1:-1],
              "crossfade": crossfade(start, end, n + 2)[1:-1],
              "flow": flow_interpolate(start, end, n + 2)[1:-1]}
    finder = hand_finder(source, mediapipe)
    before = join.marks_a.hands[-CONTEXT:, :, PALM]
    after = join.marks_b.hands[:CONTEXT, :, PALM]
    out = {label: transition_scores(finder.detect(video, fps), before, after)
           for label, video in videos.items()}
    if is_ground_truth(source):  # the clips seen by the same finder as the transitions
        own = [finder.detect(join.a, fps), finder.detect(join.b, fps)]
    else:  # MediaPipe's landmarks of the clips are what it finds in them
        own = [join.marks_a, join.marks_b]
    out[OWN] = {"detect": detection_rate(np.concatenate([m.hand_conf for m in own])),
                "jerk": nanmean([path_jerk(m.hands[:, :, PALM]) for m in own])}
    return out


def write_stitch_report(joins: list[Join], control: str, source: str, out: str | Path,
                        fps: float) -> tuple[Path, Path]:
    """``out``.metrics.json (per transition and the means) and ``out``.report.html."""
    from ..core.atomic import atomic_file

    method = method_label(control)
    mediapipe = None if is_ground_truth(source) else MediaPipeHands()
    scores = [score_join(j, method, source, fps, mediapipe, other_label(control))
              for j in joins]
    labels = list(scores[0]) if scores else []
    per_join = [{label: summarise([s[label]]) for label in labels} for s in scores]
    means = {label: summarise([s[label] for s in scores]) for label in labels}
    doc = {"landmarks": source, "method": method, "context_frames": CONTEXT, "rows": means,
           "transitions": [{"index": i + 1, "from": j.names[0], "to": j.names[1],
                            "frames": len(j.middle), "rows": rows}
                           for i, (j, rows) in enumerate(zip(joins, per_join))]}
    out = Path(out)
    metrics = out.with_name(out.name + ".metrics.json")
    with atomic_file(metrics) as tmp:
        tmp.write_text(strict_json(doc))
    columns = [c for c in HAND_COLUMNS if any(c[0] in r for r in means.values())]
    columns.append(("n_transitions", "transitions", ""))
    parts = [f"<p>{len(joins)} transitions of {html.escape(out.name)} by {method}; hands from "
             f"{html.escape(source)} landmarks; jerk with {CONTEXT} real frames each side "
             "(docs/sign-language.md).</p>", "<h2>All transitions (means)</h2>",
             tables.html_table(means, columns)]
    for t in doc["transitions"]:
        title = f"Transition {t['index']}: {t['from']} → {t['to']} ({t['frames']} frames)"
        parts += [f"<h2>{html.escape(title)}</h2>", tables.html_table(t["rows"], columns[:-1])]
    page = tables.write_page(out.with_name(out.name + ".report.html"),
                             "Stitch report: hand metrics", parts)
    return metrics, page
