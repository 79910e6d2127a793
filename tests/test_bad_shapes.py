"""A value of another shape than Graph's (a number for a text, a list for an object, an object for a duration) anywhere
in an element: exit code 2 and one line naming the file and the element, no traceback, and no history made; what is
stored is text where readers expect text, so a history that took an export never breaks a later command."""

from __future__ import annotations

import json

import pytest

import exports
import tenant as t

NOW = "2026-09-30T06:00:00Z"


def _first(data, name):
    body = data[name]
    return (body["pages"][0]["body"] if "pages" in body else body)["value"][0]


def _rule(data):
    rules = _first(data, "role_policy_assignments")["policy"]["rules"]
    return next(r for r in rules if "maximumDuration" in r)


SHAPES = {  # where, a change of shape, what the error names
    "audit details not a list": ("directory_audits", lambda d: _first(d, "directory_audits").update(
        additionalDetails=True), "directory_audits.json: value[0]"),
    "audit target not an object": ("directory_audits", lambda d: _first(d, "directory_audits").update(
        targetResources=[7]), "directory_audits.json: value[0]"),
    "audit target id an object": ("directory_audits", lambda d: _first(d, "directory_audits")["targetResources"][
        1].update(id={}), "directory_audits.json: value[0].targetResources"),
    "audit actor name a list": ("directory_audits", lambda d: _first(d, "directory_audits")["initiatedBy"][
        "user"].update(displayName=["x"]), "directory_audits.json: value[0].initiatedBy"),
    "a number among CA roles": ("ca_policies", lambda d: _first(d, "ca_policies")["conditions"]["users"][
        "includeRoles"].append(5), "ca_policies.json: value[0]"),
    "CA strength id a list": ("ca_policies", lambda d: _first(d, "ca_policies").setdefault("grantControls", {}).update(
        authenticationStrength={"id": ["x"]}), "ca_policies.json: value[0].grantControls.authenticationStrength.id"),
    "licence units not an object": ("subscribed_skus", lambda d: _first(d, "subscribed_skus").update(prepaidUnits=5),
                                    "subscribed_skus.json: value[0]"),
    "duration an object": ("role_policy_assignments", lambda d: _rule(d).update(maximumDuration={"h": 1}),
                           "role_policy_assignments.json: value[0]"),
    "role id a number": ("role_eligibility_instances", lambda d: _first(d, "role_eligibility_instances").update(
        roleDefinitionId=1.5), "role_eligibility_instances.json: value[0].roleDefinitionId"),
    "expanded principal id a number": ("role_eligibility_instances", lambda d: _first(d, "role_eligibility_instances")[
        "principal"].update(id=5), "role_eligibility_instances.json: value[0]"),
    "reviewer without a query": ("access_review_definitions", lambda d: _first(d, "access_review_definitions")[
        "reviewers"].append({"a": 1}), "access_review_definitions.json: value[0].reviewers[1].query"),
    "review recurrence a list": ("access_review_definitions", lambda d: _first(d, "access_review_definitions")[
        "settings"]["recurrence"]["pattern"].update(type=["a"]),
        "access_review_definitions.json: value[0].settings.recurrence.pattern.type"),
    "review scope query not text": ("access_review_definitions", lambda d: _first(d, "access_review_definitions")[
        "scope"]["resourceScopes"][1].update(query=True),
        "access_review_definitions.json: value[0].scope.resourceScopes[1].query"),
    "strength combination a list": ("authentication_strengths", lambda d: _first(d, "authentication_strengths")[
        "allowedCombinations"].append(["fido2"]), "authentication_strengths.json: value[0]"),
    "decision principal id a number": ("access_review_decisions", lambda d: _first(d, "access_review_decisions")[
        "principal"].update(id=5), "access_review_decisions.json: value[0].principal.id"),
    # identifiers PostgreSQL cannot hold, found only by the ingest's column checks (a traceback there, before, and
    # on SQLite an empty history file left behind): refused on both, and no file made; named by their file and
    # element (`store.located`), as the reader names an element
    "audit id holding NUL": ("directory_audits", lambda d: _first(d, "directory_audits").update(id="id\x00x"),
                             "directory_audits.json: value[0]: event.source_id holds a NUL character"),
    "user id holding NUL": ("users", lambda d: _first(d, "users").update(id="u\x00x"), "users.json: value[0]: fact.key holds a NUL"),
    "eligibility id too long": ("role_eligibility_instances", lambda d: _first(d, "role_eligibility_instances").update(
        id="x" * 401), "role_eligibility_instances.json: value[0]: fact.key is longer than 400 characters"),
    # moments that are real in their zone and out of Python's range in UTC (OverflowError, a traceback, before)
    "user created past year 9999 in UTC": ("users", lambda d: _first(d, "users").update(
        createdDateTime="9999-12-31T23:59:59-01:00"), "users.json: value[0].createdDateTime"),
    "audit time before year 1 in UTC": ("directory_audits", lambda d: _first(d, "directory_audits").update(
        activityDateTime="0001-01-01T00:00:00+01:00"), "directory_audits.json: value[0].activityDateTime"),
    "decision reviewed past year 9999 in UTC": ("access_review_decisions", lambda d: _first(
        d, "access_review_decisions").update(reviewedDateTime="9999-12-31T23:59:59-01:00"),
        "access_review_decisions.json: value[0].reviewedDateTime"),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_a_value_of_another_shape_is_one_line_and_exit_2(case, tmp_path, cli):
    _, change, named = SHAPES[case]
    data = t.compliant(NOW)
    change(data)
    target = tmp_path / "new.db"
    result = cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", target)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and named in errors[0], result.output
    assert "Traceback" not in result.output and not target.exists()


def test_a_lone_surrogate_in_a_tenants_text_is_collected_as_u_fffd(tmp_path, cli):
    """JSON may escape a surrogate alone (a display name Graph holds broken); no Unicode text holds one. Such a text
    is collected with U+FFFD in its place (it was a traceback, exit 1, and a history file left behind): a name in
    the tenant cannot stop its collection. Its raw receipt keeps the escape as it came."""
    from pimtrail.store import HistoryStore

    data = t.compliant(NOW)
    _first(data, "directory_audits")["resultReason"] = "a\ud800b"
    _first(data, "users")["displayName"] = "c\udfffd"
    _first(data, "role_eligibility_instances")["memberType"] = "\udbff"
    target = tmp_path / "new.db"
    result = cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", target)
    assert result.exit_code == 0, result.output
    with HistoryStore.open(str(target)) as store:
        snap = store.snapshots()[-1]
        users = {f["id"]: f for f in store.facts(snap.tenant_id, "principal", snap.seq)}
        assert users[_first(data, "users")["id"]]["name"] == "c\ufffdd"
        eligible = store.facts(snap.tenant_id, "role_eligibility", snap.seq)
        assert "\ufffd" in json.dumps(eligible, ensure_ascii=False)
        pages = store.receipts(snap.tenant_id, snap.id)
        audit = [store.receipt(snap.tenant_id, p["sha256"]) for p in pages if p["dataset"] == "directory_audits"]
        assert any(b"a\\ud800b" in page for page in audit)
    assert cli("verify", "--db", target).exit_code == 0


@pytest.mark.parametrize("dataset, at, column", [("directory_audits", 3, "event.source_id"), ("users", 1, "fact.key")])
def test_an_identifier_only_the_ingest_refuses_is_named_by_its_file_page_and_element(dataset, at, column, tmp_path,
                                                                                      cli):
    """Found after the reading, by the ingest's column checks: named as the reader names an element (page and
    index), an event's found in its dataset's pages by the value it holds (`store.located`)."""
    data = t.compliant(NOW)
    entries = data[dataset]["value"]
    assert len(entries) > at
    entries[at]["id"] = "id\x00" + entries[at]["id"]
    data[dataset] = [{"value": entries[:at - 1]}, {"value": entries[at - 1:]}]  # two pages, the element 2nd on the 2nd
    result = cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", tmp_path / "new.db")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{dataset}.json: page 2 value[1]: {column} holds a NUL character" in errors[0], \
        result.output


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _actor_and_target(entries: list) -> None:  # the same id as one entry's actor (not a column) and a later one's target
    entries[0]["initiatedBy"]["user"]["id"] = "u\x00x"
    entries[3]["targetResources"][1]["id"] = "u\x00x"


def _deep_before(entries: list) -> None:  # an element nested past what a recursive look through it could take
    entries[0]["extra"] = _nested(400)
    entries[3]["id"] = "id\x00x"


def _colon_elsewhere(entries: list) -> None:  # a `<id>:<status>` split is a role request's, not an audit id's
    entries[1]["resultReason"] = "a\x00x"
    entries[3]["id"] = "a\x00x:tail"


@pytest.mark.parametrize("change, column", [(_actor_and_target, "event.principal_id"),
                                            (_deep_before, "event.source_id"), (_colon_elsewhere, "event.source_id")])
def test_a_refused_event_identifier_is_named_by_the_element_it_is_copied_from(change, column, tmp_path, cli):
    """Not by another element holding the same text elsewhere (found by a review), and never a traceback."""
    data = t.compliant(NOW)
    change(data["directory_audits"]["value"])
    result = cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", tmp_path / "new.db")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"directory_audits.json: value[3]: {column} holds a NUL character" in errors[0], \
        result.output


@pytest.mark.parametrize("case", ["audit id holding NUL", "user id holding NUL"])
def test_an_identifier_postgresql_cannot_hold_is_refused_on_both_backends(case, tmp_path, cli, db_url):
    _, change, named = SHAPES[case]
    data = t.compliant(NOW)
    change(data)
    result = cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", db_url)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert named in result.output


def test_a_nul_in_a_datasets_error_message_is_stored_as_u_fffd_on_both_backends(tmp_path, cli, db_url):
    """An error message is text to show: a NUL in it (PostgreSQL's text holds none: a database error, before)
    becomes U+FFFD, and the snapshot is collected as incomplete, as any dataset with an error makes it."""
    from pimtrail.store import HistoryStore

    data = t.compliant(NOW)
    del data["registration_details"]
    data["_manifest"]["datasets"]["registration_details"] = {
        "error": {"http_status": 403, "code": "Forbidden\x00", "message": "no\x00pe"}}
    result = cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", db_url)
    assert result.exit_code == 3, result.output
    with HistoryStore.open(db_url) as store:
        snap = store.snapshots()[-1]
        row = next(c for c in store.coverage(snap.id) if c["dataset"] == "registration_details")
        assert (row["error_code"], row["error_message"]) == ("Forbidden\ufffd", "no\ufffdpe")
    assert cli("verify", "--db", db_url).exit_code == 0


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "0999-12-31T12:00:00Z"])
def test_an_audit_event_dated_before_the_year_1000_is_collected_and_read_again(moment, tmp_path, cli):
    """A time before the year 1000 is written into SQLite as SQLAlchemy writes it, the year in four digits: written
    without its zeros ("1-01-01"), no reader parsed it again (a traceback as the same ingest read it back)."""
    data = t.compliant(NOW)
    _first(data, "directory_audits")["activityDateTime"] = moment
    target = tmp_path / "new.db"
    result = cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", target)
    assert result.exit_code == 0, result.output
    assert cli("verify", "--db", target).exit_code == 0
    assert cli("check", "--db", target).exit_code in (0, 1)


def _completion(data) -> dict:
    return next(e for e in data["directory_audits"]["value"] if "completed" in e["activityDisplayName"])


DATES_AT_THE_END = {  # dates near the calendar's end a history took, each of which then stopped a later command
    "activation start in 9999": lambda d: next(
        x for x in _completion(d)["additionalDetails"] if x["key"] == "StartTime").update(value="9999-12-31T23:59:59Z"),
    "audit window to 9999": lambda d: d["_manifest"]["datasets"].setdefault("directory_audits", {}).update(
        file="directory_audits.json", window={"from": "2026-08-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}),
}


@pytest.mark.parametrize("case", sorted(DATES_AT_THE_END))
def test_a_date_near_the_calendars_end_is_collected_and_every_command_reads_it(case, tmp_path, cli):
    """A date the history takes must not stop a later command: `check`, `pack` and `trend` stopped with "a date
    outside the calendar" (a control's window past it, the trend's range, the events' horizon)."""
    data = t.compliant(NOW)
    DATES_AT_THE_END[case](data)
    db = str(tmp_path / "h.db")
    assert cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", db).exit_code == 0
    assert cli("check", "--db", db, "--fail-on", "never").exit_code == 0
    assert cli("trend", "--db", db, "--out", str(tmp_path / "t.html")).exit_code == 0
    assert cli("pack", "--db", db, "--period", "2026-Q3", "--out", str(tmp_path / "pack")).exit_code == 0


@pytest.mark.parametrize("change, named", [
    (lambda d: _first(d, "organization").update(id=t.TENANT + "\nline2"), "organization id '"),
    (lambda d: d["_manifest"].update(tenant_id=t.TENANT + "\n"), "not a tenant id"),
    (lambda d: d["_manifest"].update(collected_at="9999-12-31T23:59:59Z"), "in the calendar's last year"),
    (lambda d: _first(d, "users").update(createdDateTime="2026-07-01T00:00:00Z" + "x" * 100_000), "not a date-time"),
])
def test_an_error_quoting_tenant_text_is_one_short_line(change, named, tmp_path, cli):
    data = t.compliant(NOW)
    change(data)
    result = cli("collect", "--source", exports.write(tmp_path / "e", data), "--db", str(tmp_path / "h.db"))
    assert result.exit_code == 2 and named in result.output
    assert len(result.output.strip().splitlines()) == 1 and len(result.output) < 600, result.output[:600]


def test_files_that_begin_with_a_byte_order_mark_are_read_as_without_one(tmp_path, cli):
    """Windows PowerShell 5.1 writes UTF-8 with a byte order mark: the manifest and the dataset files so written are
    read as the same files without it (it was "malformed JSON"), their receipts the same bodies."""
    from pimtrail.store import HistoryStore

    data = t.compliant(NOW)
    plain, marked = exports.write(tmp_path / "plain", data), exports.write(tmp_path / "marked", data)
    for path in marked.glob("*.json"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    chains = []
    for root in (plain, marked):
        db = str(tmp_path / f"{root.name}.db")
        assert cli("collect", "--source", root, "--db", db).exit_code == 0
        with HistoryStore.open(db) as store:
            snap = store.snapshots()[-1]
            chains.append((snap.content_hash, [r["sha256"] for r in store.receipts(snap.tenant_id, snap.id)]))
    assert chains[0][1] == chains[1][1]
