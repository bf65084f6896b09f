"""The warning before a CPU job starts on cores other processes keep busy (cli/cpu_share.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from framerturbo.cli import cpu_share
from framerturbo.cli.main import main

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_the_warning_says_when_threads_do_not_fit_on_the_cores():
    text = cpu_share.cores_busy_warning(threads=2, cores=2, busy=1)
    assert "1 thread of other processes already runs on this machine's 2 CPU cores" in text
    assert "OMP_NUM_THREADS=1" in text and "FRAMERTURBO_CPU_CHECK=0" in text
    assert "3 threads of other processes already run" in cpu_share.cores_busy_warning(8, 8, 3)
    for threads, cores, busy in ((1, 2, 1), (2, 2, 0), (2, 2, None), (2, None, 3), (4, 16, 12)):
        assert cpu_share.cores_busy_warning(threads, cores, busy) is None


def test_a_busy_process_is_counted_and_a_sleeping_one_is_not():
    """Read per process, so what the other test worker runs meanwhile cannot change it."""
    def looks_runnable(code: str) -> int:
        child = subprocess.Popen([sys.executable, "-c", code])
        try:
            time.sleep(0.5)  # started and in its loop
            seen = 0
            for _ in range(5):
                seen += cpu_share.runnable_threads(skip_pid=os.getpid()).get(child.pid, 0) > 0
                time.sleep(0.05)
            return seen
        finally:
            child.kill()
            child.wait()

    assert looks_runnable("while True: pass") >= 3  # of 5 looks (the scheduler may park it)
    assert looks_runnable("import time\nwhile True: time.sleep(1)") <= 1
    assert cpu_share.runnable_threads(skip_pid=os.getpid()).get(os.getpid()) is None
    assert cpu_share.busy_threads_elsewhere(samples=2, interval=0.01) >= 0


def test_model_commands_warn_and_the_switch_silences_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cpu_share, "busy_threads_elsewhere", lambda *a, **k: 64)
    missing = str(tmp_path / "missing.toml")
    monkeypatch.setenv("FRAMERTURBO_CPU_CHECK", "1")
    assert main(["train", "--config", missing]) == 2  # warned, then the config's own error
    err = capsys.readouterr().err
    assert "framerturbo: warning: 64 threads of other processes" in err and "missing.toml" in err
    assert main(["new-model", "--out", str(tmp_path / "m")]) == 0  # runs no model: no warning
    assert "warning" not in capsys.readouterr().err
    monkeypatch.setenv("FRAMERTURBO_CPU_CHECK", "0")
    assert main(["train", "--config", missing]) == 2
    assert "warning" not in capsys.readouterr().err
