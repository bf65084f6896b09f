"""Hostile inputs: each gets a one-line message naming the file and the fix, and nothing made
before is lost."""

from __future__ import annotations

import errno
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import textured_image
from framerturbo.cli.main import main
from framerturbo.data.dataset import ClipDataset, ClipSettings
from framerturbo.data.sources import discover
from framerturbo.media.video import probe, read_frames_at
from framerturbo.train import checkpoint as ckpt
from framerturbo.media.files import InputError, load_image, write_frames
from videos import moving_square_frames, write_video


def one_line_error(capsys, argv, expected: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


def write_raw_video(path: Path, frames: np.ndarray, times: list[float], codec="ffv1",
                    pix_fmt="yuv444p", rotate: int | None = None) -> Path:
    """Frames at arbitrary timestamps (variable frame rate), any size (ffv1 allows odd)."""
    with av.open(str(path), mode="w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        s.time_base = Fraction(1, 1000)
        if rotate is not None:
            s.metadata["rotate"] = str(rotate)
        for f, t in zip(frames, times):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for packet in s.encode(vf):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "CMYK", "P"])
def test_unusual_endpoint_formats_load_as_rgb(tmp_path, mode):
    rgb = Image.fromarray(textured_image(48, 1))
    if mode == "I;16":
        img = Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257))
    elif mode == "RGBA":
        img = rgb.convert("RGBA")
        img.putalpha(128)
    else:
        img = rgb.convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (48, 48) and np.asarray(out).std() > 5


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit PNG of the given size whose data streams as zeros (small on disk)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    comp, row, body = zlib.compressobj(9), b"\x00" * (1 + (width + 7) // 8), []
    for _ in range(height):
        body.append(comp.compress(row))
    body.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(body))
                     + chunk(b"IEND", b""))
    return path


def test_huge_image_is_rejected_without_decoding(tmp_path, capsys):
    big = _png_header_only(tmp_path / "big.png", 20000, 20000)
    with pytest.raises(InputError, match="too large"):
        load_image(big)
    one_line_error(capsys, ["interpolate", str(big), str(big), "-o", str(tmp_path / "o.mp4"),
                            "--model", "random-micro"], "big.png: ")


def test_huge_jpeg_is_downscaled_while_decoding(tmp_path, monkeypatch):
    import framerturbo.media.files as vio

    monkeypatch.setattr(vio, "MAX_PIXELS", 64 * 64)
    path = tmp_path / "j.jpg"
    Image.fromarray(textured_image(256, 2)).save(path)
    assert max(load_image(path).size) < 256


def test_odd_size_one_frame_and_vfr_videos(tmp_path):
    odd = write_raw_video(tmp_path / "odd.mkv", moving_square_frames(12, size=64)[:, :47, :63],
                          [i / 10 for i in range(12)])
    assert (probe(odd).width, probe(odd).height) == (63, 47)
    single = write_video(tmp_path / "single.mp4", moving_square_frames(1))
    times = np.cumsum([0, 0.05, 0.2, 0.05, 0.3, 0.1, 0.05, 0.25, 0.1, 0.1, 0.05, 0.2])
    frames = moving_square_frames(12, size=64)
    frames[:, :4, :4] = np.arange(12)[:, None, None, None] * 20
    vfr = write_raw_video(tmp_path / "vfr.mkv", frames, list(times))
    got = read_frames_at(vfr, [times[3], times[7], times[10]], 25.0)
    assert list(np.round(got[:, 1, 1].mean(axis=1) / 20).astype(int)) == [3, 7, 10]
    ds = ClipDataset(discover([tmp_path]), ClipSettings(num_frames=4, height=64, width=64,
                                                        stride=1))
    assert "single.mp4" in " ".join(ds.skipped.reasons)
    names = sorted(Path(r.source.path).name for r in ds.items)
    assert names == ["odd.mkv", "vfr.mkv"]
    assert ds[(names.index("odd.mkv"), 0)]["frames"].shape == (4, 3, 64, 64)


def test_non_video_named_mp4_and_bad_images(tmp_path, capsys):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    ds = ClipDataset(discover([tmp_path]), ClipSettings(num_frames=3, height=64, width=64))
    assert len(ds) == 0 and "unreadable" in ds.skipped.reasons[str(fake)]
    txt = tmp_path / "img.png"
    txt.write_text("nope")
    one_line_error(capsys, ["interpolate", str(txt), str(txt), "-o", str(tmp_path / "o.mp4"),
                            "--model", "random-micro"], "img.png: not a readable image")
    one_line_error(capsys, ["stitch", str(fake), str(fake), "-o", str(tmp_path / "s.mp4"),
                            "--model", "random-micro", "--height", "64", "--width", "64"],
                   "fake.mp4: cannot open as video")


def test_tracks_outside_the_image_and_malformed(tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(textured_image(64, 1)).save(img)
    outside = tmp_path / "out.json"
    outside.write_text('{"tracks": [{"points": [[-50, -50], [500, 500]]}, {"points": [[5, 5]]}]}')
    assert main(["interpolate", str(img), str(img), "-o", str(tmp_path / "ok"), "--model",
                 "random-micro", "--tracks", str(outside), "--num-frames", "3", "--steps", "1",
                 "--height", "64", "--width", "64"]) == 0
    empty = tmp_path / "empty.json"
    empty.write_text('{"tracks": [{"points": []}]}')
    one_line_error(capsys, ["interpolate", str(img), str(img), "-o", str(tmp_path / "x"),
                            "--model", "random-micro", "--tracks", str(empty)],
                   "empty.json: track 0 has no valid")


def test_unwritable_output_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write the output"):
        write_frames(np.zeros((2, 8, 8, 3), np.uint8), blocker / "out.gif")
    img = tmp_path / "a.png"
    Image.fromarray(textured_image(64, 1)).save(img)
    one_line_error(capsys, ["interpolate", str(img), str(img), "-o", str(blocker / "o.mp4"),
                            "--model", "random-micro", "--num-frames", "3", "--steps", "1",
                            "--height", "64", "--width", "64"], "cannot write the output")


def test_full_disk_during_checkpoint_save_keeps_the_previous_one(tmp_path, monkeypatch):
    weights = {"w": torch.ones(3)}
    first = ckpt.save_checkpoint(tmp_path, 1, weights, {}, {}, {})
    real = ckpt.save_file

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", full_disk)
    with pytest.raises(OSError, match="No space left"):
        ckpt.save_checkpoint(tmp_path, 2, {"w": torch.zeros(3)}, {}, {}, {})
    monkeypatch.setattr(ckpt, "save_file", real)
    assert ckpt.list_checkpoints(tmp_path) == [first]
    assert torch.equal(ckpt.load_checkpoint(first)["trainable"]["w"], torch.ones(3))
    assert not [p for p in ckpt.checkpoint_dir(tmp_path).iterdir() if p.name.startswith(".")]


@pytest.mark.system
def test_legacy_bin_weights_load_with_a_warning(tmp_path, micro_parts, caplog):
    from framerturbo.models.loading import load_components, save_components

    folder = save_components(micro_parts, tmp_path / "m")
    unet_dir = folder / "unet"
    state = load_components(folder, device="cpu")["unet"].state_dict()
    (unet_dir / "diffusion_pytorch_model.safetensors").unlink()
    torch.save(state, unet_dir / "diffusion_pytorch_model.bin")
    with caplog.at_level("WARNING"):
        unet = load_components(folder, device="cpu")["unet"]
    assert "legacy .bin" in caplog.text
    assert all(torch.equal(unet.state_dict()[k], v) for k, v in state.items())


def test_rotation_metadata_is_applied(tmp_path):
    """An mp4 whose track header carries a 90° display matrix (patched in: the encoders here
    cannot write one) is read upright."""
    frames = np.zeros((4, 32, 48, 3), np.uint8)
    frames[:, :8, :8] = 255  # a white top-left corner
    path = write_video(tmp_path / "r.mp4", frames, fps=10)
    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    matrix = i + 8 + (32 if data[i + 4] == 1 else 20) + 16
    assert struct.unpack(">9i", bytes(data[matrix:matrix + 36]))[0] == 65536  # identity
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))
    got = read_frames_at(path, [0.0, 0.1], 10)
    assert got.shape == (2, 48, 32, 3)  # portrait now
    assert got[0, :6, -6:].mean() > 200 and got[0, -6:, :6].mean() < 50  # corner turned 90° cw


def test_16bit_images_use_the_full_16bit_scale(tmp_path):
    """A dark 16-bit frame stays dark: values are scaled by 65535, not by the image's maximum."""
    dark = (np.asarray(Image.fromarray(textured_image(48, 1)).convert("L"), np.uint16) * 10)
    assert dark.max() <= 2550  # at most ~4 % of full scale
    Image.fromarray(dark).save(tmp_path / "dark.png")
    out = np.asarray(load_image(tmp_path / "dark.png"))
    assert out.max() <= 12 and np.allclose(out[..., 0], np.round(dark / 65535 * 255), atol=1)


@pytest.mark.parametrize("size", [(1, 1), (15, 64), (64, 8)])
def test_tiny_endpoints_are_refused_with_exit_2(tmp_path, capsys, size):
    img = tmp_path / "tiny.png"
    Image.new("RGB", size, (128, 50, 200)).save(img)
    with pytest.raises(InputError, match="too small"):
        load_image(img)
    one_line_error(capsys, ["interpolate", str(img), str(img), "-o", str(tmp_path / "o.mp4"),
                            "--model", "random-micro"], "tiny.png: ")
    ok = tmp_path / "ok.png"
    Image.new("RGB", (16, 16)).save(ok)
    assert load_image(ok).size == (16, 16)


def test_interpolate_hands_torch_only_writable_arrays(tmp_path, monkeypatch, capsys):
    """PyTorch warns ("The given NumPy array is not writable") once per process when given a
    read-only array, as PIL's arrays are; no array on the interpolate path may be read-only."""
    read_only = []
    for name in ("from_numpy", "as_tensor"):
        real = getattr(torch, name)

        def spy(x, *args, _real=real, **kwargs):
            if isinstance(x, np.ndarray) and not x.flags.writeable:
                read_only.append(x.shape)
            return _real(x, *args, **kwargs)

        monkeypatch.setattr(torch, name, spy)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(textured_image(64, 1)).save(a)
    Image.fromarray(textured_image(64, 1, shift=(4, 2))).save(b)
    tracks = tmp_path / "t.json"
    tracks.write_text('{"tracks": [{"points": [[10, 10], [20, 14]]}]}')
    assert main(["interpolate", str(a), str(b), "-o", str(tmp_path / "o.gif"), "--model",
                 "random-micro", "--num-frames", "3", "--steps", "1", "--height", "64",
                 "--width", "64", "--tracks", str(tracks)]) == 0
    assert read_only == []
    assert "not writable" not in capsys.readouterr().err


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_get_the_usual_permissions(tmp_path, umask):
    """Atomic writes go through mkstemp (0600) / mkdtemp (0700); the final files must get what
    a plain open() would give under the umask."""
    import os

    import torch
    from safetensors.torch import save_file

    from framerturbo.models.adapters import copy_lora

    frames = np.zeros((2, 16, 16, 3), np.uint8)
    old = os.umask(umask)
    try:
        for name in ("o.mp4", "o.gif", "pngs"):
            write_frames(frames, tmp_path / name, fps=5)
        plain = tmp_path / "plain"
        plain.write_text("x")
        lora = tmp_path / "lora"  # safetensors writes its file 0600 inside the atomic folder
        lora.mkdir()
        save_file({"w": torch.zeros(2)}, lora / "pytorch_lora_weights.safetensors")
        copy_lora(lora, tmp_path / "shipped")
    finally:
        os.umask(old)
    file_mode = 0o666 & ~umask
    assert plain.stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "o.mp4").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "o.gif").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "pngs").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "pngs" / "frame_0000.png").stat().st_mode & 0o777 == file_mode
    shipped = tmp_path / "shipped" / "pytorch_lora_weights.safetensors"
    assert shipped.stat().st_mode & 0o777 == file_mode


@pytest.mark.parametrize("fps", [Fraction(30000, 1001), 30000 / 1001, Fraction(24000, 1001),
                                 12.5, 7])
def test_frame_rates_stay_exact(tmp_path, fps):
    path = write_frames(np.zeros((3, 16, 16, 3), np.uint8), tmp_path / "o.mp4", fps=fps)
    expected = {Fraction(30000, 1001): Fraction(30000, 1001), 30000 / 1001:
                Fraction(30000, 1001), Fraction(24000, 1001): Fraction(24000, 1001),
                12.5: Fraction(25, 2), 7: Fraction(7)}[fps]
    with av.open(str(path)) as c:
        assert Fraction(c.streams.video[0].average_rate) == expected  # was 19001/634
    info = probe(path)
    assert info.rate == expected and info.fps == float(expected)


@pytest.mark.parametrize("argv", [
    ["interpolate", "missing.png", "also-missing.png", "-o", "out.gif"],
    ["interpolate", "a.png", "b.png", "-o", "out.avi"],
    ["evaluate", "--data", "no-such-folder"],
    ["stitch", "a.mp4", "b.mp4", "-o", "out.mp4"],
])
def test_input_errors_come_before_the_model_libraries_load(argv, tmp_path):
    """A typo in a path is one line at once, not after seconds of importing diffusers: the
    error is raised with diffusers, transformers and peft not yet imported."""
    import subprocess
    import sys

    code = ("import sys; from framerturbo.cli.main import main; rc = main(sys.argv[1:]); "
            "print(rc, *[m in sys.modules for m in ('diffusers', 'transformers', 'peft')])")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert result.stdout.split() == ["2", "False", "False", "False"], result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "framerturbo: error:" in result.stderr


@pytest.mark.parametrize("argv, flag", [
    (["synth", "--domain", "signer", "--n", "0", "--out", "x"], "--n: must be >= 1"),
    (["synth", "--domain", "signer", "--size", "0", "--out", "x"], "--size: must be >= 16"),
    (["synth", "--domain", "signer", "--num-frames", "1", "--out", "x"], "--num-frames"),
    (["check-data", "x", "--stride", "0"], "--stride: must be >= 1"),
    (["evaluate", "--data", "x", "--max-clips", "0"], "--max-clips/--limit: must be >= 1"),
    (["hand-eval", "--n", "0", "--out", "x"], "--n: must be >= 1"),
    (["train-hand-finder", "--steps", "0", "--out", "x"], "--steps: must be >= 1"),
    (["interpolate", "a.png", "b.png", "-o", "x.gif", "--motion-bucket", "-5"],
     "--motion-bucket: must be >= 0"),
])
def test_counts_out_of_range_are_refused_by_their_flag(argv, flag, capsys):
    """A zero count ended in a traceback (ZeroDivisionError, a failed reshape) or did nothing
    with exit 0; now argparse names the flag before anything runs."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and flag in capsys.readouterr().err


def test_a_device_this_torch_cannot_use_is_one_line(monkeypatch, capsys, tmp_path):
    from framerturbo.models.loading import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device cuda: this PyTorch has no CUDA"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="--device cuda:x: not a device name"):
        resolve_device("cuda:x")
    with pytest.raises(ValueError, match="--device meta: not a device to run on"):
        resolve_device("meta")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    img = tmp_path / "a.png"
    Image.fromarray(textured_image(64, 1)).save(img)
    one_line_error(capsys, ["interpolate", str(img), str(img), "-o", str(tmp_path / "o.gif"),
                            "--model", "random-micro", "--device", "cuda:0"],
                   "--device cuda:0: this PyTorch has no CUDA")


def test_check_data_says_why_it_found_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["check-data", str(tmp_path / "empty"), "--json", str(tmp_path / "r.json")]) == 2
    assert "no videos, frame folders or manifest entries found" in capsys.readouterr().err
    one_line_error(capsys, ["tracks", str(tmp_path / "empty")],
                   "no videos, frame folders or manifest entries found")  # it said 0 clips, exit 0


def test_stitch_auto_range_upside_down_is_one_line(tmp_path, capsys):
    one_line_error(capsys, ["stitch", str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "-o",
                            str(tmp_path / "x.mp4"), "--auto-range", "9", "4"],
                   "--auto-range MIN MAX: MIN must not exceed MAX, got 9 4")


def test_frame_folders_and_vae_runs_never_replace_a_users_folder(tmp_path, capsys):
    """`interpolate -o FOLDER` writes PNG frames by replacing FOLDER whole: given a folder of the
    user's it now refuses (one line, before the model loads) instead of deleting it; a folder of
    an earlier run's frames is replaced. `train-vae --out` refuses such a folder before a step."""
    from framerturbo.core.atomic import ReplaceRefused, atomic_dir, check_replaceable
    from framerturbo.train.vae import train_vae

    img = tmp_path / "a.png"
    Image.fromarray(textured_image(64, 1)).save(img)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"mine")
    argv = ["interpolate", str(img), str(img), "--model", "random-micro", "--num-frames", "3",
            "--steps", "1", "--height", "64", "--width", "64", "-o"]
    one_line_error(capsys, argv + [str(mine)], "this folder holds other things")
    assert (mine / "holiday.jpg").read_bytes() == b"mine"
    frames = tmp_path / "frames"
    for _ in range(2):
        assert main(argv + [str(frames)]) == 0
    assert sorted(p.name for p in frames.iterdir()) == [f"frame_{i:04d}.png" for i in range(3)]
    with pytest.raises(ReplaceRefused, match="exists and is not a folder"):
        with atomic_dir(img):
            pass
    check_replaceable(tmp_path / "new")  # missing: fine
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty")  # empty: fine
    with pytest.raises(ReplaceRefused, match="holds other things"):
        train_vae([str(tmp_path)], mine, steps=2)
    assert sorted(p.name for p in mine.iterdir()) == ["holiday.jpg"]
