"""Test videos written with PyAV: a textured square moving over a textured background."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framerturbo.media.files import as_rate, write_mp4


def _bounce(v: float, limit: float) -> float:
    v = v % (2 * limit)
    return v if v <= limit else 2 * limit - v


def square_positions(n: int, start=(8.0, 16.0), velocity=(1.5, 0.75), limit=48) -> np.ndarray:
    """Top-left corners over time; the square bounces off the frame edges."""
    return np.array([[_bounce(start[0] + velocity[0] * t, limit),
                      _bounce(start[1] + velocity[1] * t, limit)] for t in range(n)])


def moving_square_frames(n: int = 24, size: int = 64, square: int = 16, seed: int = 0,
                         velocity=(1.5, 0.75), static: bool = False) -> np.ndarray:
    rng = np.random.RandomState(seed)
    bg = (rng.rand(size // 4, size // 4, 3) * 120 + 40).astype(np.uint8)
    bg = np.kron(bg, np.ones((4, 4, 1), np.uint8))
    tex = (rng.rand(square, square, 3) * 255).astype(np.uint8)
    frames = []
    for x, y in square_positions(n, velocity=(0, 0) if static else velocity,
                                 limit=size - square):
        f = bg.copy()
        xi, yi = int(round(x)), int(round(y))
        f[yi:yi + square, xi:xi + square] = tex
        frames.append(f)
    return np.stack(frames)


def write_video(path: Path, frames: np.ndarray, fps: float = 12.0) -> Path:
    write_mp4(frames, path, fps)
    return path


def make_dataset(folder: Path, n: int = 4, frames: int = 24, size: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_video(folder / f"clip{i}.mp4",
                    moving_square_frames(frames, size, seed=i, velocity=(0.8 + i * 0.15, 0.5)))
    return folder


def write_cut_short(path: Path, frames: np.ndarray, fps: float = 12.0, keep: float = 0.4,
                    gop: int | None = 24) -> Path:
    """An mp4 with its index (moov) at the front, then cut to ``keep`` of its bytes: the
    container still claims every frame, only the first part decodes — a download or copy that
    stopped early."""
    import av

    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=as_rate(fps))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if gop:
            s.codec_context.gop_size = gop
        for f in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "index must be at the front"
    path.write_bytes(data[: int(len(data) * keep)])
    return path
