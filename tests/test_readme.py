"""The README's interpolate command runs as written (on the embedded default model); its main
job, `framerturbo demo`, is run in its --quick form by tests/test_synthetic_eval.py."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from framerturbo.media.files import read_video_frames

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [" ".join(b.replace("\\\n", " ").split()) for b in blocks]


def test_readme_main_command_runs(tmp_path):
    assert "framerturbo demo --out demo-out" in readme_commands()
    main = next(c for c in readme_commands() if c.startswith("framerturbo interpolate examples/"))
    argv = shlex.split(main)
    assert argv[0] == "framerturbo"
    out = tmp_path / "out.mp4"
    argv[argv.index("-o") + 1] = str(out)
    result = subprocess.run([sys.executable, "-m", "framerturbo.cli.main", *argv[1:]], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert read_video_frames(out).shape[:3] == (9, 64, 64)  # the micro model's own size


def test_readme_names_the_test_command_ci_runs():
    assert "python -m pytest" in readme_commands()
    assert "python -m pytest\n" in (ROOT / ".ci" / "run").read_text()
