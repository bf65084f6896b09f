"""Clip loading: FramerTurbo's seek-by-timestamp reader vs. decoding the whole video per sample
(what the earlier toolkit did), on one generated long video. CPU-only; prints clips/s of each
and their ratio.

    python benchmarks/data.py            # 1,000-frame 256×256 video, 14-frame clips
    python benchmarks/data.py --tiny     # a few seconds, for the smoke test
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import arg_parser, device_and_name, print_table, record  # noqa: E402

from framerturbo.data.dataset import ClipDataset, ClipSettings  # noqa: E402
from framerturbo.data.sources import discover  # noqa: E402
from framerturbo.media.files import write_mp4  # noqa: E402


def make_video(path: Path, frames: int, size: int, fps: float = 30.0) -> None:
    """Smooth moving texture (so the encoder produces realistic inter frames)."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (size * 2, size * 2, 3), dtype=np.uint8)
    video = np.stack([np.roll(texture, (i, 2 * i), axis=(0, 1))[:size, :size]
                      for i in range(frames)])
    write_mp4(video, path, fps)


def whole_video_clip(path: Path, start: int, num_frames: int, stride: int) -> np.ndarray:
    """The baseline: decode every frame, then pick the clip's frames."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames[start:start + num_frames * stride:stride])


def main(argv=None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--samples", type=int, default=20)
    args = p.parse_args(argv)
    frames, size, samples = (150, 64, 3) if args.tiny else (1000, 256, args.samples)
    num_frames, stride = 14, 4
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        make_video(video, frames, size)
        dataset = ClipDataset(discover([tmp]), ClipSettings(
            num_frames=num_frames, height=size, width=size, stride=stride, seed=0))
        start = time.perf_counter()
        for i in range(samples):
            dataset[(0, i)]
        seek = samples / (time.perf_counter() - start)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(samples):
            whole_video_clip(video, int(rng.integers(0, frames - num_frames * stride)),
                             num_frames, stride)
        whole = samples / (time.perf_counter() - start)
    rows = [{"loader": "seek (FramerTurbo)", "clips_per_s": seek, "speedup": seek / whole},
            {"loader": "decode whole video", "clips_per_s": whole, "speedup": 1.0}]
    print(f"{frames}-frame {size}×{size} video, {num_frames}-frame clips at stride {stride}, "
          f"{samples} samples each")
    print_table(rows, ["loader", "clips_per_s", "speedup"])
    _, card = device_and_name(tiny=True)
    if not args.no_record:
        print("recorded in", record("data" + ("-tiny" if args.tiny else ""), card, rows,
                                    {"video_frames": frames, "size": size}, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
