"""Bad input: exit code 2, one line naming the file (and field) and the fix, history untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import exports
from conftest import file_digest

OTHER_TENANT = "99999999-2222-4333-8444-555555555555"


def write_text(name: str, text: str):
    def change(root: Path) -> None:
        (root / name).write_text(text)
    return change


def edit_json(name: str, edit):
    def change(root: Path) -> None:
        data = json.loads((root / name).read_text())
        edit(data)
        (root / name).write_text(json.dumps(data))
    return change


def set_key(path: list, value):
    def edit(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


CASES = {
    "malformed json": (write_text("users.json", '{"value": [ {"id": "x", }'),
                       ["users.json", "malformed JSON at line 1"]),
    # Python's json reads NaN; JSON has no such value, and the canonical encoder could not write it back
    "NaN in a body": (write_text("role_definitions.json", '{"value": [{"id": "r", "x": NaN}]}'),
                      ["role_definitions.json", "malformed JSON: NaN is not a JSON value"]),
    "number too large for a float": (write_text("role_definitions.json", '{"value": [{"id": "r", "x": -1E999}]}'),
                                     ["role_definitions.json", "malformed JSON: -1E999 is too large for a number"]),
    "integer of 5,000 digits": (write_text("role_definitions.json", '{"value": [{"id": "r", "x": ' + "9" * 5000 + '}]}'),
                                ["role_definitions.json", "malformed JSON"]),
    "missing manifest": (lambda root: (root / "manifest.json").unlink(), ["missing manifest.json"]),
    "unknown dataset": (edit_json("manifest.json", set_key(["datasets", "roleDefs"], {"file": "x.json"})),
                        ["manifest.json: datasets.roleDefs", "unknown dataset", "known datasets:"]),
    "not a graph body": (write_text("role_definitions.json", '{"roles": []}'),
                         ["role_definitions.json: body", "not a Graph response body"]),
    "pages without value": (write_text("users.json", '[{"value": []}, {"nextLink": "x"}]'),
                            ["users.json: [1]", "not a Graph response body"]),
    "per-parent without parent": (write_text("fido2_methods.json", '{"value": []}'),
                                  ["fido2_methods.json", "pages need their parent id"]),
    "tenant differs from organization": (
        edit_json("organization.json", set_key(["value", 0, "id"], OTHER_TENANT)),
        ["organization.json: value[0].id", "does not match the manifest's tenant_id"]),
    "bad collected_at": (edit_json("manifest.json", set_key(["collected_at"], "last Tuesday")),
                         ["manifest.json: collected_at", "not a date-time", "ISO 8601"]),
    "collected_at without zone": (edit_json("manifest.json", set_key(["collected_at"], "2026-07-08T06:00:00")),
                                  ["manifest.json: collected_at"]),
    "bad date in a body": (
        edit_json("role_eligibility_instances.json", set_key(["value", 0, "endDateTime"], "31/12/2026")),
        ["role_eligibility_instances.json: value[0].endDateTime", "not a date-time"]),
    "bad tenant id": (edit_json("manifest.json", set_key(["tenant_id"], "contoso")),
                      ["manifest.json: tenant_id", "not a tenant id"]),
    "a NUL in a file name": (edit_json("manifest.json", set_key(["datasets", "users", "file"], "users\x00.json")),
                             ["manifest.json: datasets.users.file", "not a file name"]),
    # audit entries are normalised inside the ingest (only new ones): a bad one still rolls it all back
    "bad field in a new audit entry": (
        edit_json("directory_audits.json", lambda data: data["value"][0].update(
            id="audit-new", activityDisplayName={"x": 1})),
        ["directory_audits.json: value[0].activityDisplayName", "expected text"]),
    # per-user facts too are built inside the ingest, only for users whose element changed
    "bad field in a changed user": (
        edit_json("users.json", lambda pages: pages[0]["value"][0].update(accountEnabled="yes")),
        ["users.json: page 1 value[0].accountEnabled", "expected true/false"]),
    "file outside the export": (
        edit_json("manifest.json", set_key(["datasets", "users"], {"file": "../../etc/passwd"})),
        ["datasets.users.file", "outside the export directory"]),
}


@pytest.fixture
def history(export, db, cli):
    assert cli("collect", "--source", export("2026-07-01T06:00:00Z"), "--db", db).exit_code == 3
    return db


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_export_exits_2_and_leaves_history_untouched(case, history, export, cli):
    change, expected = CASES[case]
    root = export("2026-07-08T06:00:00Z")
    change(root)
    before = file_digest(history)
    result = cli("collect", "--source", root, "--db", history)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    # entries normalised lazily (new audit entries, changed users, assignments, decisions) are checked
    # inside the ingest, after the "Collecting ..." header line: nothing else is printed
    assert all(line in errors or line.startswith("Collecting ") for line in lines), result.output
    for text in expected:
        assert text in errors[0]
    assert file_digest(history) == before


def test_tenant_asked_for_must_match(history, export, cli):
    before = file_digest(history)
    result = cli("collect", "--source", export("2026-07-08T06:00:00Z"), "--db", history, "--tenant", OTHER_TENANT)
    assert result.exit_code == 2
    assert f"not the --tenant {OTHER_TENANT}" in result.output and "manifest.json: tenant_id" in result.output
    assert file_digest(history) == before


def test_bad_input_does_not_create_a_database(export, tmp_path, cli):
    root = export()
    (root / "manifest.json").write_text("{")
    target = tmp_path / "new.db"
    result = cli("collect", "--source", root, "--db", target)
    assert result.exit_code == 2 and "manifest.json" in result.output
    assert not target.exists()


@pytest.mark.parametrize("dataset, field, value, where", [
    ("directory_audits", "activityDisplayName", ["x"], "directory_audits.json: value[0]"),
    ("users", "accountEnabled", "yes", "users.json: page 1 value[0]")])
def test_bad_lazily_built_entry_does_not_create_a_database(dataset, field, value, where, export, tmp_path, cli):
    def change(data):
        body = data[dataset][0] if isinstance(data[dataset], list) else data[dataset]
        body["value"][0][field] = value

    target = tmp_path / "new.db"
    result = cli("collect", "--source", export(change=change), "--db", target)
    assert result.exit_code == 2 and f"{where}.{field}" in result.output
    assert not target.exists()


def test_read_commands_do_not_create_a_database(tmp_path, cli):
    target = tmp_path / "nothing.db"
    for command in ("snapshots", "verify"):
        result = cli(command, "--db", target)
        assert result.exit_code == 2 and "no history database" in result.output
    assert not target.exists()


def test_missing_dataset_makes_a_partial_snapshot_and_exit_3(export, db, cli):
    def drop_users_with_error(data):
        del data["users"]
        data["_manifest"]["datasets"]["users"] = {"error": {
            "http_status": 403, "code": "Authorization_RequestDenied", "message": "Insufficient privileges"}}

    result = cli("collect", "--source", export(change=drop_users_with_error), "--db", db)
    assert result.exit_code == 3
    assert "users" in result.output and "not assessable" in result.output
    listing = json.loads(cli("snapshots", "--db", db, "--format", "json").output)
    users = next(c for c in listing[0]["coverage"] if c["dataset"] == "users")
    assert listing[0]["status"] == "partial"
    assert (users["status"], users["http_status"], users["error_code"]) == ("error", 403, "Authorization_RequestDenied")
    assert exports.TENANT == listing[0]["tenant_id"]


def test_a_period_or_an_output_folder_that_cannot_be_is_a_usage_error(history, tmp_path, cli):
    existing = tmp_path / "a-file"
    existing.write_text("")
    for args in (["--period", "9999-Q4", "--out", tmp_path / "p"], ["--from", "2026-07-01", "--to", "9999-12-31",
                                                                    "--out", tmp_path / "p"],
                 ["--period", "2026-Q3", "--out", existing, "--format", "json"]):
        result = cli("pack", "--db", history, *args)
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: ")
    result = cli("trend", "--db", history, "--out", existing / "t.html")
    assert result.exit_code == 2 and result.output.startswith(f"error: {existing}")


def test_a_date_at_the_calendar_s_edge_is_a_usage_error(history, cli):
    result = cli("check", "--db", history, "--to", "0001-01-05")
    assert result.exit_code == 2 and result.output.startswith("error: a date outside the calendar")
