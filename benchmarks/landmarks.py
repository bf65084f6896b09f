"""Landmark extraction speed: MediaPipe hands + pose per frame at 512×512 on the CPU (the
issue's target: ≥ 20 frames/s on 2 cores), on two clips: a moving photo of a person without
hands in view (scikit-image's astronaut: the hand model never runs) and a moving synthetic
signer with both hands in view (the hand model runs on every found hand: the cost of signing).

    python benchmarks/landmarks.py              # 60 frames of each, recorded
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

from framerturbo.data.landmarks import MediaPipeSource, MissingExtraError  # noqa: E402


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


SIGNER_FRAME = (122, 9, 5)  # a signer seed, clip length and frame: MediaPipe finds its right
#                            hand at 512×512


def both_hands_frame() -> np.ndarray:
    """A synthetic signer frame (512×512) whose right half is mirrored onto its left: MediaPipe
    finds the drawn hand and its mirror image, of the other handedness. It reads the cartoon
    hands of most frames poorly; this one, chosen for that alone, it finds at 0.98 / 0.96 as a
    photo."""
    from framerturbo.data.synthetic import render_signer

    seed, length, index = SIGNER_FRAME
    frame = render_signer(seed, length, 512).frames[index]
    return np.concatenate([frame[:, 256:][:, ::-1], frame[:, 256:]], axis=1)


def signer_hands_frames(size: int, count: int) -> np.ndarray:
    """Both hands in view: :func:`both_hands_frame` shifted by up to ±10 px from frame to
    frame."""
    import cv2

    both = both_hands_frame()
    if size != 512:
        both = cv2.resize(both, (size, size), interpolation=cv2.INTER_AREA)
    shifts = [((k % 20) - 10, ((k // 2) % 10) - 5) for k in range(count)]
    return np.stack([cv2.warpAffine(both, np.float32([[1, 0, dx], [0, 1, dy]]), (size, size),
                                    borderMode=cv2.BORDER_REPLICATE) for dx, dy in shifts])


CLIPS = {"astronaut (no hands in view)": frames_of, "signer (hands in view)": signer_hands_frames}


def main(argv=None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--hand-complexity", type=int, default=1, choices=[0, 1],
                   help="MediaPipe hand model: 0 lite, 1 full")
    args = p.parse_args(argv)
    size, count = (128, 4) if args.tiny else (512, args.frames)
    try:
        source = MediaPipeSource(hand_complexity=args.hand_complexity)
    except MissingExtraError as e:  # one line, as the CLI says it
        print(f"landmarks.py: {e}", file=sys.stderr)
        return 2
    rows = []
    for clip, make in CLIPS.items():
        frames = make(size, count)
        for mode, video in (("video (tracking)", True), ("photos (detect every frame)", False)):
            source.extract(frames[:2], video=video)  # warm-up: model load
            start = time.perf_counter()
            marks = source.extract(frames, video=video)
            seconds = time.perf_counter() - start
            rows.append({"clip": clip, "mode": mode, "size": f"{size}x{size}", "frames": count,
                         "frames_per_s": count / seconds,
                         "pose_found": float((marks.pose_conf[:, 0] > 0.5).mean()),
                         "hands_found": float((marks.hand_conf > 0).mean())})
    print(f"MediaPipe hands (complexity {args.hand_complexity}) + pose, {os.cpu_count()} CPU "
          f"cores, torch threads unused")
    print_table(rows, ["clip", "mode", "size", "frames", "frames_per_s", "pose_found",
                       "hands_found"])
    _, card = device_and_name(tiny=True)
    if args.tiny:
        print("--tiny: nothing recorded")
    elif not args.no_record:
        print("recorded in", record("landmarks", card, rows,
                                    {"hand_complexity": args.hand_complexity}, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
