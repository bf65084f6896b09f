"""The hand metrics' own floor: the signer hand finder (``eval/hand_net.py``) read on real
in-between frames, a cross-fade and a hard cut of held-out synthetic signer transitions, scored
as ``framerturbo hand-eval`` scores its rows. Real frames should score near 0 px and ~100 %
found; a cross-fade's half-faded hands should not be found. No model is sampled; ``--vae``
adds the real frames after a round trip through a model's VAE (encode, mode, decode): the hands
a model could draw at best.

    python benchmarks/hand_finder.py                      # seeds 8,000,000–8,000,031
    python benchmarks/hand_finder.py --finder DIR         # a finder from train-hand-finder
    python benchmarks/hand_finder.py --vae micro          # + the micro VAE's round trip
    python benchmarks/hand_finder.py --tiny               # smoke test: 2 transitions
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (  # noqa: E402
    arg_parser,
    device_and_name,
    print_table,
    record_results,
    vae_round_trip,
)

COLUMNS = ["frames", "hands_found", "mje_px", "dtw_mje_px"]


def finder_floor(finder, first_seed: int, n: int, num_frames: int = 9, context: int = 3,
                 vae=None):
    from framerturbo.eval.baselines import crossfade, hard_cut
    from framerturbo.eval.hand_protocol import score_window, signer_transitions
    from framerturbo.eval.hands import summarise

    scores: dict[str, list[dict]] = {"real": [], "cross-fade": [], "hard cut": []}
    if vae is not None:
        scores["real, VAE round trip"] = []
    seeds = range(first_seed, first_seed + n)
    for _, frames, marks, _ in signer_transitions(seeds, num_frames, context):
        lo, hi = context, context + num_frames - 1
        videos = {"real": frames[lo:hi + 1],
                  "cross-fade": crossfade(frames[lo], frames[hi], num_frames),
                  "hard cut": hard_cut(frames[lo], frames[hi], num_frames)}
        if vae is not None:
            videos["real, VAE round trip"] = vae_round_trip(vae, frames[lo:hi + 1])
        for row, row_scores in score_window(finder, videos, marks, lo, hi).items():
            scores[row].append(row_scores)
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
    p.add_argument("--vae", metavar="MODEL", help="add a row through this model's VAE (micro, …)")
    args = p.parse_args(argv)
    from framerturbo.eval.hand_net import DEFAULT_DIR, SignerHandNet
    from framerturbo.models.loading import load_components

    finder = SignerHandNet.load(args.finder or DEFAULT_DIR)
    vae = None
    if args.vae or args.tiny:  # the smoke run walks the VAE row too
        vae = load_components(args.vae or "micro", None, controlnet=False, device="cpu",
                              dtype="fp32")["vae"]
    n = 2 if args.tiny else args.n
    rows = finder_floor(finder, args.seed, n, vae=vae)
    print(f"signer hand finder {args.finder or DEFAULT_DIR} on {n} transitions "
          f"(seeds {args.seed}–{args.seed + n - 1}):")
    print_table(rows, COLUMNS)
    _, card = device_and_name(tiny=True)  # the finder runs on the CPU
    record_results(args, "hand_finder", card, rows,
                   {"finder": str(args.finder or "shipped"), "seed": args.seed, "n": n,
                    "vae": args.vae})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
