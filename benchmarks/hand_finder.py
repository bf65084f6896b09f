"""The hand metrics' own floor: the signer hand finder (``eval/hand_net.py``) read on real
in-between frames, a cross-fade and a hard cut of held-out synthetic signer transitions, scored
as ``framerturbo hand-eval`` scores its rows. Real frames should score near 0 px and ~100 %
found; a cross-fade's half-faded hands should not be found. No model is sampled.

    python benchmarks/hand_finder.py                      # seeds 8,000,000–8,000,031
    python benchmarks/hand_finder.py --finder DIR         # a finder from train-hand-finder
    python benchmarks/hand_finder.py --tiny               # smoke test: 2 transitions
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import arg_parser, device_and_name, print_table, record_results  # noqa: E402

COLUMNS = ["frames", "hands_found", "mje_px", "dtw_mje_px"]


def finder_floor(finder, first_seed: int, n: int, num_frames: int = 9, context: int = 3):
    from framerturbo.data.landmarks import PALM
    from framerturbo.eval.baselines import crossfade, hard_cut
    from framerturbo.eval.hand_protocol import signer_transitions
    from framerturbo.eval.hands import summarise, transition_scores

    scores: dict[str, list[dict]] = {"real": [], "cross-fade": [], "hard cut": []}
    seeds = range(first_seed, first_seed + n)
    for _, frames, marks, _ in signer_transitions(seeds, num_frames, context):
        lo, hi = context, context + num_frames - 1
        truth = marks.take(slice(lo + 1, hi))
        palms = marks.hands[:, :, PALM]
        videos = {"real": frames[lo:hi + 1],
                  "cross-fade": crossfade(frames[lo], frames[hi], num_frames),
                  "hard cut": hard_cut(frames[lo], frames[hi], num_frames)}
        for row, video in videos.items():
            scores[row].append(transition_scores(finder.detect(video[1:-1]), palms[:lo + 1],
                                                 palms[hi:], truth, truth.hand_conf > 0))
    rows = []
    for row, per_transition in scores.items():
        s = summarise(per_transition)
        rows.append({"frames": row, "hands_found": s["hand_detection_rate"],
                     "mje_px": s["hand_mje_px"], "dtw_mje_px": s["hand_dtw_mje_px"]})
    return rows


def main(argv=None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--finder", help="a finder folder (default: the shipped one)")
    p.add_argument("--seed", type=int, default=8_000_000,
                   help="first seed (8000000: used by no training and no other protocol)")
    p.add_argument("--n", type=int, default=32, help="transitions (32)")
    args = p.parse_args(argv)
    from framerturbo.eval.hand_net import DEFAULT_DIR, SignerHandNet

    finder = SignerHandNet.load(args.finder or DEFAULT_DIR)
    n = 2 if args.tiny else args.n
    rows = finder_floor(finder, args.seed, n)
    print(f"signer hand finder {args.finder or DEFAULT_DIR} on {n} transitions "
          f"(seeds {args.seed}–{args.seed + n - 1}):")
    print_table(rows, COLUMNS)
    _, card = device_and_name(tiny=True)  # the finder runs on the CPU
    record_results(args, "hand_finder", card, rows,
                   {"finder": str(args.finder or "shipped"), "seed": args.seed, "n": n})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
