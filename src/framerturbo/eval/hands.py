"""Hand metrics of transitions (used by ``evaluate --hand-metrics``, the ``stitch`` report and the
held-out signer protocol of ``hand-eval``, ``hand_protocol.py``).

Metrics (points in pixels; NaN = not found, skipped):

* ``detection_rate`` — the share of (frame, hand) pairs where a hand is found. Generated frames
  are compared with the real ones: hands that blur or ghost are not found.
* ``mean_joint_error`` (MJE) — mean Euclidean distance between predicted and true joints of the
  same frame.
* ``dtw_mje`` — MJE after dynamic time warping aligns the two sequences (cost of the best
  monotone alignment divided by its length), as in sign-production papers: a path that is right
  but early or late is not punished as hard as a wrong one.
* ``jerk`` — mean magnitude of the third difference of a hand path (px/frame³) over the
  transition with the clips' frames on both sides: stop-and-go and jumps at the joins show up.

In the synthetic ``signer`` world the hands in *generated* frames are found by the learned
finder of ``hand_net.py`` (a small heat-map net trained on the renderer's frames): the palm
centre of each hand, with the heat-map's peak as confidence; a blurred or half-faded (ghosted)
hand peaks low and counts as not found. It knows nothing of the clip it reads.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..data.landmarks import (PALM, SIGNER_TRUTH, ClipLandmarks, MediaPipeSource,
                              require_mediapipe)

# ----------------------------------------------------------------------------------- metrics
def detection_rate(conf: np.ndarray, expected: np.ndarray | None = None) -> float:
    """Share of (frame, hand) pairs with confidence > 0, over those ``expected`` (all)."""
    conf = np.asarray(conf)
    expected = np.ones(conf.shape, bool) if expected is None else np.asarray(expected, bool)
    return float(((conf > 0) & expected).sum() / max(expected.sum(), 1))


def _distances(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(pred, float) - np.asarray(true, float), axis=-1)


def mean_joint_error(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean distance over the joints known in both; (F, J, 2) each. NaN when none are."""
    d = _distances(pred, true)
    d = d[np.isfinite(d)]
    return float(d.mean()) if len(d) else float("nan")


def dtw_mje(pred: np.ndarray, true: np.ndarray) -> float:
    """DTW-aligned MJE: frame cost = MJE of the two frames; total cost of the best alignment
    over its number of steps."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    n, m = len(pred), len(true)
    cost = np.full((n, m), np.nan)
    for i in range(n):
        d = _distances(pred[i][None], true)  # (m, J)
        ok = np.isfinite(d)
        cost[i] = np.where(ok.any(1), np.nansum(np.where(ok, d, 0), 1) / np.maximum(ok.sum(1), 1),
                           np.nan)
    if np.isnan(cost).all():
        return float("nan")
    cost = np.where(np.isnan(cost), np.nanmax(cost), cost)  # unmatched frames: the worst cost
    total = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    total[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            moves = [(total[i - 1, j - 1], steps[i - 1, j - 1]), (total[i - 1, j], steps[i - 1, j]),
                     (total[i, j - 1], steps[i, j - 1])]
            best, count = min(moves, key=lambda x: (x[0], x[1]))
            total[i, j], steps[i, j] = best + cost[i - 1, j - 1], count + 1
    return float(total[n, m] / steps[n, m])


def jerk(path: np.ndarray) -> float:
    """Mean |third difference| of a (T, 2) path, over the steps where four frames are known."""
    third = np.diff(np.asarray(path, float), n=3, axis=0)
    mag = np.linalg.norm(third, axis=1)
    mag = mag[np.isfinite(mag)]
    return float(mag.mean()) if len(mag) else float("nan")


class MediaPipeHands:
    """MediaPipe as the hand finder of real footage (the ``[sign]`` extra)."""

    def __init__(self, source: MediaPipeSource | None = None):
        self.source = source or MediaPipeSource()

    def detect(self, frames: np.ndarray, fps: float = 8.0) -> ClipLandmarks:
        return self.source.extract(np.asarray(frames), fps)


def is_ground_truth(source: str) -> bool:
    """Whether ``source`` names the synthetic signer's ground truth (not MediaPipe)."""
    return source in SIGNER_TRUTH


def endpoint_hand_tracks(clips, source: str) -> list[np.ndarray | None]:
    """Per clip, the tracks hand control steers it with knowing only its two endpoints (as
    ``interpolate --tracks-from-hands`` does for two photos: still ends, zero velocities): the
    Hermite plan between the hands of its first and its last frame, (F, K, 2) in the clip's
    pixels, or None where no hand is found at both ends. The endpoints' hands come from the
    signer world's ground truth (``synthetic``) or from MediaPipe."""
    from ..data.handpaths import hand_tracks

    mediapipe = None if is_ground_truth(source) else MediaPipeSource()
    plans = []
    for clip in clips:
        last = len(clip.frames) - 1
        if mediapipe is None:
            a, b = clip.landmarks.slice(0, 1), clip.landmarks.slice(last, last + 1)
        else:  # both endpoints in one call (one pair of graphs), each read as a photo
            ends = mediapipe.extract(clip.frames[[0, last]], video=False)
            a, b = ends.slice(0, 1), ends.slice(1, 2)
        plan = hand_tracks(a, b, last - 1).tracks.tracks
        plans.append(np.stack([t.points for t in plan], 1) if plan else None)
    return plans


def hand_finder(source: str, mediapipe=None):
    """The detector for generated frames: the learned signer hand finder for the synthetic
    ground truth, else MediaPipe (``mediapipe``, if given)."""
    if is_ground_truth(source):
        from .hand_net import packaged_finder

        return packaged_finder()
    return mediapipe or MediaPipeHands()


# ------------------------------------------------------------------------ transition scores
HAND_COLUMNS = [("hand_detection_rate", "hands found", ".1%"),
                ("hand_mje_px", "hand MJE (px)", ".2f"),
                ("hand_dtw_mje_px", "DTW-MJE (px)", ".2f"),
                ("hand_jerk", "hand jerk (px/frame³)", ".2f")]
REAL = "real frames"


def nanmean(values) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def path_jerk(palms: np.ndarray) -> float:
    """Mean over the two hands of the jerk of their (T, 2, 2) palm paths."""
    return nanmean([jerk(palms[:, hand]) for hand in range(palms.shape[1])])


def transition_scores(found: ClipLandmarks, before: np.ndarray, after: np.ndarray,
                      truth: ClipLandmarks | None = None,
                      expected: np.ndarray | None = None) -> dict:
    """Hand metrics of one transition. ``found``: the hands a detector found in its frames;
    ``before``/``after``: (T, 2, 2) real palm positions of the frames on each side (the jerk
    runs through them); ``truth``: the true landmarks of the same frames (keypoint errors);
    ``expected``: the (frame, hand) pairs that count for the detection rate (all)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames are expected
        palms = np.concatenate([before, found.hands[:, :, PALM], after])
        out = {"detect": detection_rate(found.hand_conf, expected), "jerk": path_jerk(palms)}
        if truth is not None:
            pred, true = (m.hands.reshape(len(m), -1, 2) for m in (found, truth))  # (F, 42, 2)
            out["mje"] = mean_joint_error(pred, true)
            out["dtw_mje"] = dtw_mje(pred, true)
    return out


def summarise(scores: list[dict]) -> dict:
    """Means over transitions as a report row (NaNs — no hand found — left out)."""
    keys = {"detect": "hand_detection_rate", "mje": "hand_mje_px", "dtw_mje": "hand_dtw_mje_px",
            "jerk": "hand_jerk"}
    row = {name: nanmean([s[k] for s in scores]) for k, name in keys.items()
           if any(k in s for s in scores)}
    return row | {"n_transitions": len(scores)}


# ------------------------------------------------------------- evaluate: rows of whole clips
def clip_hand_scores(videos: dict[str, np.ndarray], real: np.ndarray, truth: ClipLandmarks,
                     source: str, mediapipe=None) -> dict[str, dict]:
    """One held-out clip (frames 0 and F−1 given, 1…F−2 generated): the scores of every
    video and of the real frames (:data:`REAL`), the generated frames' hands against
    ``truth`` (the real frames' landmarks: ground truth, or MediaPipe's on the real clip)."""
    mid = slice(1, len(real) - 1)
    detector = hand_finder(source, mediapipe)
    middle = truth.take(mid)
    expected = middle.hand_conf > 0 if is_ground_truth(source) else None
    palms = truth.hands[:, :, PALM]
    found_real = detector.detect(real[mid]) if is_ground_truth(source) else middle
    out = {label: transition_scores(detector.detect(video[mid]), palms[:1], palms[-1:], middle,
                                    expected) for label, video in videos.items()}
    out[REAL] = transition_scores(found_real, palms[:1], palms[-1:], middle, expected)
    return out


HAND_SOURCES = ("auto", "mediapipe", "synthetic")


def resolve_source(requested: str, truths: list) -> str:
    """``evaluate --hand-metrics``: "synthetic" when asked, or for "auto" when every clip has
    the signer's ground truth; else "mediapipe" (a one-line error without the [sign] extra)."""
    if requested not in HAND_SOURCES:
        raise ValueError(f"unknown hand landmark source {requested!r} — use "
                         + ", ".join(HAND_SOURCES))
    if requested == "synthetic" or (requested == "auto" and truths
                                    and all(t is not None for t in truths)):
        return "synthetic"
    require_mediapipe()
    return "mediapipe"


def hand_rows(outputs: dict[str, list[np.ndarray]], real: list[np.ndarray],
              truths: list[ClipLandmarks] | None, source: str) -> dict[str, dict]:
    """``evaluate``'s hand metrics: per row of ``outputs`` (label → one video per clip) the
    means over clips, and the same for the real frames (:data:`REAL`). Without ``truths``
    MediaPipe's landmarks of the real clips are the truth."""
    mediapipe = None if is_ground_truth(source) else MediaPipeHands()
    per_row: dict[str, list[dict]] = {}
    for i, frames in enumerate(real):
        truth = truths[i] if truths is not None else mediapipe.detect(frames)
        videos = {label: outs[i] for label, outs in outputs.items()}
        for label, scores in clip_hand_scores(videos, frames, truth, source, mediapipe).items():
            per_row.setdefault(label, []).append(scores)
    return {label: summarise(scores) for label, scores in per_row.items()}
