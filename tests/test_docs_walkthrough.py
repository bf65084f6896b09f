"""Every command of the "Your own videos, end to end" sections of docs/quickstart.md and
docs/training.md runs as written on generated videos (with tiny step counts appended):
check-data → train → evaluate (base vs LoRA in one call) → stitch."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from framerturbo.cli.main import main
from framerturbo.media.files import read_video_frames
from videos import moving_square_frames, write_video

pytestmark = pytest.mark.system  # whole-program: left out of the quick tier

ROOT = Path(__file__).resolve().parents[1]
SECTION = "Your own videos, end to end"
TINY = {"train": ["train.max_steps=2", "train.checkpoint_every=2", "train.batch_size=1",
                  "validation.sample=false"],
        "evaluate": ["--steps", "2", "--max-clips", "2"],
        "stitch": ["--steps", "2", "--transition-frames", "2"]}


def walkthrough(doc: str) -> list[list[str]]:
    text = (ROOT / "docs" / doc).read_text()
    section = re.search(rf"## [^\n]*{SECTION}\n(.*?)(?=\n## |\Z)", text, flags=re.S).group(1)
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [shlex.split(line) for b in blocks for line in b.replace("\\\n", " ").splitlines()
            if line.strip()]


@pytest.fixture(scope="module")
def commands():
    quick, training = walkthrough("quickstart.md"), walkthrough("training.md")
    assert [c[1] for c in training] == ["check-data", "train", "evaluate", "stitch"]
    assert quick == training  # one walkthrough, told twice
    return training


def test_walkthrough_runs_on_generated_videos(commands, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for i in range(4):
        write_video(Path(f"my_videos/train/clip{i}.mp4"),
                    moving_square_frames(20, seed=i, velocity=(0.8 + 0.2 * i, 0.5)), fps=8)
    for i, name in enumerate(("hello", "world")):
        write_video(Path(f"my_videos/val/{name}.mp4"), moving_square_frames(12, seed=10 + i),
                    fps=8)
    for argv in commands:
        assert argv[0] == "framerturbo"
        assert main(argv[1:] + TINY.get(argv[1], [])) == 0, argv
    report = json.loads(Path("runs/my-lora/eval.json").read_text())
    assert list(report["rows"]) == ["base (micro)", "lora my-lora", "crossfade", "flow"]
    assert report["conditions"]["spacing"] == "stride 2"  # the run's own clip settings
    video = read_video_frames(Path("hello-world.mp4"))
    assert video.shape == (12 + 2 + 12, 64, 64, 3)
