"""Hand rows of `evaluate --hand-metrics` and of `stitch --report`, against values computed by
hand on injected landmark sequences; the commands end to end on tiny synthetic signer clips
with the ground-truth source; and the one-line error without the [sign] extra."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from framerturbo.cli.main import main
from framerturbo.data.landmarks import PALM, empty
from framerturbo.data.synthetic import write_dataset

SIZE = 16


def encode(*frames):
    """Frames whose pixel (0, 0) holds the left palm and (0, 1) the right palm as (x, y, 1);
    (0, 0, 0) = no hand. Lets a stand-in finder read injected landmarks back."""
    out = np.zeros((len(frames), SIZE, SIZE, 3), np.uint8)
    for f, (left, right) in enumerate(frames):
        for slot, palm in enumerate((left, right)):
            if palm is not None:
                out[f, 0, slot] = (*palm, 1)
    return out


def marks_of(frames):
    m = empty(len(frames), (SIZE, SIZE), 8.0, "ground-truth")
    for hand in range(2):
        seen = frames[:, 0, hand, 2] > 0
        m.hands[seen, hand, PALM] = frames[seen, 0, hand, :2]
        m.hand_conf[seen, hand] = 1.0
    return m


class PixelFinder:
    """Finds exactly the landmarks :func:`encode` put into the frames."""

    def detect(self, frames, fps=8.0):
        return marks_of(np.asarray(frames))


@pytest.fixture
def pixel_finder(monkeypatch):
    import framerturbo.eval.hands as hands
    import framerturbo.tasks.stitch_report as report

    for module in (hands, report):
        monkeypatch.setattr(module, "hand_finder", lambda *a, **k: PixelFinder())


def test_evaluate_hand_rows_by_hand(pixel_finder):
    from framerturbo.eval.hands import REAL, hand_rows

    # the truth: the left palm moves 10 px per frame along y = 20; the right hand is not there
    real = encode(*[((10 * k, 20), None) for k in range(5)])
    truth = marks_of(real)
    # the model: 3-4-5 off in every middle frame (MJE 5, DTW-MJE 5: the diagonal is cheapest),
    # a right hand found where none is expected (detection over expected pairs: 3/3)
    model = encode(((0, 20), None), ((13, 24), (5, 5)), ((23, 24), None), ((33, 24), None),
                   ((40, 20), None))
    # the left path 0,13,23,33,40 / 20,24,24,24,20: third differences (3, 4), (−3, −4) → 5
    exact = real.copy()  # clip 2: the model is exact → 0 everywhere
    miss = encode(((0, 20), None), (None, None), (None, None), (None, None), ((40, 20), None))
    rows = hand_rows({"model": [model, exact], "miss": [miss, miss]}, [real, real],
                     [truth, truth], "synthetic")
    m = rows["model"]
    assert m["hand_detection_rate"] == 1.0 and m["n_transitions"] == 2
    assert math.isclose(m["hand_mje_px"], (5 + 0) / 2)
    assert math.isclose(m["hand_dtw_mje_px"], (5 + 0) / 2)
    assert math.isclose(m["hand_jerk"], (5 + 0) / 2)
    assert rows["miss"]["hand_detection_rate"] == 0.0  # vanished hands
    assert math.isnan(rows["miss"]["hand_mje_px"]) and math.isnan(rows["miss"]["hand_jerk"])
    r = rows[REAL]  # the real frames seen by the same finder: found, exact, straight
    assert (r["hand_detection_rate"], r["hand_mje_px"], r["hand_jerk"]) == (1.0, 0.0, 0.0)


def test_stitch_report_rows_by_hand(pixel_finder, tmp_path):
    from framerturbo.tasks.stitch_report import OWN, Join, write_stitch_report

    right = (50 % SIZE, 12)
    a = encode(*[((x, 10), right) for x in (0, 1, 2, 3)])
    b = encode(*[((x, 10), right) for x in (9, 10, 11, 12)])
    # generated: the left hand spikes at frame 3 (x 4, 5, 8, 7, 8); the right hand is lost
    # after two frames. Path x: 1 2 3 | 4 5 8 7 8 | 9 10 11 → |third differences|
    # 0 0 2 6 6 2 0 0 → jerk 2; right: still where seen → 0; the mean over hands: 1.
    middle = encode(((4, 10), right), ((5, 10), right), ((8, 10), None), ((7, 10), None),
                    ((8, 10), None))
    join = Join(a, b, marks_of(a), marks_of(b), middle, ("A.mp4", "B.mp4"))
    metrics, page = write_stitch_report([join], "hands", "ground-truth", tmp_path / "j.mp4", 8.0)
    assert metrics.name == "j.mp4.metrics.json" and page.name == "j.mp4.report.html"
    doc = json.loads(metrics.read_text())
    method = doc["rows"]["framer + hand control"]
    assert math.isclose(method["hand_detection_rate"], 7 / 10)
    assert math.isclose(method["hand_jerk"], 1.0)
    assert doc["rows"][OWN] == {"hand_detection_rate": 1.0, "hand_jerk": 0.0,
                                "n_transitions": 1}
    assert set(doc["rows"]) == {"framer + hand control", "hard cut", "crossfade", "flow", OWN}
    [t] = doc["transitions"]
    assert (t["from"], t["to"], t["frames"]) == ("A.mp4", "B.mp4", 5)
    assert t["rows"]["framer + hand control"]["hand_jerk"] == method["hand_jerk"]
    html = page.read_text()
    assert "hands found" in html and "Transition 1: A.mp4 → B.mp4 (5 frames)" in html


# ----------------------------------------------------------------- the commands end to end
@pytest.fixture(scope="module")
def signer_clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signer")
    write_dataset("signer", 2, folder, num_frames=5, progress=False)
    return folder


MICRO = ["--model", "micro", "--steps", "1"]


def test_evaluate_hand_metrics_end_to_end(signer_clips, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["evaluate", str(signer_clips), "--hand-metrics", "synthetic", "--num-frames",
                 "5", "--max-clips", "2", "--out", str(out), *MICRO]) == 0
    doc = json.loads(out.read_text())
    assert doc["hands"]["source"] == "synthetic"
    real = doc["hands"]["real frames"]
    assert real["n_transitions"] == 2 and 0.5 <= real["hand_detection_rate"] <= 1.0
    assert real["hand_mje_px"] < 1.5  # the hand net reads real frames to about a pixel
    # the rows: hard cut, cross-fade, flow, Framer without and with hand control
    assert set(doc["rows"]) == {"base (micro)", "base (micro) + hand control", "hard cut",
                                "crossfade", "flow"}
    for label in doc["rows"]:
        row = doc["rows"][label]
        assert 0.0 <= row["hand_detection_rate"] <= 1.0
        assert {"hand_mje_px", "hand_dtw_mje_px", "hand_jerk"} <= set(row)
    assert doc["rows"]["base (micro) + hand control"]["control"] == "hands"
    assert doc["rows"]["hard cut"]["kind"] == "baseline"
    assert doc["conditions"]["control_scale"] == 2.0  # the micro record's
    printed = capsys.readouterr().out
    assert "hands found" in printed and "| real frames |" in printed
    assert "hands found" in out.with_suffix(".html").read_text()
    assert "| real frames |" in out.with_suffix(".md").read_text()


def test_stitch_report_end_to_end(signer_clips, tmp_path, capsys):
    a, b = sorted(signer_clips.glob("*.mp4"))
    out = tmp_path / "j.mp4"
    assert main(["stitch", str(a), str(b), "-o", str(out), "--report", "--landmarks",
                 "ground-truth", "--transition-frames", "3", *MICRO]) == 0
    meta = json.loads(out.with_name("j.mp4.json").read_text())
    assert meta["report"] == [str(out) + ".metrics.json", str(out) + ".report.html"]
    doc = json.loads(out.with_name("j.mp4.metrics.json").read_text())
    assert doc["method"] == "framer (no control)" and doc["landmarks"] == "ground-truth"
    [t] = doc["transitions"]
    # the video's transition without control and, for the report only, the same with control
    assert t["frames"] == 3 and set(t["rows"]) == {
        "framer (no control)", "framer + hand control", "hard cut", "crossfade", "flow",
        "clips' own frames"}
    assert all(0 <= r["hand_detection_rate"] <= 1 for r in t["rows"].values())
    assert "| clips' own frames |" in capsys.readouterr().out
    assert main(["stitch", str(a), str(b), "-o", str(out), "--report", "--landmarks",
                 "ground-truth", "--transition-frames", "3", "--control", "hands", *MICRO]) == 0
    doc = json.loads(out.with_name("j.mp4.metrics.json").read_text())
    assert doc["method"] == "framer + hand control"
    assert {"framer (no control)", "framer + hand control"} <= set(doc["rows"])
    rows = doc["transitions"][0]["rows"]
    assert rows["framer (no control)"] != rows["framer + hand control"]


@pytest.mark.parametrize("argv", [
    ["evaluate", "DATA", "--hand-metrics", "mediapipe"],
    ["evaluate", "SQUARES", "--hand-metrics", "auto"],  # not signer clips: MediaPipe needed
    ["stitch", "A", "B", "-o", "OUT", "--report"],  # --landmarks mediapipe by default
])
def test_hand_metrics_without_the_sign_extra(argv, signer_clips, tmp_path, monkeypatch, capsys):
    from videos import moving_square_frames, write_video

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe → ImportError
    squares = tmp_path / "squares"
    squares.mkdir()
    write_video(squares / "s.mp4", moving_square_frames(6), fps=8)
    a, b = sorted(signer_clips.glob("*.mp4"))
    names = {"DATA": str(signer_clips), "SQUARES": str(squares), "A": str(a), "B": str(b),
             "OUT": str(tmp_path / "o.mp4")}
    code = main([names.get(x, x) for x in argv] + ["--num-frames", "5"] * (argv[0] == "evaluate")
                + MICRO)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "pip install 'framerturbo[sign]'" in err[0]
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.system
def test_hand_eval_writes_its_report_with_the_shared_helpers(tmp_path, capsys):
    assert main(["hand-eval", "--n", "1", "--steps", "1", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert set(doc["rows"]) == {"hard cut", "crossfade", "flow", "framer (no control)",
                                "framer + hand control", "framer + true tracks"}
    assert doc["real"]["hand_detection_rate"] == doc["real_detection_rate"]
    assert doc["real"]["hand_mje_px"] < 1.5  # the instrument's floor: the hand net
    assert doc["conditions"]["steps"] == 1
    from framerturbo.models.record import read_record

    assert doc["conditions"]["sampler"] == read_record("micro").sampler  # the model's default
    page = (tmp_path / "report.html").read_text()
    assert "real frames" in page and "DTW-MJE (px)" in page
    assert "| real frames |" in capsys.readouterr().out


@pytest.mark.system
def test_hand_eval_takes_the_turbo_fast_path(tmp_path):
    assert main(["hand-eval", "--n", "1", "--turbo", "--out", str(tmp_path)]) == 0
    conditions = json.loads((tmp_path / "metrics.json").read_text())["conditions"]
    assert (conditions["sampler"], conditions["steps"], conditions["turbo"]) == ("turbo", 4, "")


def test_the_oracle_row_steers_the_plans_joints_along_their_true_paths():
    from framerturbo.data.handpaths import hand_tracks
    from framerturbo.data.landmarks import WRIST, from_signer_tracks
    from framerturbo.data.synthetic import render_signer
    from framerturbo.eval.hand_protocol import true_hand_tracks

    clip = render_signer(9_000_001, 15, 64)  # a window 3..11 with 3 frames of context
    marks = from_signer_tracks(clip.tracks, (64, 64), 8.0)
    lo, hi = 3, 11
    plan = hand_tracks(marks.slice(0, lo + 1), marks.slice(hi, len(marks)), hi - lo - 1)
    oracle = true_hand_tracks(plan, clip.tracks[lo:hi + 1])
    assert oracle.shape == (9, len(plan.tracks.tracks), 2)
    # the plan's paths and the truth share their ends, and both hands are steered
    planned = np.stack([t.points for t in plan.tracks.tracks], 1)
    np.testing.assert_allclose(oracle[[0, -1]], planned[[0, -1]], atol=1e-9)
    assert {hand for hand, _ in plan.joints} == {0, 1}
    # where a hand is seen, its wrist track is exactly the landmarks' true wrist
    k = plan.joints.index((0, "wrist"))
    seen = marks.hand_conf[lo:hi + 1, 0] > 0
    np.testing.assert_array_equal(oracle[seen, k], marks.hands[lo:hi + 1, 0, WRIST][seen])
    assert np.isfinite(oracle).all()  # unseen frames keep the renderer's position

    plan.joints, plan.tracks.tracks = [], []
    assert true_hand_tracks(plan, clip.tracks[lo:hi + 1]) is None


def test_signer_joint_path_refuses_a_joint_the_signer_lacks():
    from framerturbo.data.landmarks import signer_joint_path

    tracks = np.zeros((3, 11, 2))
    with pytest.raises(ValueError, match="tip12"):
        signer_joint_path(tracks, 0, "tip12")


@pytest.mark.system
def test_hand_eval_scores_a_signers_lora(tmp_path):
    """`hand-eval --lora` puts a LoRA under both Framer rows: at scale 0 they are the base's to the
    bit, at scale 1 they change; the conditions name it."""
    import torch

    from framerturbo.models.adapters import add_lora, save_lora, target_regex
    from framerturbo.models.loading import load_components

    unet = load_components("micro", device="cpu", controlnet=False)["unet"]
    torch.manual_seed(0)
    for p in add_lora(unet, 4, 4, 0.0, target_regex("attn")):
        torch.nn.init.normal_(p, std=0.2)
    lora = save_lora(unet, tmp_path / "signer-lora")

    def framer_rows(*extra):
        out = tmp_path / f"h{len(list(tmp_path.iterdir()))}"
        assert main(["hand-eval", "--n", "1", "--steps", "2", "--out", str(out), *extra]) == 0
        doc = json.loads((out / "metrics.json").read_text())
        return {k: v for k, v in doc["rows"].items() if k.startswith("framer")}, doc["conditions"]

    base, _ = framer_rows()
    off, conditions = framer_rows("--lora", f"{lora}:0")
    on, _ = framer_rows("--lora", str(lora))
    assert off == base and on != base
    assert conditions["lora"] == [f"{lora}:0"]


def test_evaluate_steers_hand_control_by_the_endpoints_hands_alone(signer_clips):
    """The hand-control row's tracks run from the hands of a clip's first frame to those of its
    last (still ends) and know nothing of the frames between (the truth being scored)."""
    from framerturbo.core.settings import DataConfig
    from framerturbo.data.landmarks import WRIST
    from framerturbo.eval.evaluate import load_eval_clips
    from framerturbo.eval.hands import endpoint_hand_tracks

    settings = DataConfig(height=64, width=64, num_frames=5, target_fps=8.0)  # the clips' rate
    clips, _ = load_eval_clips([str(signer_clips)], settings, 2, hands="synthetic")
    plans = endpoint_hand_tracks(clips, "synthetic")
    for clip, plan in zip(clips, plans):
        assert plan.shape[0] == 5
        marks = clip.landmarks
        wrists = [marks.wrist(hand)[0] for hand in range(2)]
        both = [w for w in wrists if np.isfinite(w[[0, 4]]).all()]  # seen at both ends
        assert both
        for w in both:  # its wrist track runs from the first frame's wrist to the last's
            starts = np.isclose(plan[0], w[0], atol=1e-6).all(axis=1)
            assert np.allclose(plan[-1][starts], w[4], atol=1e-6) and starts.any()
        marks.hands[1:4] += 7.0  # the middle of the clip moves: the plan does not
        marks.pose[1:4] += 7.0
    assert all(np.array_equal(a, b) for a, b in zip(plans, endpoint_hand_tracks(clips,
                                                                                "synthetic")))
