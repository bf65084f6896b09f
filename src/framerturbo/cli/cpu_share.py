"""A warning before a CPU job starts on cores that other processes already keep busy.

PyTorch gives a CPU job one OpenMP thread per core, and those threads spin while they wait for
each other. A thread of another process on the same cores makes every parallel region wait for
the thread the scheduler put aside: on a 2-core machine one busy Python loop made a micro
``euler-10`` sample 4.2× slower (1.64 → 6.95 s) and two samples at once ran 6.5× slower each,
while the same two with ``OMP_NUM_THREADS=1`` took 2.4–2.6 s each (docs/performance.md). The
thread count is not changed for the user: it decides the result's last bits (``--seed``'s
promise), so this only says what is happening and what to do.

Threads that are runnable are counted from ``/proc`` (this process's namespace: a container
sees its own), the least seen over a few samples, so a burst is not a busy core.
``FRAMERTURBO_CPU_CHECK=0`` turns the check off.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def runnable_threads(skip_pid: int | None = None) -> dict[int, int] | None:
    """Process id → how many of its threads are ready to run right now (``/proc``), leaving out
    ``skip_pid``; None where ``/proc`` cannot say (not Linux)."""
    proc = Path("/proc")
    if not (proc / "self" / "task").is_dir():
        return None
    counts: dict[int, int] = {}
    for stat in proc.glob("[0-9]*/task/*/stat"):
        pid = int(stat.parts[2])
        if pid == skip_pid:
            continue
        try:
            text = stat.read_text()
        except OSError:  # the thread ended while we looked
            continue
        if text[text.rfind(")") + 2:text.rfind(")") + 3] == "R":  # the state after "(name) "
            counts[pid] = counts.get(pid, 0) + 1
    return counts


def busy_threads_elsewhere(samples: int = 5, interval: float = 0.02) -> int | None:
    """Threads of other processes ready to run, the least over ``samples`` looks; None where
    ``/proc`` cannot say."""
    least = None
    for i in range(samples):
        if i:
            time.sleep(interval)
        counts = runnable_threads(skip_pid=os.getpid())
        if counts is None:
            return None
        least = sum(counts.values()) if least is None else min(least, sum(counts.values()))
    return least


def cores_busy_warning(threads: int, cores: int | None, busy: int | None) -> str | None:
    """The warning's text when ``busy`` other threads and our ``threads`` do not fit on
    ``cores``; None when they fit or nothing could be counted."""
    if not busy or not cores or busy + threads <= cores:
        return None
    return (f"warning: {busy} thread{'s' if busy > 1 else ''} of other processes already "
            f"run{'' if busy > 1 else 's'} on this machine's {cores} CPU cores; this job's "
            f"{threads} PyTorch threads will wait on them and run several times slower. Run "
            "the jobs one after another, or give each fewer threads (OMP_NUM_THREADS=1 "
            "framerturbo …); FRAMERTURBO_CPU_CHECK=0 silences this")


def warn_if_cores_busy(device: str) -> None:
    """Print the warning for a job that will run on the CPU (``--device cpu``, or ``auto``
    without CUDA)."""
    if os.environ.get("FRAMERTURBO_CPU_CHECK", "1") == "0":
        return
    import torch

    if not (device == "cpu" or (device == "auto" and not torch.cuda.is_available())):
        return
    message = cores_busy_warning(torch.get_num_threads(), os.cpu_count(), busy_threads_elsewhere())
    if message:
        print(f"framerturbo: {message}", file=sys.stderr)
