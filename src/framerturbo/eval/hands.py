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

In the synthetic ``signer`` world the hands in *generated* frames are found by
:class:`SignerHandFinder`: normalised cross-correlation with each hand's appearance in the two
real endpoint frames (where the world's ground truth says the hand is). It reports the palm centre
and as confidence the correlation times the patch's contrast relative to the hand's (capped at
1): a blurred or half-faded (ghosted) hand scores low and counts as not found. It knows nothing of the frames in between.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..data.landmarks import (PALM, SIGNER_TRUTH, ClipLandmarks, MediaPipeSource, empty,
                              require_mediapipe)

DETECT_THRESHOLD = 0.6  # NCC; fixed before any measurement


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


# ------------------------------------------------------------- hands in synthetic signer frames
class SignerHandFinder:
    """Finds each hand of the synthetic signer by its look in reference frames (see above)."""

    def __init__(self, frames: np.ndarray, marks: ClipLandmarks, radius: int = 6,
                 threshold: float = DETECT_THRESHOLD):
        self.radius, self.threshold = radius, threshold
        self.templates: list[list[np.ndarray]] = [[], []]
        for frame, f in zip(frames, range(len(frames))):
            padded = self._pad(frame)
            for hand in range(2):
                if marks.hand_conf[f, hand] > 0:
                    self.templates[hand].append(self._patch(padded, marks.hands[f, hand, PALM]))

    def _patch(self, padded: np.ndarray, pos) -> np.ndarray:
        """The (2r+1)² patch of a padded frame around ``pos`` (a point that rounds to just
        outside the frame is held at its edge, so every patch has the same size)."""
        r = self.radius
        h, w = padded.shape[0] - 2 * r, padded.shape[1] - 2 * r
        x, y = np.clip(np.round(pos).astype(int), 0, [w - 1, h - 1]) + r
        return padded[y - r:y + r + 1, x - r:x + r + 1]

    def _pad(self, frame):
        import cv2

        r = self.radius
        return cv2.copyMakeBorder(frame.astype(np.float32), r, r, r, r, cv2.BORDER_REPLICATE)

    def _score(self, padded: np.ndarray, hand: int) -> np.ndarray:
        """NCC of each position with the hand's best template (the frame's size)."""
        import cv2

        maps = [cv2.matchTemplate(padded, t, cv2.TM_CCOEFF_NORMED) for t in self.templates[hand]]
        if maps:
            return np.max(maps, axis=0)
        r = self.radius
        return np.full((padded.shape[0] - 2 * r, padded.shape[1] - 2 * r), -1.0, np.float32)

    @staticmethod
    def _peak(score: np.ndarray, block=None, radius: int = 4):
        s = score.copy()
        if block is not None:
            yy, xx = np.mgrid[:s.shape[0], :s.shape[1]]
            s[(xx - block[0]) ** 2 + (yy - block[1]) ** 2 <= radius**2] = -1
        y, x = np.unravel_index(int(np.argmax(s)), s.shape)
        dx = dy = 0.0
        if 0 < x < s.shape[1] - 1:  # sub-pixel: a parabola through the peak and its neighbours
            a, b, c = s[y, x - 1], s[y, x], s[y, x + 1]
            dx = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
        if 0 < y < s.shape[0] - 1:
            a, b, c = s[y - 1, x], s[y, x], s[y + 1, x]
            dy = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
        return np.array([x + dx, y + dy]), float(s[y, x])

    def _contrast(self, padded: np.ndarray, pos, hand: int) -> float:
        """The patch's contrast relative to the hand's (≤ 1): NCC alone ignores contrast, so a
        half-faded ghost would correlate as well as a hand."""
        if not self.templates[hand]:
            return 0.0
        patch = self._patch(padded, pos)
        ref = float(np.mean([t.std() for t in self.templates[hand]]))
        return float(min(1.0, patch.std() / max(ref, 1e-6)))

    def detect(self, frames: np.ndarray, fps: float = 8.0) -> ClipLandmarks:
        h, w = frames.shape[1:3]
        out = empty(len(frames), (w, h), fps, "signer-hand-finder")
        for f, frame in enumerate(frames):
            padded = self._pad(frame)  # once: both hands' scores and the contrast read it
            scores = [self._score(padded, hand) for hand in range(2)]
            best = None
            for first in (0, 1):  # the better of: left first then right, and the reverse
                p1, s1 = self._peak(scores[first])
                p2, s2 = self._peak(scores[1 - first], block=p1)
                total = s1 + s2
                if best is None or total > best[0]:
                    best = (total, {first: (p1, s1), 1 - first: (p2, s2)})
            for hand, (pos, score) in best[1].items():
                score *= self._contrast(padded, pos, hand)
                if score >= self.threshold and self.templates[hand]:
                    out.hands[f, hand, PALM], out.hand_conf[f, hand] = pos, score
        return out


class MediaPipeHands:
    """MediaPipe as the hand finder of real footage (the ``[sign]`` extra)."""

    def __init__(self, source: MediaPipeSource | None = None):
        self.source = source or MediaPipeSource()

    def detect(self, frames: np.ndarray, fps: float = 8.0) -> ClipLandmarks:
        return self.source.extract(np.asarray(frames), fps)


def is_ground_truth(source: str) -> bool:
    """Whether ``source`` names the synthetic signer's ground truth (not MediaPipe)."""
    return source in SIGNER_TRUTH


def hand_finder(source: str, ends: np.ndarray, end_marks: ClipLandmarks, mediapipe=None):
    """The detector for generated frames between two real ``ends``: the signer hand finder
    (templates from the ends) for ground truth, else MediaPipe (``mediapipe``, if given)."""
    if is_ground_truth(source):
        return SignerHandFinder(ends, end_marks)
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
    detector = hand_finder(source, real[[0, -1]], truth.take([0, -1]), mediapipe)
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
