"""What every benchmark reports the same way: the machine it ran on, and where its table goes."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """CPU model name, as BENCH.md asks every result to state."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def publish(report: str, path: Path) -> str:
    """Print a benchmark's table and save it under bench/results/."""
    print(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report, encoding="utf-8")
    return report
