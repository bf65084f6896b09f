"""Hand metrics against hand-computed values, and the synthetic signer's hand finder."""

from __future__ import annotations

import pytest

import math

import numpy as np

from framerturbo.data.landmarks import PALM, from_signer_tracks
from framerturbo.data.synthetic import render_signer
from framerturbo.eval.baselines import crossfade, hard_cut
from framerturbo.eval.hands import SignerHandFinder, detection_rate, dtw_mje, jerk, mean_joint_error


def test_mean_joint_error_by_hand():
    true = np.zeros((2, 2, 2))
    pred = np.array([[[3, 4], [0, 0]], [[np.nan, np.nan], [6, 8]]], float)
    # distances 5, 0, (unknown), 10 → (5 + 0 + 10) / 3
    assert math.isclose(mean_joint_error(pred, true), 5.0)
    assert math.isnan(mean_joint_error(np.full((1, 1, 2), np.nan), np.zeros((1, 1, 2))))


def test_dtw_mje_by_hand():
    true = np.array([[[0, 0]], [[1, 0]], [[2, 0]], [[3, 0]]], float)
    # a constant 2-px offset: every alignment costs 2 per step at best
    assert math.isclose(dtw_mje(true + [0, 2], true), 2.0)
    # the same path one frame late: MJE is 1 per frame, DTW aligns it at a cost of 0 except
    # the first frame: path (0,0)(1,0)(2,1)(3,2)(3,3) → costs 0,1,0,0,0 over 5 steps = 0.2
    late = np.array([[[0, 0]], [[0, 0]], [[1, 0]], [[2, 0]]], float)
    assert math.isclose(mean_joint_error(late, true), 0.75)
    assert math.isclose(dtw_mje(late, true), 1.0 / 5)
    assert dtw_mje(true, true) == 0.0


def test_jerk_and_detection_rate_by_hand():
    t = np.arange(6, dtype=float)
    assert math.isclose(jerk(np.stack([t**3, 0 * t], 1)), 6.0)  # d³(t³) = 6 per step
    assert math.isclose(jerk(np.stack([2 * t, t * t], 1)), 0.0)  # quadratics have no jerk
    conf = np.array([[0.9, 0], [0.7, 0.8]])
    assert detection_rate(conf) == 0.75
    assert detection_rate(conf, expected=np.array([[True, False], [True, True]])) == 1.0


def test_hard_cut_holds_then_switches():
    a, b = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 9, np.uint8)
    video = hard_cut(a, b, 5)
    assert [int(f.max()) for f in video] == [0, 0, 0, 9, 9]


def test_hand_finder_on_references_and_ghosts():
    clip = render_signer(9_000_000, 9)
    marks = from_signer_tracks(clip.tracks, (64, 64), 8.0)
    ends = [0, 8]
    finder = SignerHandFinder(clip.frames[ends], marks.take(ends))
    own = finder.detect(clip.frames[ends])  # the references themselves: exact, confident
    assert (own.hand_conf > 0.99).all()
    assert mean_joint_error(own.hands[:, :, PALM], marks.hands[ends][:, :, PALM]) < 0.5
    found = finder.detect(clip.frames[1:8])
    present = marks.hand_conf[1:8] > 0
    assert detection_rate(found.hand_conf, present) > 0.5
    # a hand faded half into the background (a ghost) is not found
    plain = np.broadcast_to(clip.frames[0, :1, :1], clip.frames[0].shape)
    ghost = finder.detect(crossfade(clip.frames[0], plain, 3)[1:2])
    assert (ghost.hand_conf == 0).all()


@pytest.mark.system
def test_landmark_benchmark_tiny_records_nothing(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    pytest.importorskip("mediapipe", reason="the [sign] extra is not installed")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "landmarks.py"
    result = subprocess.run([sys.executable, str(script), "--tiny", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "frames_per_s" in result.stdout and "nothing recorded" in result.stdout
    assert not list(tmp_path.iterdir())


# The finder's output on real, in-between and cross-faded frames, recorded before the finder
# padded each frame once instead of three times (the result must not change).
GOLDEN_PALMS = [
    [[-1.0, -1.0], [19.993468, 25.50264]], [[-1.0, -1.0], [16.576401, 27.526725]],
    [[-1.0, -1.0], [16.666555, 27.563952]], [[-1.0, -1.0], [16.666555, 27.568569]],
    [[-1.0, -1.0], [16.090113, 28.178212]], [[50.533903, 30.39484], [12.274691, 30.313535]],
    [[43.121283, 25.94189], [8.827426, 31.939516]], [[46.936745, 28.02912], [16.215722, 28.042097]],
    [[46.87099, 28.056482], [16.477908, 28.125464]], [[43.121406, 25.9701], [16.801212, 27.978492]]]
GOLDEN_CONF = [[0.0, 0.669899], [0.0, 0.696681], [0.0, 0.695433], [0.0, 0.695433],
               [0.0, 0.704174], [0.756186, 0.718808], [0.927597, 0.775259], [0.924783, 0.989209],
               [0.85352, 0.96978], [0.892512, 0.973655]]


def test_hand_finder_pads_each_frame_once_with_unchanged_results(monkeypatch):
    import cv2

    clip = render_signer(9_000_000, 9)
    marks = from_signer_tracks(clip.tracks, (64, 64), 8.0)
    finder = SignerHandFinder(clip.frames[[0, 8]], marks.take([0, 8]))
    frames = np.concatenate([clip.frames[1:8], crossfade(clip.frames[0], clip.frames[8], 5)[1:4]])
    calls = []
    pad = cv2.copyMakeBorder
    monkeypatch.setattr(cv2, "copyMakeBorder", lambda *a, **k: calls.append(1) or pad(*a, **k))
    found = finder.detect(frames)
    assert len(calls) == len(frames)  # was 3 per frame
    assert np.allclose(np.nan_to_num(found.hands[:, :, PALM], nan=-1), GOLDEN_PALMS, atol=1e-4)
    assert np.allclose(found.hand_conf, GOLDEN_CONF, atol=1e-4)


def test_hand_finder_takes_a_palm_that_rounds_to_the_frame_edge():
    """A palm at x = 63.7 is inside a 64-px frame but rounds to 64: its template used to be
    cut short, and matching failed on templates of different sizes."""
    clip = render_signer(9_000_000, 9)
    marks = from_signer_tracks(clip.tracks, (64, 64), 8.0).take([0, 8])
    marks.hands[0, 0, PALM] = (63.7, 30.0)
    finder = SignerHandFinder(clip.frames[[0, 8]], marks)
    assert {t.shape for t in finder.templates[0]} == {(13, 13, 3)}
    assert finder.detect(clip.frames[1:3]).hand_conf.shape == (2, 2)
