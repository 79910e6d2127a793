"""Least privilege stated by the code: the permissions doc is generated and current; the setup
guide grants exactly those read permissions and nothing that writes."""

from __future__ import annotations

import re
from pathlib import Path

from pimtrail.collectors.graph import permissions_doc

DOCS = Path(__file__).parents[1] / "docs"


def test_permissions_doc_is_generated_from_the_dataset_declarations():
    current = (DOCS / "permissions.md").read_text()
    assert current == permissions_doc.render(), \
        "docs/permissions.md is stale: run .venv/bin/python -m pimtrail.collectors.graph.permissions_doc --write"


def test_permissions_doc_holds_the_cli_table(cli):
    table = cli("permissions", "--format", "markdown").output.strip()
    assert table in (DOCS / "permissions.md").read_text()


def test_setup_guide_grants_exactly_the_read_permissions():
    required, optional = permissions_doc.granted_permissions()
    guide = (DOCS / "setup.md").read_text()
    named = set(re.findall(r"\b[A-Z][A-Za-z]+\.Read\.[A-Za-z]+\b", guide))
    assert named == set(required) | set(optional)
    # the only write scopes named are the admin's own, to create the app (PowerShell sign-in)
    assert set(re.findall(r"\b[A-Z][A-Za-z]+\.ReadWrite\.[A-Za-z]+\b", guide)) == \
        {"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"}
    for block in re.findall(r"```(?:bash|powershell)\n(.*?)```", guide, re.S)[:2]:  # CLI, PowerShell
        assert set(re.findall(r"\b[A-Z][A-Za-z]+\.Read\.[A-Za-z]+\b", block)) == set(required) | set(optional)
    assert "ReadWrite" not in "".join(required + optional)
    for topic in ("cron", "GitHub Actions", "Azure DevOps", "30 days", "certificate"):
        assert topic in guide


def test_export_format_lists_the_requests_the_collector_sends():
    current = (DOCS / "export-format.md").read_text()
    assert current == permissions_doc.export_doc(current), \
        "docs/export-format.md is stale: run .venv/bin/python -m pimtrail.collectors.graph.permissions_doc --write"
    assert "`/v1.0/auditLogs/directoryAudits?$filter=category eq 'RoleManagement'" in current
