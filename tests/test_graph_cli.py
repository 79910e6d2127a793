"""`pimtrail collect --source graph` end to end: exit codes, what it prints, what it never shows."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

import exports
from pimtrail.collectors.exportdir import read_export
from pimtrail.emulator import Emulator, Fault, licence_missing, permission_missing
from test_graph_collect import fill

TOKEN = "cli-token-5b0e2f"
SECRET = "s3cr3t~Q8b.pimtrail-test-client-secret"


@pytest.fixture
def tenant(export) -> Path:
    return export(change=fill)


def graph_collect(cli, graph: Emulator, db: str, *args: str):
    return cli("collect", "--source", "graph", "--graph-url", graph.base_url, "--db", db, *args)


def coverage_of(cli, db: str) -> dict[str, dict]:
    listing = json.loads(cli("snapshots", "--db", db, "--format", "json").output)
    return {c["dataset"]: c for c in listing[-1]["coverage"]}


def test_complete_collection_stores_a_snapshot_and_prints_a_summary(cli, db, tenant, tmp_path, monkeypatch):
    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", TOKEN)
    with Emulator(tenant, page_size=1) as graph:
        result = graph_collect(cli, graph, db, "--export", str(tmp_path / "kept"))
    assert result.exit_code == 0, result.output
    assert "dataset" in result.output and "status" in result.output  # the summary table
    assert "users                                 2      2  ok" in result.output
    assert "complete" in result.output and f"Raw Graph responses kept in {tmp_path / 'kept'}" in result.output
    snap = json.loads(cli("snapshots", "--db", db, "--format", "json").output)[-1]
    assert (snap["source"], snap["status"], snap["source_ref"]) == ("graph", "complete", str(tmp_path / "kept"))
    again = cli("collect", "--source", str(tmp_path / "kept"), "--db", str(tmp_path / "offline.db"))
    assert again.exit_code == 0  # the kept export collects offline


def test_a_collection_is_read_back_against_the_history_it_goes_into(cli, db, tenant, monkeypatch):
    """As an export collected offline: the elements the newest snapshot held are not parsed again
    (`collect.read_against`), and a new SQLite history's first snapshot may have a worker read its audit log."""
    from pimtrail.collectors import exportdir

    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", TOKEN)
    reads, read = [], exportdir.read_export

    def spy(root, **kwargs):
        reads.append((kwargs.get("source"), kwargs.get("known") is not None))
        return read(root, **kwargs)

    monkeypatch.setattr(exportdir, "read_export", spy)
    with Emulator(tenant) as graph:
        assert graph_collect(cli, graph, db).exit_code == 0
        assert graph_collect(cli, graph, db).exit_code == 0
    assert reads == [("graph", False), ("graph", True)]
    listing = json.loads(cli("snapshots", "--db", db, "--format", "json").output)
    # the second is stored, or not when it was collected in the same second as the first (the same snapshot)
    assert {s["source"] for s in listing} == {"graph"} and 1 <= len(listing) <= 2


def _named_export(tmp_path: Path, name: str, collected_at: str = "2026-07-01T06:00:00Z") -> Path:
    data = exports.baseline(collected_at)
    fill(data)
    data["users"][1]["value"][0]["displayName"] = name  # a change, so that each snapshot is stored
    return exports.write(tmp_path / name, data)


def test_a_read_back_the_history_refuses_is_read_again_from_the_kept_collection(cli, db, tmp_path, monkeypatch):
    """Another collector wrote a snapshot of the tenant between this one's read-back (against #1) and its ingest:
    read again in full from the collection's folder, kept until then without --export too; named by Graph."""
    from datetime import timedelta

    from pimtrail import collect
    from pimtrail.timeutil import iso, utcnow

    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", TOKEN)
    with Emulator(_named_export(tmp_path, "Bob")) as graph:
        assert graph_collect(cli, graph, db).exit_code == 0
    other, ingest = _named_export(tmp_path, "Robert", iso(utcnow() + timedelta(seconds=1))), collect._ingest
    time.sleep(2)  # this collection's time comes after the other's (whole seconds)

    def racing(store, snap):
        assert snap.based_on is not None
        store.ingest(read_export(other))  # the other collector's snapshot lands first
        return ingest(store, snap)

    monkeypatch.setattr(collect, "_ingest", racing)
    with Emulator(_named_export(tmp_path, "Bobby")) as graph:
        result = graph_collect(cli, graph, db)
        url = graph.base_url
    assert result.exit_code == 0, result.output
    listing = json.loads(cli("snapshots", "--db", db, "--format", "json").output)
    assert [(s["seq"], s["source"]) for s in listing] == [(1, "graph"), (2, "export"), (3, "graph")], result.output
    assert listing[2]["source_ref"] == f"graph:{url}"


def test_a_first_collections_audit_log_is_read_by_a_worker_from_the_kept_folder(cli, db, tenant, monkeypatch):
    """Without --export the folder stays until the ingest: the worker begun with the read-back reads its audit log,
    and its events are taken."""
    from pimtrail.store import appending

    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", TOKEN)
    monkeypatch.setattr(appending, "FIRST_WORKER_BYTES", 1)
    taken, normalised = [], appending.FirstEvents.normalised

    def spy(self, snap, shas):
        out = normalised(self, snap, shas)
        taken.append(out)
        return out

    monkeypatch.setattr(appending.FirstEvents, "normalised", spy)
    with Emulator(tenant) as graph:
        result = graph_collect(cli, graph, db)
    assert result.exit_code == 0, result.output
    assert taken and all(taken)


def test_missing_licence_and_permission_exit_3_naming_them_and_keep_the_rest(cli, db, tenant, monkeypatch):
    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", TOKEN)
    with Emulator(tenant) as graph:
        graph.inject("role_eligibility_instances", licence_missing())
        graph.inject("authentication_contexts", permission_missing())
        result = graph_collect(cli, graph, db)
    assert result.exit_code == 3, result.output
    assert "role_eligibility_instances: missing licence: Graph needs Microsoft Entra ID P2" in result.output
    assert "authentication_contexts: missing permission: grant the application permission " \
        "Policy.Read.ConditionalAccess" in result.output
    assert "collection incomplete: authentication_contexts, role_eligibility_instances not collected" in result.output
    cov = coverage_of(cli, db)
    assert (cov["role_eligibility_instances"]["status"], cov["role_eligibility_instances"]["http_status"],
            cov["role_eligibility_instances"]["error_code"]) == ("error", 400, "AadPremiumLicenseRequired")
    assert (cov["authentication_contexts"]["http_status"], cov["authentication_contexts"]["error_code"]) == \
        (403, "Authorization_RequestDenied")
    assert cov["role_assignment_instances"]["status"] == "ok" and cov["role_assignment_instances"]["rows"] == 2
    snap = json.loads(cli("snapshots", "--db", db, "--format", "json").output)[-1]
    assert snap["status"] == "partial" and snap["fact_count"] > 0


def test_a_refused_sign_in_stores_nothing(cli, db, tenant, monkeypatch):
    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", TOKEN)
    with Emulator(tenant) as graph:
        graph.inject("organization", Fault(401, times=None))
        result = graph_collect(cli, graph, db)
    assert result.exit_code == 1 and "refused the token" in result.output
    assert not Path(db).exists() or json.loads(cli("snapshots", "--db", db, "--format", "json").output) == []


def test_sign_in_inputs_are_asked_for_plainly(cli, db, monkeypatch):
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "PIMTRAIL_GRAPH_TOKEN",
                 "AZURE_CLIENT_CERTIFICATE_PATH"):
        monkeypatch.delenv(name, raising=False)
    result = cli("collect", "--source", "graph", "--db", db, "--auth", "secret")
    assert result.exit_code == 2 and "--tenant" in result.output and "AZURE_TENANT_ID" in result.output
    result = cli("collect", "--source", "graph", "--db", db, "--auth", "token")
    assert result.exit_code == 2 and "PIMTRAIL_GRAPH_TOKEN" in result.output
    result = cli("collect", "--source", "graph", "--db", db, "--also", "nonsense")
    assert result.exit_code == 2 and "unknown dataset" in result.output


def _database_text(path: Path) -> str:
    """Everything the history holds, payloads decompressed."""
    with sqlite3.connect(path) as conn:
        dump = "\n".join(conn.iterdump())
        blobs = [zlib.decompress(row[0]).decode("utf-8", "replace")
                 for row in conn.execute("select data from blob")]
    return dump + "\n".join(blobs)


def test_no_secret_in_output_logs_database_or_exports(cli, db, tenant, tmp_path, monkeypatch, caplog):
    from azure.core.credentials import AccessToken
    from azure.identity import aio

    received = []

    class RecordingSecretCredential:  # stands in for Entra: no network here
        def __init__(self, tenant_id, client_id, client_secret, **kw):
            received.append(client_secret)

        async def get_token(self, *scopes, **kw):
            return AccessToken(TOKEN, 4102444800)

        async def close(self):
            pass

    monkeypatch.setattr(aio, "ClientSecretCredential", RecordingSecretCredential)
    monkeypatch.setenv("AZURE_TENANT_ID", exports.TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", "0b1c2d3e-0000-4000-8000-00000000c11e")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    monkeypatch.delenv("PIMTRAIL_GRAPH_TOKEN", raising=False)
    caplog.set_level(logging.DEBUG)  # every library's debug logging, httpx and azure included
    with Emulator(tenant) as graph:
        result = graph_collect(cli, graph, db, "--auth", "secret", "--export", str(tmp_path / "kept"))
        served = repr(graph.log)
    assert result.exit_code == 0, result.output
    assert received == [SECRET]  # the secret did reach the credential ...
    assert "sign-in: secret" in result.output
    places = {"output": result.output, "logs": caplog.text, "database": _database_text(Path(db)),
              "emulator log": served}
    places.update({f"export {p.name}": p.read_text() for p in (tmp_path / "kept").iterdir()})
    for where, text in places.items():  # ... and nowhere else; nor did the token
        assert SECRET not in text, where
        assert TOKEN not in text, where
    assert len(caplog.records) > 0  # the logs were really captured


def test_collecting_an_export_and_checking_do_not_import_msgraph(tmp_path):
    root = exports.write(tmp_path / "export", exports.baseline())
    db = str(tmp_path / "h.db")
    code = ("import sys; from typer.testing import CliRunner; from pimtrail.cli import app; "
            f"r = CliRunner().invoke(app, ['collect', '--source', {str(root)!r}, '--db', {db!r}]); "
            "assert r.exit_code in (0, 3), r.output; "
            f"r = CliRunner().invoke(app, ['check', '--db', {db!r}]); assert r.exit_code in (0, 1), r.output; "
            "r = CliRunner().invoke(app, ['permissions']); assert r.exit_code == 0; "
            "print(sorted(m for m in ('msgraph', 'msgraph_core', 'azure.identity', 'kiota_http') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_unreachable_graph_stores_nothing(cli, db, monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", TOKEN)
    result = cli("collect", "--source", "graph", "--graph-url", f"http://127.0.0.1:{port}/v1.0", "--db", db)
    assert result.exit_code == 1 and "cannot reach Graph" in result.output
    assert not Path(db).exists()
