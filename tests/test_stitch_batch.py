"""stitch (frame counts, fps, positions, trimming) and batch interpolation (resume, bad pairs)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from conftest import textured_image
from framerturbo.cli.main import main
from framerturbo.tasks.stitch import plan_frame_count, trim_static
from framerturbo.media.files import read_video_frames
from videos import moving_square_frames, write_video

MODEL = ["--model", "random-micro", "--steps", "2", "--height", "64", "--width", "64"]


def test_stitch_three_clips(tmp_path):
    clips = [write_video(tmp_path / f"c{i}.mp4", moving_square_frames(n, seed=i), fps=10)
             for i, n in enumerate((6, 8, 5))]
    out = tmp_path / "joined.mp4"
    assert main(["stitch", *map(str, clips), "-o", str(out), "--transition-frames", "3",
                 *MODEL]) == 0
    video = read_video_frames(out)
    assert len(video) == plan_frame_count([6, 8, 5], 3) == 25
    meta = json.loads(out.with_name("joined.mp4.json").read_text())
    assert meta["fps"] == 10 and meta["frames"] == 25
    kinds = [(s["kind"], s["start_frame"], s["end_frame"]) for s in meta["segments"]]
    assert kinds == [("clip", 0, 5), ("transition", 6, 8), ("clip", 9, 16),
                     ("transition", 17, 19), ("clip", 20, 24)]
    import av
    with av.open(str(out)) as c:
        assert float(c.streams.video[0].average_rate) == 10


def test_stitch_trims_static_ends(tmp_path):
    moving = moving_square_frames(6, seed=1)
    held = np.concatenate([np.repeat(moving[:1], 3, 0), moving, np.repeat(moving[-1:], 2, 0)])
    assert trim_static(held, 0.5) == (3, 2)
    a = write_video(tmp_path / "a.mp4", held, fps=8)
    b = write_video(tmp_path / "b.mp4", moving_square_frames(7, seed=2), fps=8)
    out = tmp_path / "t.mp4"
    assert main(["stitch", str(a), str(b), "-o", str(out), "--transition-frames", "2",
                 "--trim-static", *MODEL]) == 0
    meta = json.loads(out.with_name("t.mp4.json").read_text())
    first = meta["segments"][0]
    assert (first["trimmed_head"], first["trimmed_tail"]) == (3, 2)
    assert meta["frames"] == len(read_video_frames(out)) == 6 + 2 + 7


def test_stitch_conforms_sizes_and_rates(tmp_path, capsys):
    a = write_video(tmp_path / "a.mp4", moving_square_frames(6, seed=1), fps=10)
    b = write_video(tmp_path / "b.mp4", moving_square_frames(6, size=96, square=20, seed=2),
                    fps=5)
    out = tmp_path / "c.mp4"
    assert main(["stitch", str(a), str(b), "-o", str(out), "--transition-frames", "2",
                 *MODEL]) == 0
    err = capsys.readouterr().err
    assert "resampled to 10" in err and "resized to 64x64" in err
    assert read_video_frames(out).shape[1:3] == (64, 64)
    assert json.loads(out.with_name("c.mp4.json").read_text())["frames"] == 6 + 2 + 12


def test_stitch_letterboxes_clips_of_another_aspect_with_fit_pad(tmp_path, capsys):
    """A 2:1 clip after a square one: centre-cropped by default (its sides cut off), letterboxed
    whole with --fit pad (black bars above and below, nothing cut: a signer's hands low in the
    frame stay in view)."""
    a = write_video(tmp_path / "a.mp4", moving_square_frames(6, seed=1), fps=8)
    square = moving_square_frames(6, seed=2)
    wide = np.concatenate([square, np.full_like(square, 255)], axis=2)  # (6, 64, 128, 3)
    b = write_video(tmp_path / "b.mp4", wide, fps=8)
    tops = {}
    for fit in ("crop", "pad"):
        out = tmp_path / f"{fit}.mp4"
        assert main(["stitch", str(a), str(b), "-o", str(out), "--transition-frames", "2",
                     "--fit", fit, *MODEL]) == 0
        assert ("letterboxed" if fit == "pad" else "centre-cropped") in capsys.readouterr().err
        frames = read_video_frames(out)
        assert frames.shape == (6 + 2 + 6, 64, 64, 3)
        tops[fit] = frames[-1, :12].mean()  # B's last frame, top rows
    assert tops["pad"] < 20 < tops["crop"]


def test_sentence_letterboxes_a_clip_of_another_aspect_by_default(tmp_path, capsys):
    """`sentence` is for signers, whose hands a crop cuts off: its --fit defaults to pad
    (stitch's to crop); --fit crop still crops."""
    lexicon = tmp_path / "lexicon"
    lexicon.mkdir()
    write_video(lexicon / "HELLO.mp4", moving_square_frames(6, seed=1), fps=8)
    square = moving_square_frames(6, seed=2)
    write_video(lexicon / "NAME.mp4", np.concatenate([square, np.full_like(square, 255)],
                                                     axis=2), fps=8)
    for flags, how in (((), "letterboxed"), (("--fit", "crop"), "centre-cropped")):
        out = tmp_path / f"{how}.mp4"
        assert main(["sentence", "HELLO NAME", "--lexicon", str(lexicon), "-o", str(out),
                     "--transition-frames", "2", *flags, *MODEL]) == 0
        assert how in capsys.readouterr().err
        assert read_video_frames(out).shape == (6 + 2 + 6, 64, 64, 3)


def test_batch_says_each_framing_note_once(tmp_path, capsys):
    """Three wide pairs are letterboxed alike: the note is printed once for the batch, not once
    per pair, and every output keeps the 2:1 aspect."""
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for pid in ("a", "b", "c"):
        wide = textured_image(96, ord(pid))[24:72]
        Image.fromarray(wide).save(pairs / f"{pid}_start.png")
        Image.fromarray(np.roll(wide, 2, axis=1)).save(pairs / f"{pid}_end.png")
    assert main(["interpolate", "--pairs", str(pairs), "-o", str(tmp_path / "out"),
                 "--format", "gif", "--num-frames", "3", *MODEL]) == 0
    assert capsys.readouterr().err.count("letterboxed into the model's 64x64") == 1
    for pid in ("a", "b", "c"):
        with Image.open(tmp_path / "out" / f"{pid}.gif") as gif:
            assert gif.size == (64, 32)


def test_batch_pairs_resume_and_bad_pair(tmp_path, capsys):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for pid in ("a", "b"):
        Image.fromarray(textured_image(64, 1)).save(pairs / f"{pid}_start.png")
        Image.fromarray(textured_image(64, 2)).save(pairs / f"{pid}_END.JPG")
    (pairs / "bad_start.png").write_bytes(b"not an image")
    Image.fromarray(textured_image(64, 3)).save(pairs / "bad_end.png")
    Image.fromarray(textured_image(64, 3)).save(pairs / "lonely_start.png")
    out = tmp_path / "out"
    argv = ["interpolate", "--pairs", str(pairs), "-o", str(out), "--num-frames", "5", *MODEL]
    assert main(argv) == 2  # the bad pair is reported, the others are done
    captured = capsys.readouterr()
    assert "2 written, 0 already there, 1 failed, 1 not understood" in captured.out
    assert "failed: bad:" in captured.err and "lonely: no lonely_end" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4"]
    stamp = (out / "a.mp4").stat().st_mtime_ns
    (pairs / "bad_start.png").unlink()
    (pairs / "bad_end.png").unlink()
    assert main(argv) == 2  # the lonely image is still a pair that was not made
    (pairs / "lonely_start.png").unlink()
    capsys.readouterr()
    assert main(argv) == 0
    assert "0 written, 2 already there, 0 failed" in capsys.readouterr().out
    assert (out / "a.mp4").stat().st_mtime_ns == stamp


def test_batch_from_jsonl(tmp_path):
    Image.fromarray(textured_image(64, 1)).save(tmp_path / "s.png")
    Image.fromarray(textured_image(64, 2)).save(tmp_path / "e.png")
    (tmp_path / "t.json").write_text(json.dumps({"tracks": [{"points": [[10, 10], [30, 20]]}]}))
    (tmp_path / "list.jsonl").write_text(
        json.dumps({"start": "s.png", "end": "e.png", "output": "first"}) + "\n"
        + json.dumps({"start": "s.png", "end": "e.png", "tracks": "t.json",
                      "output": "second"}) + "\n")
    out = tmp_path / "out"
    assert main(["interpolate", "--pairs", str(tmp_path / "list.jsonl"), "-o", str(out),
                 "--format", "gif", "--num-frames", "5", *MODEL]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["first.gif", "second.gif"]


def test_stitch_with_one_clip_is_one_line(tmp_path, capsys):
    assert main(["stitch", str(tmp_path / "a.mp4"), "-o", str(tmp_path / "x.mp4")]) == 2
    assert "stitch joins clips: give at least two, got 1" in capsys.readouterr().err


def test_stitch_given_a_folder_says_to_list_its_clips(tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    assert main(["stitch", str(folder), "-o", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert f"{folder} is a folder: give its clips as files" in err and "*.mp4" in err
    assert len(err.strip().splitlines()) == 1
