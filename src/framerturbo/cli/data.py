"""check-data, tracks, synth."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.jsonout import strict_json
from .common import EXIT_USAGE, FRAMES, POSITIVE, STEPS, at_least


def register(sub) -> None:
    _add_check_data(sub)
    _add_tracks(sub)
    _add_synth(sub)


def _add_check_data(sub) -> None:
    p = sub.add_parser("check-data", help="report which clips are usable for training")
    p.add_argument("data", nargs="+", help="video folders, frame folders, .jsonl manifests")
    p.add_argument("--config", metavar="NAME|TOML",
                   help="cut clips as this training config does (its data.num_frames, stride, "
                        "target_fps and sampling), e.g. micro-lora; the flags below win")
    p.add_argument("--num-frames", type=FRAMES, help="frames per clip (14, or the --config's)")
    p.add_argument("--stride", type=STEPS, help="frame step (4, or the --config's)")
    p.add_argument("--target-fps", type=float, help="sample at this rate instead of a stride")
    p.add_argument("--sampling", choices=["random", "uniform", "every-window"])
    p.add_argument("--min-side", type=STEPS, default=64, help="smaller videos count as tiny")
    p.add_argument("--static-threshold", type=float, default=0.5,
                   help="mean grey-level change per frame below which a clip is static")
    p.add_argument("--buckets", action="store_true",
                   help="report the (W, H, F) bucket each clip trains in (data.buckets)")
    p.add_argument("--bucket-pixels", type=STEPS, default=512 * 320,
                   help="area budget per frame (512×320's by default)")
    p.add_argument("--bucket-multiple", type=STEPS, default=64, help="sides are multiples of this")
    p.add_argument("--bucket-frames", default="",
                   help="allowed clip lengths, e.g. 9,14 (default: --num-frames)")
    p.add_argument("--json", default="data_report.json", help="report file (data_report.json)")
    p.set_defaults(func=_run_check_data)


CLIP_SETTINGS = ("num_frames", "stride", "target_fps", "sampling")


def _clip_settings(args) -> None:
    """Unset clip flags from ``--config``'s [data] section, else the training defaults."""
    from ..core.config import load_config
    from ..core.settings import DataConfig

    data = load_config(args.config).data if args.config else DataConfig()
    for name in CLIP_SETTINGS:
        if getattr(args, name) is None:
            setattr(args, name, getattr(data, name))


def _run_check_data(args) -> int:
    from tqdm.auto import tqdm

    from ..core.atomic import atomic_file
    from ..data.check import check_source, format_table, summarise
    from ..data.sources import discover

    _clip_settings(args)
    bucketing = None
    if args.buckets:
        from ..data.buckets import Bucketing

        frames = [int(f) for f in args.bucket_frames.split(",") if f] or [args.num_frames]
        bucketing = Bucketing(args.bucket_pixels, args.bucket_multiple,
                              tuple(sorted(set(frames), reverse=True)))
    reports = [check_source(src, args.num_frames, args.stride, args.target_fps, args.sampling,
                            args.min_side, args.static_threshold, bucketing)
               for src in tqdm(discover(args.data), desc="check", unit="clip")]
    summary = summarise(reports)
    print(format_table(reports))
    print(" ".join(f"{k}={v}" for k, v in summary["counts"].items()))
    if "buckets" in summary:
        print("buckets: " + " ".join(f"{k}={v}" for k, v in summary["buckets"].items()))
    out = Path(args.json)
    with atomic_file(out) as tmp:
        tmp.write_text(strict_json(summary))
    print(f"report: {out}")
    if not reports:
        raise ValueError(_nothing_found(args.data))
    if not summary["counts"]["usable"]:
        raise ValueError(f"{' '.join(args.data)}: none of the {len(reports)} clips is usable "
                         "(the table says why)")
    return 0


def _nothing_found(paths: list[str]) -> str:
    return f"{' '.join(paths)}: no videos, frame folders or manifest entries found"


def _add_tracks(sub) -> None:
    p = sub.add_parser("tracks", help="compute point tracks for training clips (OpenCV KLT)")
    p.add_argument("data", nargs="+", help="video folders, frame folders, .jsonl manifests")
    p.add_argument("--tracker", default="klt", help="klt, or module:function for another tracker")
    p.add_argument("--overwrite", action="store_true", help="recompute existing track files")
    p.set_defaults(func=_run_tracks)


def _run_tracks(args) -> int:
    from tqdm.auto import tqdm

    from ..data.sources import default_tracks_path, discover
    from ..data.tracking import load_tracker, track_video

    tracker = load_tracker(args.tracker)
    sources = discover(args.data)
    if not sources:
        raise ValueError(_nothing_found(args.data))
    done = failed = kept = 0
    for src in tqdm(sources, desc="tracks", unit="clip"):
        out = src.tracks or default_tracks_path(src.path)
        if out.exists() and not args.overwrite:
            kept += 1
            continue
        try:
            track_video(src.path, out, tracker)
            done += 1
        except ValueError as e:
            print(f"warning: {e}", file=sys.stderr)
            failed += 1
    print(f"tracks written for {done} clips ({failed} failed"
          + (f", {kept} kept: they had tracks; --overwrite recomputes them)" if kept else ")"))
    return 0 if done or kept else EXIT_USAGE


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="write procedural clips with ground-truth tracks",
                       description="Procedural video worlds (deterministic from --seed): "
                                   "'shapes' (textured moving shapes), 'signer' (an "
                                   "articulated figure gesturing), 'signer-close' (the same "
                                   "figure filmed closer on a dark backdrop, signing faster: "
                                   "the demo's target), 'photos' (a camera moving over real "
                                   "photographs from scikit-image, with moving cut-outs and an "
                                   "exposure change) or 'camera' (a plain camera move over a "
                                   "photo no world uses: stand-in real footage). 'photos' and "
                                   "'camera' need scikit-image.")
    p.add_argument("--domain", required=True,
                   choices=["shapes", "signer", "signer-close", "photos", "camera"])
    p.add_argument("--n", type=STEPS, default=16, help="number of clips (16)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-frames", type=FRAMES, default=9)
    p.add_argument("--size", type=at_least(16), default=64, help="square frame size in pixels (64)")
    p.add_argument("--fps", type=POSITIVE, default=8.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run_synth)


def _run_synth(args) -> int:
    from ..data.synthetic import write_dataset

    paths = write_dataset(args.domain, args.n, args.out, args.num_frames, args.size, args.fps,
                          args.seed)
    print(f"wrote {len(paths)} {args.domain} clips to {args.out}")
    return 0
