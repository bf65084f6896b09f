"""Sign-language transitions: Hermite hand paths, handedness matching and its fallbacks, rest
trimming, `sentence`, and `stitch --control hands` on synthetic signer clips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from framerturbo.cli.main import main
from framerturbo.data.handpaths import (auto_transition_frames, end_velocity, hand_tracks,
                                        hermite_path, rest_frames, trim_hands)
from framerturbo.data.landmarks import (PALM, WRIST, ClipLandmarks, empty, from_signer_tracks,
                                        landmarks_for_video, GroundTruthSource)
from framerturbo.data.synthetic import render_signer, write_dataset
from framerturbo.models.record import read_record

MODEL = ["--model", "micro", "--steps", "2"]


def linear_hand(num, start, step, size=(100, 100), hand=0, pose=False) -> ClipLandmarks:
    """A hand whose every point moves by ``step`` px per frame from ``start``."""
    m = empty(num, size, 8.0, "test")
    path = np.asarray(start, float) + np.arange(num)[:, None] * np.asarray(step, float)
    if pose:
        m.pose[:, 4 + hand], m.pose_conf[:, 4 + hand] = path, 1.0
    else:
        m.hands[:, hand, :] = path[:, None, :] + np.arange(21)[None, :, None] * 0.1
        m.hand_conf[:, hand] = 0.9
    return m


def test_hermite_ends_match_measured_positions_and_velocities():
    from scipy.interpolate import CubicHermiteSpline

    p0, v0, p1, v1 = np.array([10., 20.]), np.array([3., -1.]), np.array([40., 5.]), \
        np.array([-2., 4.])
    path = hermite_path(p0, v0, p1, v1, 9)
    assert np.allclose(path[0], p0) and np.allclose(path[-1], p1)
    spline = CubicHermiteSpline([0, 8], np.stack([p0, p1]), np.stack([v0, v1]), axis=0)
    assert np.allclose(spline(np.arange(9)), path)
    assert np.allclose(spline(0, 1), v0) and np.allclose(spline(8, 1), v1)
    # the first step continues the measured motion (not a stop): close to v0, far from 0
    assert np.linalg.norm(path[1] - path[0] - v0) < 0.5 * np.linalg.norm(v0)


def test_hand_tracks_use_the_clips_measured_velocities():
    a = linear_hand(5, (10, 50), (2, 0))  # left hand moving right at 2 px/frame
    b = linear_hand(5, (60, 40), (0, -3))  # ... and up at 3 px/frame in clip B
    plan = hand_tracks(a, b, transition_frames=6)
    assert plan.names[0] == "left wrist (hand→hand)" and len(plan.names) == 6  # wrist + 5 tips
    wrist = plan.tracks.tracks[0].points
    assert len(wrist) == 8
    assert np.allclose(wrist[0], a.hands[-1, 0, WRIST]) and np.allclose(wrist[-1], [60, 40])
    assert np.allclose(end_velocity(a.hands[:, 0, WRIST], at_end=True), [2, 0])
    from scipy.interpolate import CubicHermiteSpline

    spline = CubicHermiteSpline([0, 7], np.stack([wrist[0], wrist[-1]]),
                                np.array([[2., 0.], [0., -3.]]), axis=0)
    assert np.allclose(spline(np.arange(8)), wrist)


def test_handedness_matching_and_fallbacks():
    both_a = linear_hand(4, (20, 50), (1, 0), hand=0)
    right = linear_hand(4, (70, 50), (-1, 0), hand=1)
    both_a.hands[:, 1], both_a.hand_conf[:, 1] = right.hands[:, 1], right.hand_conf[:, 1]
    # B: the left hand is found, the right hand only by the pose
    b = linear_hand(4, (30, 40), (0, 1), hand=0)
    b.pose[:, 5], b.pose_conf[:, 5] = [[80, 60]] * 4, 1.0
    plan = hand_tracks(both_a, b, 4)
    assert "left wrist (hand→hand)" in plan.names and "right wrist (hand→pose)" in plan.names
    assert not any(n.startswith("right tip") for n in plan.names)  # no hand on B: no tips
    right_wrist = plan.tracks.tracks[plan.names.index("right wrist (hand→pose)")].points
    left_wrist = plan.tracks.tracks[plan.names.index("left wrist (hand→hand)")].points
    assert np.allclose(right_wrist[-1], [80, 60]) and np.allclose(left_wrist[-1], [30, 40])
    assert np.allclose(right_wrist[0], both_a.hands[-1, 1, WRIST])  # never crossed
    # a hand with neither landmarks nor a pose wrist on one side gets no track, with a note
    b.pose_conf[:, 5], b.pose[:, 5] = 0, np.nan
    plan = hand_tracks(both_a, b, 4)
    assert not any(n.startswith("right") for n in plan.names)
    assert plan.notes == ["no track for the right hand: not found in clip B"]
    # nothing at all: an empty track set
    assert hand_tracks(empty(3, (100, 100), 8, "t"), b, 4).tracks.tracks == []


def test_elbows_come_from_the_pose():
    a, b = linear_hand(3, (20, 50), (1, 0)), linear_hand(3, (30, 50), (1, 0))
    for m in (a, b):
        m.pose[:, 2], m.pose_conf[:, 2] = [[15, 70]] * 3, 1.0
    assert "left elbow" in hand_tracks(a, b, 3).names
    assert "left elbow" not in hand_tracks(a, b, 3, elbows=False).names


def test_trim_hands_on_injected_sequences():
    # rest (low and still) 3 frames, sign 4 frames, rest 2 frames; the other hand unseen
    ys = [90, 90, 90, 60, 40, 45, 70, 91, 91]
    xs = [50, 50, 50, 50, 55, 60, 50, 50, 50]
    m = empty(len(ys), (100, 100), 8.0, "t")
    m.hands[:, 0, WRIST] = np.stack([xs, ys], 1)
    m.hand_conf[:, 0] = 1
    # frame 6 → 7 is a big step, so frame 7 still moves; frame 8 rests
    assert list(rest_frames(m)) == [True, True, False, False, False, False, False, False, True]
    assert trim_hands(m) == (2, 1)
    # a raised but still hand is not resting
    m2 = empty(5, (100, 100), 8.0, "t")
    m2.hands[:, 1, WRIST], m2.hand_conf[:, 1] = [[50, 30]] * 5, 1
    assert trim_hands(m2) == (0, 0) and not rest_frames(m2).any()
    # no hand ever seen: all rest → the clip stays whole
    assert trim_hands(empty(6, (100, 100), 8.0, "t")) == (0, 0)
    # only the pose wrist (hand not detected) counts as the hand
    m3 = empty(4, (100, 100), 8.0, "t")
    m3.pose[:, 4], m3.pose_conf[:, 4] = [[50, 95], [50, 95], [50, 50], [50, 40]], 1
    assert trim_hands(m3) == (1, 0)


def test_auto_transition_frames():
    a = linear_hand(5, (10, 50), (2, 0))
    b = linear_hand(5, (50, 50), (2, 0))
    # travel: from (18, 50) to (50, 50) = 32 px at 2 px/frame = 16 steps → 15 new frames
    assert auto_transition_frames(a, b, 2.0)[0] == 15
    assert auto_transition_frames(a, b, 0.5, lo=4, hi=24)[0] == 24  # clamped
    assert auto_transition_frames(a, b, None)[0] == 12  # nothing measured: the default


def test_ground_truth_landmarks_from_a_synthetic_clip(tmp_path):
    [path] = write_dataset("signer", 1, tmp_path, num_frames=6, progress=False)
    clip = render_signer(0, 6)
    marks, cached = landmarks_for_video(path, GroundTruthSource())
    assert not cached and marks.hands.shape == (6, 2, 21, 2)
    # the image-left arm is the figure's right hand
    assert np.allclose(marks.hands[:, 1, WRIST], clip.tracks[:, 2], atol=0.05)
    assert np.allclose(marks.hands[:, 0, PALM], clip.tracks[:, 8], atol=0.05)
    again, cached = landmarks_for_video(path, GroundTruthSource())
    assert cached and np.allclose(np.nan_to_num(again.hands), np.nan_to_num(marks.hands),
                                   atol=1e-3)
    doc = json.loads(path.with_name(path.name + ".landmarks.json").read_text())
    assert doc["source"] == "ground-truth" and len(doc["content_sha256"]) == 64


def test_from_signer_tracks_drops_hands_outside_the_frame():
    tracks = render_signer(1, 3).tracks.copy()
    before = from_signer_tracks(tracks, (64, 64), 8.0)
    tracks[1, 1:6] += 500  # the right hand's arm leaves the frame in frame 1
    m = from_signer_tracks(tracks, (64, 64), 8.0)
    assert before.hand_conf[1, 1] == 1 and m.hand_conf[1, 1] == 0
    assert np.isnan(m.hands[1, 1]).all() and np.isnan(m.pose[1, [3, 5]]).all()
    assert m.hand_conf[[0, 2], 1].tolist() == before.hand_conf[[0, 2], 1].tolist()


@pytest.fixture(scope="module")
def signer_lexicon(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lexicon")
    paths = write_dataset("signer", 3, folder, num_frames=6, progress=False)
    named = []
    for gloss, path in zip(("HELLO", "MY", "NAME"), paths):
        target = folder / f"{gloss}.mp4"
        path.rename(target)
        for suffix in (".tracks.npz", ".tracks.json"):
            path.with_name(path.name + suffix).rename(folder / f"{gloss}.mp4{suffix}")
        named.append(target)
    return folder, named


def test_stitch_with_hand_control_end_to_end(signer_lexicon, tmp_path, capsys):
    folder, (a, b, _) = signer_lexicon
    out = tmp_path / "joined.mp4"
    assert main(["stitch", str(a), str(b), "-o", str(out), "--control", "hands",
                 "--landmarks", "ground-truth", "--transition-frames", "3", *MODEL]) == 0
    meta = json.loads(out.with_name("joined.mp4.json").read_text())
    assert meta["control"] == "hands" and meta["landmarks"] == "ground-truth"
    assert meta["generated_at"]["control_scale"] == read_record(MODEL[1]).control_scale
    names = meta["transitions"][0]["hand_tracks"]
    assert {"left wrist (hand→hand)", "right wrist (hand→hand)"} <= set(names)
    assert meta["frames"] == 6 + 3 + 6


def test_stitch_auto_frames_and_hand_trim(signer_lexicon, tmp_path):
    folder, (a, b, _) = signer_lexicon
    out = tmp_path / "auto.mp4"
    assert main(["stitch", str(a), str(b), "-o", str(out), "--transition-frames", "auto",
                 "--auto-range", "2", "5", "--trim", "hands", "--landmarks", "ground-truth",
                 *MODEL]) == 0
    meta = json.loads(out.with_name("auto.mp4.json").read_text())
    [n] = meta["transition_frames"]
    assert 2 <= n <= 5 and "travel" in meta["transitions"][0]["length"]
    assert meta["trim"] == "hands"


def test_sentence_lists_every_unknown_gloss(signer_lexicon, tmp_path, capsys):
    folder, _ = signer_lexicon
    code = main(["sentence", "HELLO FOO my BAR", "--lexicon", str(folder), "-o",
                 str(tmp_path / "s.mp4"), *MODEL])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "unknown glosses FOO, BAR" in err[0]
    code = main(["sentence", "HELLO", "--lexicon", str(folder), "-o", str(tmp_path / "s.mp4"),
                 *MODEL])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "HELLO" in err[0] and "two glosses" in err[0]
    assert not (tmp_path / "s.mp4").exists()


def test_sentence_from_folder_and_jsonl(signer_lexicon, tmp_path):
    from framerturbo.tasks.sentence import resolve_glosses

    folder, (hello, my, name) = signer_lexicon
    assert resolve_glosses("hello NAME", folder) == [hello, name]
    listing = tmp_path / "lex.jsonl"
    listing.write_text(json.dumps({"gloss": "greet", "path": str(hello)}) + "\n"
                       + json.dumps({"gloss": "ME", "path": str(my)}) + "\n")
    assert resolve_glosses(["GREET", "me"], listing) == [hello, my]
    out = tmp_path / "s.mp4"
    assert main(["sentence", "HELLO MY", "--lexicon", str(folder), "-o", str(out),
                 "--transition-frames", "2", *MODEL]) == 0
    assert json.loads(out.with_name("s.mp4.json").read_text())["frames"] == 6 + 2 + 6
