"""What every benchmark reports the same way: the machine it ran on, its memory, and where its table goes."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def rss_bytes() -> int:
    """This process's resident memory now."""
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """This process's peak resident memory since it started its program. Not getrusage's ru_maxrss:
    Linux carries that across fork and exec, so a fresh `python -m bench.x` started by a bench run
    that once held 2 GB reported 2 GB (make bench, 2026-12-05); VmHWM starts again at exec."""
    return _status_bytes("VmHWM")


def cpu_model() -> str:
    """CPU model name, as BENCH.md asks every result to state."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def load_note() -> str:
    """The load average as a sentence for a results file: whether the machine was quiet."""
    one, five, fifteen = os.getloadavg()
    # The load average cannot tell other work from `make bench`'s own all-core runs just before.
    busy = (" (the 5-minute figure is above one busy core: other work, or the all-core benchmarks "
            "`make bench` ran just before, may inflate the times)") if five > 1.5 * (os.cpu_count() or 1) / 2 else ""
    return (f"Load average at the end: {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) on "
            f"{os.cpu_count()} cores{busy}.")


def publish(report: str, path: Path) -> str:
    """Print a benchmark's table and save it under bench/results/."""
    print(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report, encoding="utf-8")
    return report


def peak_tree_pss(child: subprocess.Popen, interval: float = 0.02) -> int:
    """Sample, until `child` exits, the PSS of its whole process tree (workers, servers); the peak in
    bytes. PSS counts a page shared by several processes once in all, so the sum is what they hold."""
    import psutil

    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(interval)
    return peak
