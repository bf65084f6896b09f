"""Hand metrics for transitions, and the held-out synthetic signer protocol that uses them.

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

import numpy as np

from ..data.landmarks import PALM, ClipLandmarks, empty

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
                    x, y = np.round(marks.hands[f, hand, PALM]).astype(int) + radius
                    patch = padded[y - radius:y + radius + 1, x - radius:x + radius + 1]
                    self.templates[hand].append(patch)

    def _pad(self, frame):
        import cv2

        r = self.radius
        return cv2.copyMakeBorder(frame.astype(np.float32), r, r, r, r, cv2.BORDER_REPLICATE)

    def _score(self, frame: np.ndarray, hand: int) -> np.ndarray:
        import cv2

        padded = self._pad(frame)
        maps = [cv2.matchTemplate(padded, t, cv2.TM_CCOEFF_NORMED) for t in self.templates[hand]]
        return np.max(maps, axis=0) if maps else np.full(frame.shape[:2], -1.0, np.float32)

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
        r = self.radius
        x, y = np.round(pos).astype(int) + r
        patch = padded[y - r:y + r + 1, x - r:x + r + 1]
        ref = float(np.mean([t.std() for t in self.templates[hand]]))
        return float(min(1.0, patch.std() / max(ref, 1e-6)))

    def detect(self, frames: np.ndarray, fps: float = 8.0) -> ClipLandmarks:
        h, w = frames.shape[1:3]
        out = empty(len(frames), (w, h), fps, "signer-hand-finder")
        for f, frame in enumerate(frames):
            scores = [self._score(frame, hand) for hand in range(2)]
            best = None
            for first in (0, 1):  # the better of: left first then right, and the reverse
                p1, s1 = self._peak(scores[first])
                p2, s2 = self._peak(scores[1 - first], block=p1)
                total = s1 + s2
                if best is None or total > best[0]:
                    best = (total, {first: (p1, s1), 1 - first: (p2, s2)})
            padded = self._pad(frame)
            for hand, (pos, score) in best[1].items():
                score *= self._contrast(padded, pos, hand)
                if score >= self.threshold and self.templates[hand]:
                    out.hands[f, hand, PALM], out.hand_conf[f, hand] = pos, score
        return out


# ------------------------------------------------------------------ the held-out protocol
ROWS = ("hard cut", "crossfade", "flow", "framer (no control)", "framer + hand control")


def hard_cut(start: np.ndarray, end: np.ndarray, num_frames: int) -> np.ndarray:
    """No transition: the first half holds A's last frame, the second shows B's first."""
    frames = [start if k < num_frames / 2 else end for k in range(num_frames)]
    return np.stack(frames)


def signer_transitions(seeds, num_frames: int = 9, context: int = 3, size: int = 64):
    """Held-out transitions cut from continuous synthetic signing: per seed the real window of
    ``num_frames`` (its middle is the truth), ``context`` real frames on each side (the clips
    A and B end/start there), and the world's joints as landmarks."""
    from ..data.landmarks import from_signer_tracks
    from ..data.synthetic import render_signer

    for seed in seeds:
        clip = render_signer(seed, num_frames + 2 * context, size)
        marks = from_signer_tracks(clip.tracks, (size, size), 8.0)
        yield seed, clip.frames, marks


def evaluate_hand_transitions(pipe, seeds, *, num_frames: int = 9, context: int = 3,
                              sampler: str = "dpm++", steps: int = 12, control_scale: float = 1.0,
                              fps: float = 8.0, motion_bucket: int = 100) -> dict:
    """Every row of :data:`ROWS` on every seed's transition; hand metrics per row (means over
    transitions) plus the real frames' detection rate."""
    import torch

    from ..data.handpaths import hand_tracks
    from ..media.files import to_uint8
    from .baselines import crossfade, flow_interpolate

    per_row = {r: {"mje": [], "dtw_mje": [], "detect": [], "jerk": []} for r in ROWS}
    real_detect, n = [], 0
    for seed, frames, marks in signer_transitions(seeds, num_frames, context):
        lo, hi = context, context + num_frames - 1  # the window's endpoints
        start, end = frames[lo], frames[hi]
        truth = marks.hands[lo + 1:hi, :, PALM]  # (T, 2, 2)
        present = marks.hand_conf[lo + 1:hi] > 0
        finder = SignerHandFinder(frames[[lo, hi]], _ends(marks, lo, hi))
        real = finder.detect(frames[lo + 1:hi])
        real_detect.append(detection_rate(real.hand_conf, present))
        videos = {"hard cut": hard_cut(start, end, num_frames),
                  "crossfade": crossfade(start, end, num_frames),
                  "flow": flow_interpolate(start, end, num_frames)}
        common = dict(num_frames=num_frames, height=start.shape[0], width=start.shape[1],
                      num_inference_steps=steps, sampler=sampler, fps=fps,
                      motion_bucket_id=motion_bucket, output_type="np")
        out = pipe(start, end, generator=torch.Generator().manual_seed(seed), **common)
        videos["framer (no control)"] = to_uint8(out.frames[0])
        plan = hand_tracks(marks.slice(0, lo + 1), marks.slice(hi, len(marks)),
                           num_frames - 2)
        tracks = np.stack([t.points for t in plan.tracks.tracks], 1) if plan.tracks.tracks \
            else None
        out = pipe(start, end, generator=torch.Generator().manual_seed(seed), tracks=tracks,
                   control_scale=control_scale, **common)
        videos["framer + hand control"] = to_uint8(out.frames[0])
        for row, video in videos.items():
            found = finder.detect(video[1:-1])
            pred = found.hands[:, :, PALM]
            stats = per_row[row]
            stats["mje"].append(mean_joint_error(np.where(present[..., None], pred, np.nan), truth))
            stats["dtw_mje"].append(dtw_mje(pred, truth))
            stats["detect"].append(detection_rate(found.hand_conf, present))
            for hand in range(2):  # the path through the join: real context, generated middle
                path = np.concatenate([marks.hands[:lo + 1, hand, PALM], pred[:, hand],
                                       marks.hands[hi:, hand, PALM]])
                stats["jerk"].append(jerk(path))
        n += 1
    rows = {}
    for row, stats in per_row.items():
        rows[row] = {"hand_mje_px": float(np.nanmean(stats["mje"])),
                     "hand_dtw_mje_px": float(np.nanmean(stats["dtw_mje"])),
                     "hand_detection_rate": float(np.mean(stats["detect"])),
                     "hand_jerk": float(np.nanmean(stats["jerk"])), "n_transitions": n}
    return {"rows": rows, "real_detection_rate": float(np.mean(real_detect))}


def _ends(marks: ClipLandmarks, lo: int, hi: int) -> ClipLandmarks:
    """The landmarks of frames ``lo`` and ``hi`` only (the finder's references)."""
    idx = [lo, hi]
    return ClipLandmarks(marks.hands[idx], marks.hand_conf[idx], marks.pose[idx],
                         marks.pose_conf[idx], marks.image_size, marks.fps, marks.source)


def markdown_table(result: dict) -> str:
    lines = ["| row | hand MJE (px) | DTW-MJE (px) | hands found | jerk (px/frame³) |",
             "|---|---|---|---|---|"]
    for row, m in result["rows"].items():
        lines.append(f"| {row} | {m['hand_mje_px']:.2f} | {m['hand_dtw_mje_px']:.2f} | "
                     f"{m['hand_detection_rate']:.1%} | {m['hand_jerk']:.2f} |")
    lines.append(f"| real frames | 0 | 0 | {result['real_detection_rate']:.1%} | |")
    return "\n".join(lines)
