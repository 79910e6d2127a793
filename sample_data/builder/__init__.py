"""Turn the readable scenario (scenario.toml) into a series of pimtrail export directories.

One module per job: `scenario` reads the file, `timeline` plays the quarter (including the
access reviews), `policies`, `roles`, `directory`, `reviews`, `audit`, `auth` and `alerts`
render Graph response bodies, `export` assembles one snapshot and `writer` writes it.
"""

from __future__ import annotations

from pathlib import Path

from pimtrail.config import load_config

from .export import Snapshotter
from .scenario import Scenario, load
from .timeline import Timeline
from .writer import write_export

__all__ = ["build", "load", "Scenario", "Timeline"]


def build(out_dir: Path, scenario_path: Path) -> list[Path]:
    """Write one export directory per snapshot under `out_dir`, oldest first."""
    scenario = load(scenario_path)
    # the live collector reads the sign-in activity of the break-glass accounts pimtrail.toml names, too
    config = scenario_path.parent / "pimtrail.toml"
    glass = load_config(config).break_glass if config.exists() else None
    snap = Snapshotter(Timeline(scenario), glass)
    out_dir.mkdir(parents=True, exist_ok=True)
    col = scenario.collection
    return [write_export(out_dir, t, scenario.tenant["id"], col["generator"], col["audit_window_days"],
                         snap.datasets(t))
            for t in scenario.snapshots]
