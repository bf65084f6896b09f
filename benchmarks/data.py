"""Clip loading: FramerTurbo's seek-by-timestamp reader vs. decoding the whole video per sample
(what the earlier toolkit did), on generated long videos that differ only in their keyframe
interval — libx264's default (250), a short GOP (30, as many cameras and streams write) and one
keyframe per file (as some real footage has). A seek can only start at a keyframe, so a clip
costs (frames from the keyframe before it to its last frame) decodes; the ratio to a whole-file
decode therefore depends on the keyframe interval, which is recorded with every row. CPU-only.

    python benchmarks/data.py            # 1,000-frame 256×256 videos, 14-frame clips, 5 repeats
    python benchmarks/data.py --tiny     # a few seconds, for the smoke test; never recorded

Each repeat times, one after the other: random clips (training's `random` sampling), every
window in file order (`every-window`, cache building, evaluation — the reader keeps decoding
instead of seeking when the next clip lies ahead) and the whole-file-decode baseline. Rows give
the median and the range over repeats; the load average before and after is recorded too, since
a shared machine slows whole-file decoding most.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import arg_parser, device_and_name, print_table, record_results  # noqa: E402

from framerturbo.data.dataset import ClipDataset, ClipSettings  # noqa: E402
from framerturbo.data.sources import discover  # noqa: E402
from framerturbo.media.video import _Reader  # noqa: E402

DECODED: dict[str, list[float]] = {}  # frames decoded per clip, by loader (load-independent)

# name -> keyframe interval in frames (None: one keyframe for the whole file)
CASES = {"gop250 (x264 default)": 250, "gop30": 30, "one keyframe": None}


def make_video(path: Path, frames: int, size: int, keyint: int | None, fps: int = 30) -> list:
    """Smooth moving texture (so the encoder produces realistic inter frames); returns the
    keyframe indices actually written."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (size * 2, size * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.codec_context.gop_size = keyint or frames + 1
        s.options = {"crf": "18", **({} if keyint else {"sc_threshold": "0", "keyint_min":
                                                          str(frames + 1)})}
        for i in range(frames):
            img = np.roll(texture, (i, 2 * i), axis=(0, 1))[:size, :size]
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        pts = sorted((p.pts, p.is_keyframe) for p in c.demux(stream) if p.pts is not None)
    return [i for i, (_, key) in enumerate(pts) if key]


def whole_video_clip(path: Path, start: int, num_frames: int, stride: int) -> np.ndarray:
    """The baseline: decode every frame, then pick the clip's frames."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames[start:start + num_frames * stride:stride])


def one_repeat(folder: Path, video: Path, frames: int, size: int, samples: int, repeat: int,
               num_frames: int, stride: int) -> tuple[float, float, float]:
    """clips/s of: random clips (training's `random` sampling), every window in file order
    (`every-window`, cache building, evaluation), and the whole-file-decode baseline."""
    settings = dict(num_frames=num_frames, height=size, width=size, stride=stride, seed=repeat)
    dataset = ClipDataset(discover([folder]), ClipSettings(**settings))
    windows = ClipDataset(discover([folder]), ClipSettings(**settings, sampling="every-window"))
    dataset[(0, samples)]  # warm-up, untimed (imports, first open)
    whole_video_clip(video, 0, num_frames, stride)
    start, decoded = time.perf_counter(), _Reader.decoded_total
    for i in range(samples):
        dataset[(0, i)]
    seek = samples / (time.perf_counter() - start)
    DECODED["random"].append((_Reader.decoded_total - decoded) / samples)
    start, decoded = time.perf_counter(), _Reader.decoded_total
    for i in range(len(windows)):
        windows[(i, 0)]
    in_order = len(windows) / (time.perf_counter() - start)
    DECODED["in_order"].append((_Reader.decoded_total - decoded) / len(windows))
    rng = np.random.default_rng(repeat)
    start = time.perf_counter()
    for _ in range(samples):
        whole_video_clip(video, int(rng.integers(0, frames - num_frames * stride)),
                         num_frames, stride)
    return seek, in_order, samples / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--samples", type=int, default=20, help="clips per loader and repeat (20)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    frames, size = (150, 64) if args.tiny else (1000, 256)
    samples, repeats = (3, 1) if args.tiny else (args.samples, args.repeats)
    num_frames, stride = 14, 4
    load_before = os.getloadavg()
    rows = []
    for name, keyint in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            video = Path(tmp) / "long.mp4"
            keys = make_video(video, frames, size, keyint)
            DECODED.update(random=[], in_order=[])
            runs = [one_repeat(Path(tmp), video, frames, size, samples, r, num_frames, stride)
                    for r in range(repeats)]
        seek, in_order, whole = np.array(runs).T
        ratio, ratio_in_order = seek / whole, in_order / whole
        rows.append({"video": name, "keyframes": len(keys),
                     "keyint": round(frames / len(keys), 1),
                     "seek_clips_per_s": float(np.median(seek)),
                     "whole_clips_per_s": float(np.median(whole)),
                     "speedup": float(np.median(ratio)), "speedup_min": float(ratio.min()),
                     "speedup_max": float(ratio.max()),
                     "clip_cost": float(np.median(whole / seek)),
                     "frames_decoded_per_clip": float(np.mean(DECODED["random"])),
                     "frames_decoded_per_clip_in_order": float(np.mean(DECODED["in_order"])),
                     "in_order_clips_per_s": float(np.median(in_order)),
                     "speedup_in_order": float(np.median(ratio_in_order)),
                     "speedup_in_order_min": float(ratio_in_order.min()),
                     "speedup_in_order_max": float(ratio_in_order.max())})
    load_after = os.getloadavg()
    print(f"{frames}-frame {size}×{size} videos at 30 fps, {num_frames}-frame clips at stride "
          f"{stride}, {samples} clips per loader × {repeats} repeats; clip_cost = one seek-read "
          "clip as a fraction of one whole-file decode")
    print_table(rows, ["video", "keyint", "seek_clips_per_s", "whole_clips_per_s", "speedup",
                       "speedup_min", "speedup_max", "clip_cost", "frames_decoded_per_clip",
                       "in_order_clips_per_s", "speedup_in_order", "speedup_in_order_min",
                       "speedup_in_order_max", "frames_decoded_per_clip_in_order"])
    load = {"loadavg_1min_before": round(load_before[0], 2),
            "loadavg_1min_after": round(load_after[0], 2), "cpus": os.cpu_count()}
    print(f"load average (1 min) before {load['loadavg_1min_before']}, after "
          f"{load['loadavg_1min_after']}, on {load['cpus']} CPUs")
    _, card = device_and_name(tiny=True)
    record_results(args, "data", card, rows, {"video_frames": frames, "size": size,
                                              "repeats": repeats, "samples": samples, **load})
    return 0


if __name__ == "__main__":
    sys.exit(main())
