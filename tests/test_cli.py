"""`framerturbo interpolate` end to end on the micro model, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import textured_image
from framerturbo.cli.main import main
from framerturbo.media.files import read_video_frames

FAST = ["--num-frames", "5", "--steps", "2", "--height", "64", "--width", "64"]


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    Image.fromarray(textured_image(64, 1)).save(d / "a.png")
    Image.fromarray(textured_image(96, 1, shift=(4, 2))).save(d / "b.jpg")  # other size
    return d / "a.png", d / "b.jpg"


def interpolate(endpoints, out, *extra, model=("--model", "random-micro")):
    return main(["interpolate", str(endpoints[0]), str(endpoints[1]), "-o", str(out),
                 *model, *FAST, *extra])


def test_writes_mp4_gif_and_png_folder(endpoints, tmp_path, capsys, released_layout):
    assert interpolate(endpoints, tmp_path / "o.mp4", "--fps", "5") == 0
    video = read_video_frames(tmp_path / "o.mp4")
    assert video.shape == (5, 64, 64, 3)
    err = capsys.readouterr().err
    assert "RANDOM weights" in err and "resized to the start's size" in err

    framer, svd = released_layout
    assert interpolate(endpoints, tmp_path / "o.gif",
                       model=("--model", str(framer), "--svd", str(svd))) == 0
    with Image.open(tmp_path / "o.gif") as gif:
        assert gif.n_frames == 5 and gif.size == (64, 64)

    assert interpolate(endpoints, tmp_path / "frames", "--sampler", "dpm++") == 0
    pngs = sorted((tmp_path / "frames").glob("*.png"))
    assert len(pngs) == 5 and Image.open(pngs[0]).size == (64, 64)
    assert not list(tmp_path.glob(".*"))  # no temporary files left


@pytest.mark.parametrize("mode,canvas,shift,out_hw", [
    ("pad", (96, 96), (0, 24), (32, 64)),  # letterboxed; the bars cut off the output
    ("crop", (48, 48), (-24, 0), (64, 64)),  # the centre square
    ("squash", (48, 96), (0, 0), (64, 64)),  # stretched, as Framer's own app does
])
def test_other_aspects_are_letterboxed_cropped_or_squashed(mode, canvas, shift, out_hw, tmp_path,
                                                           monkeypatch, capsys):
    """A 96×48 pair on a 64×64 model: the pipeline frames the picture on a canvas of the model's
    aspect (so its resize scales evenly; ``resize=`` of the Python API, which the command
    passes), the tracks move with the picture, and with pad the output keeps the picture's 2:1
    aspect. Before, every pair was stretched to the model's size."""
    import framerturbo.sampling.pipeline as pipeline

    wide = textured_image(96, 2)[24:72]  # (48, 96, 3)
    Image.fromarray(wide).save(tmp_path / "a.png")
    Image.fromarray(np.roll(wide, 3, axis=1)).save(tmp_path / "b.png")
    (tmp_path / "t.json").write_text(json.dumps({"tracks": [{"points": [[10, 20], [40, 30]]}]}))
    seen = {}
    frame_batch = pipeline.frame_batch
    monkeypatch.setattr(pipeline, "frame_batch", lambda starts, ends, tracks, *a: (
        seen.update(given=tracks, framed=frame_batch(starts, ends, tracks, *a)[0]),
        [seen["framed"]])[1])
    assert interpolate((tmp_path / "a.png", tmp_path / "b.png"), tmp_path / "o", "--tracks",
                       str(tmp_path / "t.json"), "--resize", mode) == 0
    framed = seen["framed"]
    assert framed.start.shape == framed.end.shape == (*canvas, 3)
    # squash leaves the tracks as given: in the picture's pixels, which fill the frame
    tracks = seen["given"] if mode == "squash" else framed.tracks
    assert tracks.image_size == canvas[::-1]
    assert tracks.tracks[0].points[0] == pytest.approx(np.add([10, 20], shift))
    if mode == "pad":  # the picture sits whole between black bars
        assert np.array_equal(framed.start[24:72], wide) and not framed.start[:24].any()
    pngs = sorted((tmp_path / "o").glob("*.png"))
    assert len(pngs) == 5 and np.asarray(Image.open(pngs[2])).shape[:2] == out_hw
    # the note says how the images were framed; nothing is stretched unasked
    err = capsys.readouterr().err
    assert f"(--resize {mode})" in err and "stretched to 64x64, another aspect" not in err


def test_seed_reproducible_and_tracks_accepted(endpoints, tmp_path):
    tracks = tmp_path / "t.json"
    tracks.write_text(json.dumps({"tracks": [{"points": [[10, 10], [40, 30]]}]}))
    for name in ("a", "b"):
        assert interpolate(endpoints, tmp_path / name, "--tracks", str(tracks), "--seed", "3") == 0
    a = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "a").glob("*.png"))]
    b = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "b").glob("*.png"))]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert interpolate(endpoints, tmp_path / "c", "--tracks", str(tracks), "--seed", "4") == 0
    c = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "c").glob("*.png"))]
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_bad_inputs_exit_2_with_one_line(endpoints, tmp_path, capsys):
    corrupt = tmp_path / "bad.png"
    corrupt.write_bytes(b"\x89PNG not really")
    bad_tracks = tmp_path / "t.json"
    bad_tracks.write_text("{")
    cases = [
        (["interpolate", str(tmp_path / "missing.png"), str(endpoints[1]), "-o", "x.mp4",
          "--model", "random-micro"], "missing.png: file not found"),
        (["interpolate", str(corrupt), str(endpoints[1]), "-o", "x.mp4",
          "--model", "random-micro"], "bad.png: not a readable image"),
        (["interpolate", *map(str, endpoints), "-o", str(tmp_path / "x.avi"),
          "--model", "random-micro"], "unknown output type"),
        (["interpolate", *map(str, endpoints), "-o", str(tmp_path / "x.mp4"),
          "--model", str(tmp_path / "nomodel")], "model folder not found"),
        (["interpolate", *map(str, endpoints), "-o", str(tmp_path / "x.mp4"),
          "--model", "random-micro", "--height", "100"], "multiples of 64"),
        (["interpolate", *map(str, endpoints), "-o", str(tmp_path / "x.mp4"),
          "--model", "random-micro", "--tracks", str(bad_tracks)], "t.json: not valid JSON"),
        (["interpolate", *map(str, endpoints), "-o", str(tmp_path / "x.mp4"),
          "--model", "random-micro", "--sampler", "ddim"], "unknown sampler"),
    ]
    for argv, expected in cases:
        capsys.readouterr()
        assert main(argv[:7] + FAST + argv[7:]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], (argv, err)


def test_console_script_is_installed():
    """The real `framerturbo` entry point pip installed next to this interpreter."""
    from pathlib import Path

    script = Path(sys.executable).parent / "framerturbo"
    assert script.is_file(), f"{script}: console script missing — pip install -e ."
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("framerturbo ")
    usage = subprocess.run([str(script), "interpolate"], capture_output=True, text=True)
    assert usage.returncode == 2 and "-o/--output" in usage.stderr


def test_new_model_writes_released_layout(tmp_path, capsys):
    assert main(["new-model", "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert (tmp_path / "m" / "controlnet" / "config.json").exists()


def test_new_model_unet_widths(tmp_path, capsys):
    """--unet-widths builds a narrower/wider micro UNet (the capacity probe), its ControlNet
    to match; widths the stock blocks cannot build are one clear error, no folder."""
    import json

    from framerturbo.models.loading import load_components

    assert main(["new-model", "--out", str(tmp_path / "m"), "--unet-widths", "32,32,32,32"]) == 0
    for part in ("unet", "controlnet"):
        config = json.loads((tmp_path / "m" / part / "config.json").read_text())
        assert config["block_out_channels"] == [32, 32, 32, 32]
    parts = load_components(str(tmp_path / "m"), device="cpu", dtype="fp32")
    assert sum(p.numel() for p in parts["unet"].parameters()) == 2_010_350
    for bad, message in (("48,48,96,96", "multiples of 32"), ("32,32", "multiples of 32"),
                         ("a,b,c,d", "four numbers")):
        capsys.readouterr()
        assert main(["new-model", "--out", str(tmp_path / bad), "--unet-widths", bad]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / bad).exists()


def test_arguments_are_checked_before_the_model_loads(endpoints, tmp_path, capsys, monkeypatch,
                                                       released_layout):
    from framerturbo.sampling.pipeline import FramerPipeline

    def no_load(*a, **k):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(FramerPipeline, "from_framer", no_load)
    framer, svd = released_layout
    out = str(tmp_path / "x.mp4")
    cases = [
        (["--height", "70"], "positive multiples of 32, got 64x70"),  # the embedded micro model
        (["--model", str(framer), "--svd", str(svd), "--width", "96"], "multiples of 64"),
        (["--width", "0"], "positive multiples of 32"),
        (["--lora", str(tmp_path / "nolora") + ":0.5"], "nolora: no pytorch_lora_weights"),
        (["--model", str(tmp_path / "nomodel")], "model folder not found"),
        (["--model", "micro", "--svd", str(tmp_path / "nosvd")], "SVD folder not found"),
    ]
    for extra, expected in cases:
        capsys.readouterr()
        argv = ["interpolate", *map(str, endpoints), "-o", out, *FAST, *extra]
        assert main(argv) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], (extra, err)


def test_size_rule_in_help_and_quickstart_matches_the_models(released_layout, capsys):
    from pathlib import Path

    from framerturbo.cli.common import size_multiple

    framer, svd = released_layout  # the released layout: ×8 VAE, 4-level UNet
    released, micro = size_multiple(str(framer), str(svd)), size_multiple("micro")
    assert (released, micro) == (64, 32)
    rule = f"multiples of {released} for the released model, {micro} for the embedded micro model"
    quickstart = (Path(__file__).parents[1] / "docs" / "quickstart.md").read_text()
    assert rule in next(line for line in quickstart.splitlines() if "`--height`" in line)
    with pytest.raises(SystemExit):
        main(["interpolate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"{released} for the released model, {micro} for the embedded micro model" in text
    assert "same device, dtype and thread count" in text  # the seed's determinism condition


@pytest.mark.parametrize("flag,value,says", [
    ("--steps", "0", "--steps: must be >= 1"), ("--steps", "-3", "--steps: must be >= 1"),
    ("--fps", "0", "--fps: must be > 0"), ("--num-frames", "1", "--num-frames: must be >= 3"),
    ("--decode-chunk", "0", "--decode-chunk: must be >= 1")])
def test_bad_numbers_are_refused_by_name_before_loading(endpoints, capsys, flag, value, says):
    """`--steps 0` used to sample the sampler's default steps, --fps 0 failed after sampling."""
    with pytest.raises(SystemExit) as stop:
        main(["interpolate", *map(str, endpoints), "-o", "x.gif", flag, value])
    assert stop.value.code == 2 and says in capsys.readouterr().err


def test_pipeline_refuses_zero_steps(micro_pipe):
    with pytest.raises(ValueError, match="num_inference_steps must be >= 1"):
        image = textured_image(64, 1)
        micro_pipe(image, image, num_inference_steps=0, num_frames=3, height=64, width=64)


def test_bare_turbo_before_the_images_says_what_it_took(endpoints, tmp_path, capsys):
    argv = ["interpolate", "--turbo", *map(str, endpoints), "-o", str(tmp_path / "x.gif")]
    assert main(argv) == 2
    assert f"--turbo took {endpoints[0]} as its LoRA folder" in capsys.readouterr().err
