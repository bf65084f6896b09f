"""Data: discovery, seek-based reading, clip sampling, check-data, skipping bad sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framerturbo.cli.main import main
from framerturbo.data.clips import Span, clip_times, frame_step, num_windows
from framerturbo.data.dataset import ClipDataset, ClipSettings
from framerturbo.data.sources import discover
from framerturbo.media.video import probe, read_frames_at, resize_frames
from videos import moving_square_frames, write_cut_short, write_video


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """good / truncated / 0-byte / 3-frame / static videos, as the issue lists them."""
    d = tmp_path_factory.mktemp("mixed")
    write_video(d / "good.mp4", moving_square_frames(24, seed=1))
    full = write_video(d / "full.mp4", moving_square_frames(24, seed=2)).read_bytes()
    (d / "truncated.mp4").write_bytes(full[: len(full) // 2])
    (d / "full.mp4").unlink()
    (d / "zero.mp4").write_bytes(b"")
    write_video(d / "short.mp4", moving_square_frames(3, seed=3))
    write_video(d / "static.mp4", moving_square_frames(24, seed=4, static=True))
    return d


def test_check_data_reports_each_problem(mixed, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["check-data", str(mixed), "--num-frames", "5", "--stride", "2",
                 "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    status = {Path(s["path"]).name: s["status"] for s in doc["sources"]}
    assert status == {"good.mp4": "usable", "truncated.mp4": "unreadable",
                      "zero.mp4": "unreadable", "short.mp4": "too_short",
                      "static.mp4": "static"}
    assert doc["counts"]["usable"] == 1 and doc["counts"]["unreadable"] == 2
    out = capsys.readouterr().out
    assert "too_short" in out and "usable=1" in out


def test_check_data_cuts_clips_as_a_training_config_does(mixed, tmp_path):
    """--config micro-lora takes its 5 frames at stride 2; bare, the released 14 at stride 4
    find the 24-frame clips too short; a flag still wins over the config."""
    def status(*extra):
        report = tmp_path / "r.json"
        main(["check-data", str(mixed), "--json", str(report), *extra])
        return {Path(s["path"]).name: s["status"] for s in
                json.loads(report.read_text())["sources"]}["good.mp4"]

    assert status("--config", "micro-lora") == "usable"
    assert status() == "too_short"
    assert status("--config", "micro-lora", "--num-frames", "14", "--stride", "4") == "too_short"


def test_check_data_exit_2_when_nothing_is_usable(mixed, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.mp4").write_bytes(b"")
    assert main(["check-data", str(bad), "--json", str(tmp_path / "r.json")]) == 2


def test_training_dataset_skips_bad_sources_and_loads_the_rest(mixed):
    ds = ClipDataset(discover([mixed]), ClipSettings(num_frames=5, height=64, width=64, stride=2))
    assert sorted(Path(p).name for p in ds.skipped.reasons) == [
        "short.mp4", "truncated.mp4", "zero.mp4"]
    assert len(ds) == 2
    sample = ds[(0, 0)]
    assert sample["frames"].shape == (5, 3, 64, 64) and sample["skipped"] == 0
    assert sample["fps"] == pytest.approx(6.0)  # 12 fps source, every 2nd frame


def test_seek_reading_returns_the_right_frames(tmp_path):
    frames = moving_square_frames(60, seed=0, velocity=(0.5, 0.25))
    frames[:, :4, :4] = np.arange(60)[:, None, None, None] * 4  # frame id in a corner
    path = write_video(tmp_path / "v.mp4", frames, fps=10)
    info = probe(path)
    assert info.num_frames == 60 and info.fps == pytest.approx(10)
    got = read_frames_at(path, [4.0, 4.2, 4.4], info.fps)  # frames 40, 42, 44: needs a seek
    ids = np.round(got[:, 1, 1].mean(axis=1) / 4).astype(int)
    assert list(ids) == [40, 42, 44]


def test_frame_folder_and_manifest(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(moving_square_frames(12)):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    video = write_video(tmp_path / "v.mp4", moving_square_frames(30), fps=10)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "v.mp4", "start": 5, "end": 20}) + "\n"
                        + json.dumps({"path": "frames", "fps": 12}) + "\n")
    sources = discover([manifest])
    assert [s.path for s in sources] == [video, folder]
    ds = ClipDataset(sources, ClipSettings(num_frames=4, height=64, width=64, stride=2,
                                           sampling="every-window"))
    assert len(ds) == 2 + 1  # frames 5..20 fit 2 windows of 4x2; the 12-frame folder 1
    assert ds[(2, 0)]["frames"].shape == (4, 3, 64, 64)
    with pytest.raises(ValueError, match="m2.jsonl:1"):
        (tmp_path / "m2.jsonl").write_text("{oops\n")
        discover([tmp_path / "m2.jsonl"])


def test_clip_arithmetic():
    span = Span(0.0, 2.0, 10.0)  # 20 frames
    step = frame_step(span, 5, 2, 0.0, "random")
    assert step == pytest.approx(0.2)
    assert num_windows(span, 5, step) == 2
    rng = np.random.default_rng(0)
    for mode, window in (("random", 0), ("every-window", 1)):
        t = clip_times(span, 5, step, mode, window, rng)
        assert t[0] >= 0 and t[-1] <= 1.9 + 1e-9 and len(t) == 5
    uniform = frame_step(span, 5, 2, 0.0, "uniform")
    assert clip_times(span, 5, uniform, "uniform", 0, rng)[-1] == pytest.approx(1.9)
    assert num_windows(Span(0, 0.3, 10), 5, 0.2) == 0


def test_resize_keeps_aspect_by_cropping():
    frames = np.zeros((1, 100, 200, 3), np.uint8)
    frames[:, :, 50:150] = 255  # centre band
    out = resize_frames(frames, 64, 64, "crop")
    assert out.shape == (1, 64, 64, 3) and out.mean() > 250  # only the centre survives
    assert resize_frames(frames, 64, 64, "squash")[0, :, 0].max() == 0


def test_check_data_flags_a_file_cut_short_with_its_index_at_the_front(tmp_path):
    """The container claims 120 frames; only the first ~40 % decode. check-data must say so and
    report the real count, not "usable, 120 frames"."""
    import av

    folder = tmp_path / "d"
    folder.mkdir()
    cut = write_cut_short(folder / "cut.mp4", moving_square_frames(120, seed=1))
    write_video(folder / "whole.mp4", moving_square_frames(120, seed=2))
    assert probe(cut).num_frames == 120  # what the container promises
    decoded = 0
    with av.open(str(cut)) as c:
        try:
            for _ in c.decode(video=0):
                decoded += 1
        except av.error.FFmpegError:
            pass
    assert 10 < decoded < 80
    report = tmp_path / "r.json"
    assert main(["check-data", str(folder), "--num-frames", "5", "--stride", "2",
                 "--json", str(report)]) == 0
    rows = {Path(s["path"]).name: s for s in json.loads(report.read_text())["sources"]}
    assert rows["cut.mp4"]["status"] == "truncated"
    assert abs(rows["cut.mp4"]["frames"] - decoded) <= 1
    assert "120" in rows["cut.mp4"]["reason"] and str(rows["cut.mp4"]["frames"]) in \
        rows["cut.mp4"]["reason"]
    assert rows["whole.mp4"]["status"] == "usable" and rows["whole.mp4"]["frames"] == 120


def test_a_bad_draw_is_skipped_even_with_a_single_source(tmp_path):
    """One source whose second half is missing: a random window there fails to decode; the
    dataset must draw another window (and count the failure), never raise."""
    cut = write_cut_short(tmp_path / "cut.mp4", moving_square_frames(120, seed=1))
    ds = ClipDataset(discover([cut]), ClipSettings(num_frames=5, height=64, width=64, stride=2))
    assert len(ds) == 1
    samples = [ds[(0, epoch)] for epoch in range(12)]
    assert all(s["frames"].shape == (5, 3, 64, 64) for s in samples)
    skipped = [s["skipped"] for s in samples]
    assert sum(k > 0 for k in skipped) >= 3  # most windows of the claimed length are unreadable
    assert [ds[(0, epoch)]["key"] for epoch in range(12)] == [s["key"] for s in samples]


def test_the_failure_message_counts_what_was_tried(tmp_path):
    cut = write_cut_short(tmp_path / "cut.mp4", moving_square_frames(120, seed=1), keep=0.1)
    ds = ClipDataset(discover([cut]), ClipSettings(num_frames=5, height=64, width=64, stride=2))
    assert len(ds) == 1  # the index promises 120 frames; (almost) none decode
    with pytest.raises(ValueError, match=r"all 1 clip\(s\) failed to load \(21 attempts"):
        ds[(0, 0)]


def _datasets(sources, *overrides):
    from framerturbo.core.config import load_config
    from framerturbo.data.splits import make_datasets

    return make_datasets(load_config(None, [f"data.sources={sources}", "data.num_frames=5",
                                            "data.height=64", "data.width=64", "data.stride=2",
                                            *overrides]))


def test_few_long_videos_still_get_validation_cut_by_time(tmp_path, caplog):
    """Two 5-second videos and validation_clips = 4: whole files cannot be spared, so the held-out
    clips are cut from the end of each video by time, loudly, and never trained on."""
    folder = tmp_path / "two"
    folder.mkdir()
    for i in range(2):
        write_video(folder / f"v{i}.mp4", moving_square_frames(60, seed=i), fps=12)
    with caplog.at_level("WARNING"):
        train, val = _datasets(folder, "data.validation_clips=4")
    assert val is not None and len(val) == 4
    assert "cut by time" in caplog.text
    assert sorted(r.source.path.name for r in train.items) == ["v0.mp4", "v1.mp4"]
    for ref in train.items:
        held = [v for v in val.items if v.source.path == ref.source.path]
        assert len(held) == 2
        assert all(v.span.start >= ref.span.end - 1e-9 for v in held)  # disjoint in time
        rng = np.random.default_rng(0)
        last = max(clip_times(ref.span, 5, ref.step, "random", 0, rng)[-1] for _ in range(50))
        assert last < min(v.span.start for v in held)
    assert ref.span.end - ref.span.start > 2.5  # training keeps more than half of each video
    sample = val[(3, 0)]
    assert sample["frames"].shape == (5, 3, 64, 64) and sample["fps"] == pytest.approx(6.0)


def test_validation_that_cannot_be_held_out_is_announced(tmp_path, caplog):
    one = tmp_path / "one"
    one.mkdir()
    write_video(one / "v.mp4", moving_square_frames(24, seed=0), fps=12)
    with caplog.at_level("WARNING"):
        train, val = _datasets(one, "data.sampling=uniform")
    assert val is None and len(train) == 1
    assert "NO validation" in caplog.text and "validation_sources" in caplog.text


def _id_video(path, n=90, keyint=None, fps=10):
    """Frames whose top-left corner encodes the frame index; ``keyint`` None = one keyframe."""
    import av
    from fractions import Fraction

    frames = moving_square_frames(n, seed=0, velocity=(0.5, 0.25))
    frames[:, :4, :4] = (np.arange(n) * 4 % 256)[:, None, None, None]
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        s.codec_context.gop_size = keyint or n + 1
        s.options = {"crf": "10", **({} if keyint else {"sc_threshold": "0"})}
        for f in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def _ids(frames):
    return list(np.round(frames[:, 1, 1].mean(axis=1) / 4).astype(int))


@pytest.mark.parametrize("keyint", [None, 12])
def test_clips_read_in_any_order_are_exact(tmp_path, keyint):
    """The reader continues decoding when the next clip of the same file lies ahead (no seek);
    whatever the order, every clip holds exactly the frames asked for."""
    from framerturbo.media import video

    path = _id_video(tmp_path / "v.mp4", n=60, keyint=keyint)
    starts = [0, 5, 30, 31, 50, 12, 40, 2, 10, 20, 27, 44, 45, 46, 51]
    for first in starts:
        wanted = [first + 2 * k for k in range(4)]
        got = read_frames_at(path, [i / 10 for i in wanted], 10.0)
        assert _ids(got) == wanted, (first, _ids(got))
    other = write_video(tmp_path / "o.mp4", moving_square_frames(30), fps=10)
    read_frames_at(other, [0.5], 10.0)  # another file in between closes the first
    assert _ids(read_frames_at(path, [5.0, 5.1], 10.0)) == [50, 51]
    video._READERS.clear()


def test_every_window_of_a_one_keyframe_file_decodes_it_once(tmp_path):
    """Reading all windows of a single-keyframe file in order must cost about one pass over the
    file, not one decode-from-the-start per window (O(n) instead of O(n^2))."""
    from framerturbo.media import video

    path = _id_video(tmp_path / "v.mp4", n=90, keyint=None)
    ds = ClipDataset(discover([path]), ClipSettings(num_frames=4, height=64, width=64, stride=2,
                                                    sampling="every-window"))
    assert len(ds) == 11  # windows of 8 frames (7 spans + 1 gap) in 90
    video._READERS.clear()
    decoded = 0
    for i in range(len(ds)):
        ds.load(i)
        decoded += video._READERS["open"].decoded if "open" in video._READERS else 0
        if "open" in video._READERS:
            video._READERS["open"].decoded = 0
    assert decoded <= 95  # one pass (+ a frame-threading margin); fresh seeks would be ~500
    video._READERS.clear()
