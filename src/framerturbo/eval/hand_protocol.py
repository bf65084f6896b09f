"""The held-out synthetic signer protocol of ``framerturbo hand-eval``: transitions cut from
continuous synthetic signing, every method's hands scored (``hands.py``), one report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.jsonout import strict_json
from ..data.landmarks import PALM
from ..models.record import FRAMER_GUIDANCE
from .baselines import hard_cut
from . import tables
from .hands import HAND_COLUMNS, REAL, hand_finder, summarise, transition_scores

ROWS = ("hard cut", "crossfade", "flow", "framer (no control)", "framer + hand control",
        "framer + true tracks")
#: The oracle row: the hand plan with every path replaced by the true path of its joint. It
#: bounds what hand control can gain with perfect paths — below it the ControlNet, not the
#: plan, is the limit.
ORACLE = ROWS[-1]


def signer_transitions(seeds, num_frames: int = 9, context: int = 3, size: int = 64):
    """Held-out transitions cut from continuous synthetic signing: per seed the real window of
    ``num_frames`` (its middle is the truth), ``context`` real frames on each side (the clips
    A and B end/start there), the world's joints as landmarks and the renderer's joint
    positions (in view or not)."""
    from ..data.landmarks import from_signer_tracks
    from ..data.synthetic import render_signer

    for seed in seeds:
        clip = render_signer(seed, num_frames + 2 * context, size)
        marks = from_signer_tracks(clip.tracks, (size, size), 8.0)
        yield seed, clip.frames, marks, clip.tracks


def evaluate_hand_transitions(pipe, seeds, *, num_frames: int = 9, context: int = 3,
                              sampler: str = "dpm++", steps: int = 12, control_scale: float = 1.0,
                              guidance: tuple[float, float] = FRAMER_GUIDANCE, fps: float = 8.0,
                              motion_bucket: int = 100, keep_static: float | None = None) -> dict:
    """Every row of :data:`ROWS` on every seed's transition; hand metrics per row (means over
    transitions), and the same for the real frames (the finder's own floor). ``keep_static``:
    the pipeline's τ (None: the model record's)."""
    import torch

    from ..data.handpaths import hand_tracks
    from ..media.files import to_uint8
    from .baselines import crossfade, flow_interpolate

    per_row: dict[str, list[dict]] = {r: [] for r in (*ROWS, REAL)}
    finder = hand_finder("synthetic")
    for seed, frames, marks, joints in signer_transitions(seeds, num_frames, context):
        lo, hi = context, context + num_frames - 1  # the window's endpoints
        start, end = frames[lo], frames[hi]
        videos = {"hard cut": hard_cut(start, end, num_frames),
                  "crossfade": crossfade(start, end, num_frames),
                  "flow": flow_interpolate(start, end, num_frames)}
        common = dict(num_frames=num_frames, height=start.shape[0], width=start.shape[1],
                      num_inference_steps=steps, sampler=sampler, fps=fps,
                      min_guidance_scale=guidance[0], max_guidance_scale=guidance[1],
                      motion_bucket_id=motion_bucket, keep_static=keep_static,
                      output_type="np")
        out = pipe(start, end, generator=torch.Generator().manual_seed(seed), **common)
        videos["framer (no control)"] = to_uint8(out.frames[0])
        plan = hand_tracks(marks.slice(0, lo + 1), marks.slice(hi, len(marks)),
                           num_frames - 2)
        tracks = np.stack([t.points for t in plan.tracks.tracks], 1) if plan.tracks.tracks \
            else None
        out = pipe(start, end, generator=torch.Generator().manual_seed(seed), tracks=tracks,
                   control_scale=control_scale, **common)
        videos["framer + hand control"] = to_uint8(out.frames[0])
        out = pipe(start, end, generator=torch.Generator().manual_seed(seed),
                   tracks=true_hand_tracks(plan, joints[lo:hi + 1]),
                   control_scale=control_scale, **common)
        videos[ORACLE] = to_uint8(out.frames[0])
        videos[REAL] = frames[lo:hi + 1]  # the same finder on the real frames: its own floor
        for row, scores in score_window(finder, videos, marks, lo, hi).items():
            per_row[row].append(scores)
    rows = {row: summarise(scores) for row, scores in per_row.items()}
    real = rows.pop(REAL)
    return {"rows": rows, "real": real, "real_detection_rate": real["hand_detection_rate"]}


def score_window(finder, videos: dict[str, np.ndarray], marks, lo: int, hi: int) -> dict:
    """Each video of the window ``lo``…``hi`` (both endpoints included) scored on its inner
    frames against the landmarks ``marks``, with the real context around it for the jerk."""
    truth = marks.take(slice(lo + 1, hi))
    present, palms = truth.hand_conf > 0, marks.hands[:, :, PALM]
    return {row: transition_scores(finder.detect(video[1:-1]), palms[:lo + 1], palms[hi:], truth,
                                   present) for row, video in videos.items()}


def true_hand_tracks(plan, joints: np.ndarray) -> np.ndarray | None:
    """(F, K, 2): for each of the hand plan's K tracks, the renderer's true path of its joint
    over the window ``joints`` (the signer's (F, 11, 2) positions); None when the plan has no
    track. The oracle thus steers exactly the joints the plan steers, with the paths right."""
    from ..data.landmarks import signer_joint_path

    paths = [signer_joint_path(joints, hand, joint) for hand, joint in plan.joints]
    return np.stack(paths, 1) if paths else None


def markdown_table(result: dict) -> str:
    return tables.markdown_table(result["rows"] | {REAL: result["real"]}, HAND_COLUMNS)


def write_report(result: dict, folder: str | Path) -> tuple[Path, Path]:
    """``folder``/metrics.json and ``folder``/report.html."""
    from ..core.atomic import atomic_file

    folder = Path(folder)
    with atomic_file(folder / "metrics.json") as tmp:
        tmp.write_text(strict_json(result))
    rows = result["rows"] | {REAL: result["real"]}
    n = result["real"]["n_transitions"]
    page = tables.write_page(folder / "report.html", "Hand metrics of transitions", [
        f"<p>{n} held-out synthetic signer transitions.</p>",
        tables.html_table(rows, HAND_COLUMNS), tables.html_conditions(result["conditions"])])
    return folder / "metrics.json", page
