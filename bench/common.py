"""Shared by the benchmark modules: result rows, medians, child processes, memory readings."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@dataclass
class Row:
    """One line of the results table."""

    measure: str
    value: float | None
    unit: str
    target: str = ""  # human text, e.g. "<= 10 s"
    limit: float | None = None  # the number `value` must not exceed (None: informational)
    runs: int = 1
    note: str = ""
    values: list[float] = field(default_factory=list)
    extrapolated: bool = False
    minimum: float | None = None  # for ">=" targets (none so far)

    @property
    def met(self) -> bool | None:
        if self.limit is None or self.value is None:
            return None
        return self.value <= self.limit

    def as_dict(self) -> dict[str, Any]:
        return dict(asdict(self), met=self.met)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def vm_hwm_mb() -> float:
    """This process's peak resident set so far (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(args: list[str], timeout: float = 3600) -> tuple[dict[str, Any], float, float]:
    """Run `python <args>` and return (its last stdout line as JSON, wall seconds, its peak RSS MB).

    The peak RSS is the child's own (ru_maxrss of RUSAGE_CHILDREN grows to the largest child
    waited for, so the child also reports its VmHWM, which is taken when given)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    began = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads(done.stdout.strip().splitlines()[-1])
    rss = report.get("rss_mb") or (after / 1024 if after > before else None)
    return report, wall, rss


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def db_size(path: Path) -> int:
    """The SQLite file plus its WAL and shared-memory files, as they are on disk."""
    return sum(Path(f"{path}{suffix}").stat().st_size for suffix in ("", "-wal", "-shm")
               if Path(f"{path}{suffix}").exists())


_STARTED = time.perf_counter()


def say(text: str) -> None:
    print(f"[{(time.perf_counter() - _STARTED) / 60:5.1f} min] {text}", file=sys.stderr, flush=True)
