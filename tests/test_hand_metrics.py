"""Hand metrics against hand-computed values, and the synthetic signer's hand finder (the net of
``eval/hand_net.py``)."""

from __future__ import annotations

import pytest

import math

import numpy as np

from framerturbo.data.landmarks import PALM, from_signer_tracks
from framerturbo.data.synthetic import render_signer
from framerturbo.eval.baselines import crossfade, hard_cut
from framerturbo.eval.hands import detection_rate, dtw_mje, jerk, mean_joint_error


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


# --------------------------------------------------------------------------- the hand finder
HELD_OUT = range(7_000_000, 7_000_008)  # seeds no protocol and not the finder's training use


def _held_out_clips():
    from framerturbo.data.synthetic import CLOSE, SignerStyle

    for i, seed in enumerate(HELD_OUT):  # both styles the finder must read
        clip = render_signer(seed, 9, style=CLOSE if i % 2 else SignerStyle())
        yield clip, from_signer_tracks(clip.tracks, (64, 64), 8.0)


def test_the_shipped_hand_finder_reads_real_signer_frames_to_a_pixel():
    from framerturbo.eval.hand_net import packaged_finder

    finder = packaged_finder()
    conf, present, found, true = [], [], [], []
    for clip, marks in _held_out_clips():
        out = finder.detect(clip.frames)
        conf.append(out.hand_conf), present.append(marks.hand_conf > 0)
        found.append(out.hands[:, :, PALM]), true.append(marks.hands[:, :, PALM])
    conf, present = np.concatenate(conf), np.concatenate(present)
    assert detection_rate(conf, present) >= 0.95
    assert ((conf > 0) & ~present).mean() <= 0.02  # no hand where none is in view
    assert mean_joint_error(np.concatenate(found), np.concatenate(true)) < 1.0


def test_the_hand_finder_does_not_find_a_half_faded_ghost():
    from framerturbo.eval.hand_net import packaged_finder

    clip = render_signer(9_000_000, 9)
    plain = np.broadcast_to(clip.frames[0, :1, :1], clip.frames[0].shape)
    ghost = packaged_finder().detect(crossfade(clip.frames[0], plain, 3)[1:2])
    assert (ghost.hand_conf == 0).all()


def test_the_hand_finder_reads_other_frame_sizes_in_their_own_pixels():
    import cv2

    from framerturbo.eval.hand_net import packaged_finder

    clip = render_signer(7_000_000, 9)
    marks = from_signer_tracks(clip.tracks, (64, 64), 8.0)
    big = packaged_finder().detect(np.stack([cv2.resize(f, (128, 96)) for f in clip.frames]))
    assert big.image_size == (128, 96)
    assert (big.hand_conf > 0).sum() >= (marks.hand_conf > 0).sum() - 1
    truth = (marks.hands[:, :, PALM] + 0.5) * [2.0, 1.5] - 0.5  # in the big frames' pixels
    assert mean_joint_error(big.hands[:, :, PALM], truth) < 1.5
    with pytest.raises(TypeError, match="uint8"):  # [0, 1] floats would read as no hands
        packaged_finder().detect(clip.frames / 255.0)


def test_decode_peaks_by_hand():
    from framerturbo.eval.hand_net import decode_peaks

    heat = np.zeros((1, 2, 16, 16), np.float32)
    heat[0, 0, 5, 9] = 0.9  # a peak with equal neighbours left and right, more weight below
    heat[0, 0, 5, 8] = heat[0, 0, 5, 10] = 0.3
    heat[0, 0, 6, 9] = 0.6
    heat[0, 1, 2, 2] = 0.4  # below the threshold: not found
    palms, conf = decode_peaks(heat)
    np.testing.assert_allclose(palms[0, 0], [9.0, 5 + 0.6 / 2.1])
    assert conf[0, 0] == pytest.approx(0.9)
    assert np.isnan(palms[0, 1]).all() and conf[0, 1] == 0


def test_train_hand_finder_is_deterministic_and_its_folder_loads(tmp_path):
    from safetensors.torch import load_file

    from framerturbo.cli.main import main
    from framerturbo.eval.hand_net import WEIGHTS, SignerHandNet

    for run in ("a", "b"):
        assert main(["train-hand-finder", "--out", str(tmp_path / run), "--steps", "3",
                     "--clips", "2", "--batch", "2"]) == 0
    a, b = (load_file(str(tmp_path / run / WEIGHTS)) for run in ("a", "b"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    marks = SignerHandNet.load(tmp_path / "a").detect(render_signer(1, 2).frames)
    assert marks.hand_conf.shape == (2, 2)
    with pytest.raises(FileNotFoundError, match="train-hand-finder"):
        SignerHandNet.load(tmp_path / "missing")
