"""The MediaPipe landmark source (the [sign] extra): skipped cleanly where it is not installed;
without it, a sign feature says in one line what to install."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from framerturbo.cli.main import main
from framerturbo.data.landmarks import INSTALL_HINT, MissingExtraError, require_mediapipe


def test_without_the_extra_one_line_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe → ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'framerturbo\[sign\]'"):
        require_mediapipe()
    video = tmp_path / "a.mp4"
    video.write_bytes(b"")
    for argv in (["landmarks", str(video)],
                 ["stitch", str(video), str(video), "-o", str(tmp_path / "o.mp4"),
                  "--control", "hands"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"framerturbo: error: {INSTALL_HINT}"]


try:
    import mediapipe  # noqa: F401
    HAVE_MEDIAPIPE = True
except ImportError:
    HAVE_MEDIAPIPE = False
needs_mediapipe = pytest.mark.skipif(not HAVE_MEDIAPIPE,
                                     reason="the [sign] extra (MediaPipe) is not installed")


@needs_mediapipe
def test_blank_and_generated_images_give_an_empty_result():
    from framerturbo.data.landmarks import MediaPipeSource
    from framerturbo.data.synthetic import render_signer

    source = MediaPipeSource()
    frames = np.stack([np.full((128, 128, 3), 200, np.uint8),
                       np.kron(render_signer(0, 1).frames[0], np.ones((2, 2, 1), np.uint8))])
    marks = source.extract(frames, video=False)
    assert marks.hands.shape == (2, 2, 21, 2) and marks.image_size == (128, 128)
    assert (marks.hand_conf[0] == 0).all() and np.isnan(marks.hands[0]).all()
    assert (marks.pose_conf[0] == 0).all()


@needs_mediapipe
def test_pose_finds_the_astronaut_and_no_hands_is_not_an_error():
    skimage_data = pytest.importorskip("skimage.data")
    from framerturbo.data.landmarks import MediaPipeSource

    photo = skimage_data.astronaut()  # 512×512, a person from the chest up, hands not visible
    marks = MediaPipeSource().extract(photo[None], video=False)
    assert (marks.hand_conf == 0).all()
    shoulders = marks.pose[0, :2]
    assert (marks.pose_conf[0, :2] > 0.9).all()
    # the person faces the camera: the left shoulder is on the image's right
    assert shoulders[0, 0] > shoulders[1, 0] + 100
    assert ((shoulders > 0) & (shoulders < 512)).all()
    assert 180 < shoulders[:, 1].mean() < 330


@needs_mediapipe
def test_hands_and_pose_run_side_by_side_with_the_results_of_one_thread(monkeypatch):
    """extract() runs the hands and the pose graph in two threads (1.5× the frames per second
    with hands in view on 2 cores); every landmark equals a one-thread run, in both modes, on
    frames where MediaPipe finds both hands."""
    from concurrent.futures import Future
    from pathlib import Path

    import framerturbo.data.landmarks as landmarks

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from landmarks import signer_hands_frames

    class OneThread:  # submit() runs the call at once, in the caller's thread
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, *args):
            done = Future()
            done.set_result(fn(*args))
            return done

    frames = signer_hands_frames(512, 6)
    source = landmarks.MediaPipeSource()
    for video in (True, False):
        both = source.extract(frames, video=video)
        with monkeypatch.context() as m:
            m.setattr(landmarks, "ThreadPoolExecutor", OneThread)
            alone = source.extract(frames, video=video)
        assert (both.hand_conf > 0).any()  # the hand model ran
        for a, b in ((both.hands, alone.hands), (both.hand_conf, alone.hand_conf),
                     (both.pose, alone.pose), (both.pose_conf, alone.pose_conf)):
            assert np.array_equal(a, b, equal_nan=True)


@needs_mediapipe
def test_evaluates_hand_control_row_reads_mediapipes_hands_at_the_two_ends():
    """evaluate --hand-metrics mediapipe: the hand-control tracks start at the wrists MediaPipe
    finds in a clip's first frame and end at those of its last, and run still (both ends equal
    here: a clip that does not move gets tracks that do not move)."""
    from pathlib import Path
    from types import SimpleNamespace

    from framerturbo.data.landmarks import MediaPipeSource
    from framerturbo.eval.hands import endpoint_hand_tracks

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from landmarks import both_hands_frame

    frame = both_hands_frame()
    clip = SimpleNamespace(frames=np.stack([frame] * 5), landmarks=None)
    [plan] = endpoint_hand_tracks([clip], "mediapipe")
    wrists = MediaPipeSource().extract(frame[None], video=False).hands[0, :, 0]  # (2, 2)
    found = wrists[np.isfinite(wrists).all(axis=1)]
    assert len(found) == 2 and plan.shape[0] == 5
    for w in found:
        assert np.isclose(plan[0], w, atol=1e-6).all(axis=1).any()
    assert np.allclose(plan, plan[:1])
