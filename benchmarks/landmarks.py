"""Landmark extraction speed: MediaPipe hands + pose per frame at 512×512 on the CPU (the
issue's target: ≥ 20 frames/s on 2 cores), on frames of a moving photo with a person.

    python benchmarks/landmarks.py              # 60 frames of scikit-image's astronaut, recorded
    python benchmarks/landmarks.py --tiny       # a few 128×128 frames; prints, records nothing
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import arg_parser, device_and_name, print_table, record  # noqa: E402

from framerturbo.data.landmarks import MediaPipeSource  # noqa: E402


def frames_of(size: int, count: int) -> np.ndarray:
    """A slowly panning photo with a person (scikit-image's astronaut when installed)."""
    try:
        from skimage.data import astronaut

        photo = astronaut()
    except ImportError:
        rng = np.random.default_rng(0)
        photo = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
    import cv2

    big = cv2.resize(photo, (size + count, size + count))
    return np.stack([big[k // 2:k // 2 + size, k:k + size] for k in range(count)])


def main(argv=None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--hand-complexity", type=int, default=1, choices=[0, 1],
                   help="MediaPipe hand model: 0 lite, 1 full")
    args = p.parse_args(argv)
    size, count = (128, 4) if args.tiny else (512, args.frames)
    frames = frames_of(size, count)
    source = MediaPipeSource(hand_complexity=args.hand_complexity)
    rows = []
    for mode, video in (("video (tracking)", True), ("photos (detect every frame)", False)):
        source.extract(frames[:2], video=video)  # warm-up: model load
        start = time.perf_counter()
        marks = source.extract(frames, video=video)
        seconds = time.perf_counter() - start
        rows.append({"mode": mode, "size": f"{size}x{size}", "frames": count,
                     "frames_per_s": count / seconds,
                     "pose_found": float((marks.pose_conf[:, 0] > 0.5).mean()),
                     "hands_found": float((marks.hand_conf > 0).mean())})
    print(f"MediaPipe hands (complexity {args.hand_complexity}) + pose, {os.cpu_count()} CPU "
          f"cores, torch threads unused")
    print_table(rows, ["mode", "size", "frames", "frames_per_s", "pose_found", "hands_found"])
    _, card = device_and_name(tiny=True)
    if args.tiny:
        print("--tiny: nothing recorded")
    elif not args.no_record:
        print("recorded in", record("landmarks", card, rows,
                                    {"hand_complexity": args.hand_complexity}, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
