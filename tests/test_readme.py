"""The README's interpolate command runs as written (on the embedded default model); its main
job, `framerturbo demo`, is run in its --quick form by tests/test_synthetic_eval.py."""

from __future__ import annotations

import pytest

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from framerturbo.media.files import read_video_frames

pytestmark = pytest.mark.system  # whole-program: left out of the quick tier

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [" ".join(b.replace("\\\n", " ").split()) for b in blocks]


def console_script() -> Path:
    """The installed `framerturbo` console script, next to this interpreter (a venv's bin/)."""
    script = Path(sys.executable).parent / ("framerturbo.exe" if os.name == "nt" else "framerturbo")
    assert script.is_file(), f"{script}: console script missing — pip install -e ."
    return script


def test_readme_interpolate_command_runs_and_autopilot_follows_tracks(tmp_path):
    """Run exactly as written, through the console script; `--autopilot` must really steer
    (SIFT matches on the shipped examples) rather than fall back to no control."""
    assert "framerturbo demo --out demo-out" in readme_commands()
    main = next(c for c in readme_commands() if c.startswith("framerturbo interpolate examples/"))
    argv = shlex.split(main)
    assert argv[0] == "framerturbo" and "--autopilot" in argv
    out = tmp_path / "out.mp4"
    argv[argv.index("-o") + 1] = str(out)
    result = subprocess.run([str(console_script()), *argv[1:]], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "no matches" not in result.stderr and "without trajectory control" not in result.stderr
    tracks = re.search(r"autopilot steered by (\d+) tracks", result.stderr)
    assert tracks and int(tracks.group(1)) >= 1, result.stderr
    assert read_video_frames(out).shape[:3] == (9, 64, 64)  # the micro model's own size


def test_readme_turbo_command_runs_on_the_shipped_turbo_lora(tmp_path):
    """A bare `--turbo` finds the turbo LoRA the package ships with the micro model (the log
    names the folder it loaded)."""
    turbo = next(c for c in readme_commands()
                 if c.startswith("framerturbo interpolate examples/") and "--turbo" in c)
    argv = shlex.split(turbo)
    out = tmp_path / "out.mp4"
    argv[argv.index("-o") + 1] = str(out)
    result = subprocess.run([str(console_script()), *argv[1:]], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert re.search(r"turbo LoRA: \S*assets/micro/turbo\b", result.stderr), result.stderr
    assert read_video_frames(out).shape[:3] == (9, 64, 64)


def test_readme_names_the_test_command_ci_runs():
    assert "python -m pytest" in readme_commands()
    assert "python -m pytest\n" in (ROOT / ".ci" / "run").read_text()
