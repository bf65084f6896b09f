"""The papers' evaluation protocols: DAVIS-7 and UCF101-7, as Framer (arXiv 2410.18978, §4.2,
Table 1) evaluates on them, following VIDIM (Jain et al., CVPR 2024) who built them.

Each benchmark is a folder of examples, one sub-folder per example holding 9 frames
(``frame_000.png`` … ``frame_008.png``, 256×256) — what VIDIM's ``generate_davis-7.py`` and
``generate_ucf101-7.py`` write. Frame 0 and frame 8 are the inputs; the 7 frames between are
generated and scored against the real ones. docs/evaluation.md gives the source of each choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..media.video import frame_files
from .evaluate import EvalClip


@dataclass(frozen=True)
class Protocol:
    name: str
    frames: int  # per example: 2 inputs + the generated ones
    size: int  # the benchmark's square frames
    examples: int  # how many the generator script writes
    generator: str


PROTOCOLS = {
    "davis7": Protocol("DAVIS-7", 9, 256, 357, "VIDIM generate_davis-7.py (DAVIS 2017 480p "
                       "JPEGImages, consecutive 9-frame chunks, centre square crop, 256 px)"),
    "ucf7": Protocol("UCF101-7", 9, 256, 400, "VIDIM generate_ucf101-7.py (first 400 "
                     "consecutive 9-frame chunks of the TFDS ucf101 test split, 256 px)"),
}

# Framer's Table 1 (arXiv 2410.18978v2): the figures to compare against
PAPER = {
    "davis7": {
        "Framer (autopilot)": dict(psnr=21.23, ssim=0.7218, lpips=0.2525, fid=27.13, fvd=115.65),
        "FILM": dict(psnr=21.67, ssim=0.7121, lpips=0.2191, fid=17.20, fvd=162.86),
        "RIFE": dict(psnr=22.00, ssim=0.7216, lpips=0.2663, fid=39.16, fvd=319.79),
    },
    "ucf7": {
        "Framer (autopilot)": dict(psnr=25.04, ssim=0.8806, lpips=0.1714, fid=31.69, fvd=181.55),
        "FILM": dict(psnr=26.74, ssim=0.8983, lpips=0.1378, fid=16.22, fvd=239.48),
        "RIFE": dict(psnr=27.04, ssim=0.9020, lpips=0.1575, fid=27.96, fvd=300.40),
    },
}


def example_folders(root: Path) -> list[Path]:
    """The example sub-folders of a benchmark folder, in name order."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: benchmark folder not found — give the folder VIDIM's "
                         "generate_*-7.py wrote (docs/evaluation.md)")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise ValueError(f"{root}: no example folders in it — expected 0000/frame_000.png … "
                         "(docs/evaluation.md)")
    return folders


def read_example(folder: Path, frames: int) -> np.ndarray:
    from PIL import Image

    files = frame_files(folder)
    if len(files) != frames:
        raise ValueError(f"{folder}: {len(files)} frames, the protocol needs {frames} "
                         "(2 inputs + the frames between) — regenerate the benchmark")
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    if len({im.shape for im in images}) != 1:
        raise ValueError(f"{folder}: frames of different sizes")
    return np.stack(images)


def protocol_clips(name: str, root, max_clips: int | None, fps: float, motion_bucket: float
                   ) -> tuple[list[EvalClip], list[str]]:
    """The benchmark's examples as clips (conditioned with the model's fps and motion bucket),
    and notes on anything that differs from the protocol."""
    protocol = PROTOCOLS[name]
    folders = example_folders(root)
    notes = []
    if max_clips is not None and max_clips < len(folders):
        folders = folders[:max_clips]
        notes.append(f"{protocol.name}: only the first {max_clips} examples (--max-clips); the "
                     "paper's figures use all of them")
    elif len(folders) != protocol.examples:
        notes.append(f"{protocol.name}: {len(folders)} examples, the benchmark has "
                     f"{protocol.examples} — figures are not comparable with the paper's")
    clips = [EvalClip(f.name, read_example(f, protocol.frames), None, float(fps),
                      float(motion_bucket)) for f in folders]
    sizes = {c.frames.shape[1:3] for c in clips}
    if sizes != {(protocol.size, protocol.size)}:
        notes.append(f"{protocol.name}: frames of {', '.join(f'{w}x{h}' for h, w in sorted(sizes))}"
                     f", the benchmark's are {protocol.size}x{protocol.size}")
    return clips, notes
