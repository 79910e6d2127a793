"""The command line: start-up stays light, commands documented, JSON listing complete."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pimtrail.cli import app
from pimtrail.collectors.datasets import DATASETS


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from typer.testing import CliRunner; from pimtrail.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0; "
            "print(sorted(m for m in ('msgraph', 'sqlalchemy', 'alembic', 'weasyprint', 'openpyxl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_command_is_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()

    def names(typer_app, prefix: str):
        for command in typer_app.registered_commands:
            yield f"{prefix} {command.name or command.callback.__name__}"
        for group in typer_app.registered_groups:  # sub-apps: `pimtrail db copy`
            yield from names(group.typer_instance, f"{prefix} {group.name}")

    commands = list(names(app, "pimtrail"))
    assert "pimtrail db copy" in commands
    for name in commands:
        assert name in readme, name


def test_permissions_list_every_dataset(cli):
    rows = json.loads(cli("permissions", "--format", "json").output)
    assert [r["dataset"] for r in rows] == [d.name for d in DATASETS]
    assert all(".Read" in r["permission"] for r in rows if not r["optional"])


def test_permissions_summary_names_each_permission_once(cli):
    from pimtrail.collectors.graph.permissions_doc import granted_permissions

    required, optional = granted_permissions()
    lines = cli("permissions").output.splitlines()
    summary = next(line for line in lines if line.startswith("Required application permissions"))
    # sign_in_activity needs two permissions, one of them AuditLog.Read.All as directory_audits does
    assert summary == f"Required application permissions ({len(required)}): {', '.join(required)}"
    assert len(set(required)) == len(required) and "AuditLog.Read.All" in required


@pytest.mark.parametrize("command", ["controls", "permissions", "snapshots"])
def test_an_unknown_format_is_a_usage_error(cli, command):
    result = cli(command, "--format", "xml")
    assert result.exit_code == 2 and "'xml' is not one of" in result.output
