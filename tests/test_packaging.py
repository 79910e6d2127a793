"""The wheel carries everything: built, installed in a clean venv, `pimtrail demo` runs from it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]


def run(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_wheel_installs_in_a_clean_venv_and_runs_the_demo(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT))
    [wheel] = dist.glob("pimtrail-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for data_file in ("pimtrail/sample_data/scenario.toml", "pimtrail/sample_data/pimtrail.toml",
                      "pimtrail/controls/data/mappings.toml", "pimtrail/controls/data/profiles/cis-m365.toml",
                      "pimtrail/store/migrations/env.py", "pimtrail/store/migrations/versions/0001_history.py",
                      "pimtrail/templates/pack.html.j2", "pimtrail/templates/pack.css",
                      "pimtrail/templates/dashboard.html.j2"):
        assert data_file in names, data_file
    assert not any(n.startswith(("tests/", "collectors/", "controls/")) for n in names)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    run(str(venv / "bin" / "pip"), "install", "-q", str(wheel))
    out = run(str(venv / "bin" / "pimtrail"), "demo", "--out", str(tmp_path / "demo"), cwd=tmp_path)
    assert "14 snapshots of tenant Northwind Aeronautics" in out
    assert "Hash chain: intact over 14 snapshots" in out
    assert "Controls at quarter end" in out
    pack = tmp_path / "demo" / "pack-2026-Q3"
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=pack, capture_output=True).returncode == 0
    assert {p.suffix for p in pack.iterdir()} >= {".pdf", ".xlsx", ".json"}
    assert (tmp_path / "demo" / "dashboard.html").stat().st_size > 10_000
