"""Sign-in activity collected for the privileged users only (docs/benchmarks.md "Sign-in activity at real
churn", design 4): its own dataset, `GET /users?$filter=id in (...)&$select=id,signInActivity`, 15 users a
request. An export without it is read as before (sign-ins from the users' elements); one with it takes them
from it alone; nothing fails open (PIM-ACT-018)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

import exports
import tenant as t
from pimtrail.check import run_check
from pimtrail.collect import _ingest, read_against
from pimtrail.collectors import normalize
from pimtrail.collectors.datasets import USERS_PER_REQUEST, get, users_per_request
from pimtrail.collectors.exportdir import read_export
from pimtrail.collectors.graph import GraphSettings, HttpSettings, StaticTokenCredential, collect_graph
from pimtrail.config import parse_config
from pimtrail.controls.model import Status
from pimtrail.emulator import BATCH, Emulator
from pimtrail.emulator.faults import DENIED, Behaviour, Fault
from pimtrail.emulator.server import SIGN_IN_PAGE_CAP
from pimtrail.store import HistoryStore, openfacts
from pimtrail.synthetic import Generator
from pimtrail.synthetic.presets import PRESETS
from pimtrail.timeutil import iso, parse_iso
from test_daily_ingest import _tables
from test_open_facts import _days, _read_in_full, _spy

NOW = "2026-09-30T06:00:00Z"


def _check(tmp_path: Path, changes: list) -> tuple[dict, HistoryStore, list]:
    """One weekly snapshot per change (None: the baseline as is), checked at the last; the store stays open."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = HistoryStore.open(str(tmp_path / "history.db"), create=True)
    snaps = []
    for week, change in zip(range(len(changes) - 1, -1, -1), changes):
        data = t.compliant(iso(parse_iso(NOW) - timedelta(weeks=week)))
        if change:
            change(data)
        snaps.append(read_export(exports.write(tmp_path / f"export-{week}", data)))
        store.ingest(snaps[-1])
    report = run_check(store, parse_config(data["_config"]), save=False)
    return {r.control.id: r for r in report.results}, store, snaps


def _act018(tmp_path: Path, *changes) -> object:
    results, store, _ = _check(tmp_path, list(changes) or [None])
    store.close()
    return results["PIM-ACT-018"]


def _drop_bob(data):
    for page in data["sign_in_activity"]["pages"]:
        page["body"]["value"] = [v for v in page["body"]["value"] if v["id"] != t.BOB]


# -- PIM-ACT-018 ------------------------------------------------------------------------------------
def test_a_holder_without_a_record_is_a_finding_that_says_so_never_a_pass(tmp_path):
    """Bob (tier-1 eligible) has no element in a complete dataset: not asked or not answered. The finding says
    no record was collected, not that he never signed in; even created yesterday (which excuses a user who
    never signed in) it is not a pass."""
    result = _act018(tmp_path / "a", _drop_bob)
    assert result.status is Status.WARN
    (finding,) = [f for f in result.findings if f.status is Status.WARN]
    assert "no sign-in record collected" in finding.message and "never" not in finding.message
    assert finding.subject.principal_id == t.BOB and finding.evidence["sign_in_record"] == "none collected"

    def new_bob(data):
        _drop_bob(data)
        next(u for u in data["users"]["value"] if u["id"] == t.BOB)["createdDateTime"] = \
            iso(parse_iso(NOW) - timedelta(days=1))

    result = _act018(tmp_path / "b", new_bob)
    assert result.status is Status.WARN
    assert any("no sign-in record collected" in f.message for f in result.findings)


def test_null_sign_in_activity_is_never_signed_in(tmp_path):
    """Graph answers `signInActivity: null` for a user who never signed in: that is "never" (after the grace
    of a new account, as before)."""
    def never(data):
        next(v for p in data["sign_in_activity"]["pages"] for v in p["body"]["value"]
             if v["id"] == t.BOB)["signInActivity"] = None

    result = _act018(tmp_path, never)
    assert result.status is Status.WARN
    assert any("last signed in never" in f.message and f.subject.principal_id == t.BOB for f in result.findings)


def test_an_export_without_the_dataset_is_read_from_the_users_as_before(tmp_path):
    """Written before the dataset existed (signInActivity on every user): complete, not partial; sign-ins of
    every user come from the users' elements; PIM-ACT-018 passes on the baseline and warns when Bob is stale."""
    results, store, snaps = _check(tmp_path / "a", [t.signed_in_on_users])
    with store:
        assert snaps[-1].status == "complete" and "sign_in_activity" not in snaps[-1].unobserved
        assert len(store.facts(store.tenant(None), "sign_in_activity", 1)) == len(t.USERS)
    assert results["PIM-ACT-018"].status is Status.PASS

    def stale(data):
        t.signed_in_on_users(data)
        next(u for u in data["users"]["value"] if u["id"] == t.BOB)["signInActivity"] = \
            {"lastSignInDateTime": "2026-03-01T00:00:00Z"}

    assert _act018(tmp_path / "b", stale).status is Status.WARN


def test_a_failed_dataset_leaves_sign_ins_unknown_and_the_control_not_assessable(tmp_path):
    """The dataset is named with an error: the snapshot is partial, PIM-ACT-018 not assessable (the users were
    read, but they do not say), and the sign-ins of the week before are kept as last seen, not closed."""
    def failed(data):
        data.pop("sign_in_activity")
        data["_manifest"]["datasets"]["sign_in_activity"] = {"error": {
            "http_status": 403, "code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "message": "P1"}}

    results, store, snaps = _check(tmp_path, [None, failed])
    with store:
        tenant = store.tenant(None)
        assert snaps[-1].status == "partial" and "sign_in_activity" in snaps[-1].unobserved
        assert store.facts(tenant, "sign_in_activity", 2) == store.facts(tenant, "sign_in_activity", 1) != []
    result = results["PIM-ACT-018"]
    assert result.status is Status.NOT_ASSESSABLE and "sign_in_activity" in result.reason


def test_sign_ins_come_from_the_dataset_alone_when_the_export_names_it(tmp_path):
    """A tool selecting signInActivity on the users and writing the dataset too: one fact per element of the
    dataset (null included), none from the users."""
    data = t.compliant(NOW)
    t.signed_in_on_users(data)
    data["sign_in_activity"] = t.sign_in_activity((t.ALICE, t.BOB), parse_iso(NOW))
    data["sign_in_activity"]["pages"][0]["body"]["value"][1]["signInActivity"] = None
    snap = read_export(exports.write(tmp_path, data))
    sign_ins = {f.key: f.data for f in snap.facts if f.kind == "sign_in_activity"}
    assert set(sign_ins) == {t.ALICE, t.BOB}
    assert sign_ins[t.BOB] == {"user_id": t.BOB, "last_sign_in": None, "last_non_interactive_sign_in": None,
                               "last_successful_sign_in": None}
    assert normalize.sign_in_source({"users", "sign_in_activity"}, []) == "sign_in_activity"


# -- the store: open facts read around the unparsed elements, either layout -----------------------
def _moved_to_dataset(roots: list[Path]) -> list[Path]:
    """The same days with signInActivity taken off the users into the dataset (15 users a request)."""
    out = []
    for root in roots:
        new = root.parent / f"{root.name}-dataset"
        new.mkdir()
        manifest = json.loads((root / "manifest.json").read_text())
        for name, entry in manifest["datasets"].items():
            if name != "users":
                (new / entry["file"]).write_text((root / entry["file"]).read_text())
        pages = json.loads((root / "users.json").read_text())
        asked = []
        for page in pages:
            for user in page["value"]:
                asked.append({"id": user["id"], "signInActivity": user.pop("signInActivity")})
        (new / "users.json").write_text(json.dumps(pages))
        dataset = get("sign_in_activity")
        parts = users_per_request(asked)
        (new / "sign_in_activity.json").write_text(json.dumps({"pages": [
            {"request": dataset.request(",".join(u["id"] for u in part)), "body": {"value": part}}
            for part in parts]}))
        manifest["datasets"]["sign_in_activity"] = {"file": "sign_in_activity.json"}
        (new / "manifest.json").write_text(json.dumps(manifest))
        out.append(new)
    return out


@pytest.mark.parametrize("layout", ["users", "dataset", "users then dataset"])
def test_a_daily_read_keeps_the_sign_ins_of_the_elements_it_did_not_parse(tmp_path, monkeypatch, layout):
    """Four days (tests/test_open_facts.py), sign-ins on the users' elements, in their own dataset, or on the
    users for two days and in the dataset after: read against the history, every table ends as after full
    reads, and the sign-in facts of the elements read unparsed are counted, not read, on day 1 - from the
    users' elements, or from the dataset's (`openfacts.read` takes the sign-ins' source the snapshot has; day 2 of
    "users then dataset" is refused and read in full, tests/test_sign_in_source.py)."""
    days = _days(tmp_path)
    if layout == "dataset":
        days = _moved_to_dataset(days)
    elif layout == "users then dataset":
        days = days[:2] + _moved_to_dataset(days)[2:]
    full = _read_in_full(tmp_path, days)
    seen = _spy(monkeypatch)
    against = str(tmp_path / "against.db")
    with HistoryStore.open(against, create=True) as store:
        for root in days:
            _ingest(store, read_against(store, root))  # as `pimtrail collect`: a changed source is read in full
        assert store.verify().ok
        tenant = store.tenant(None)
        assert len(store.facts(tenant, "sign_in_activity", 4)) == 42
    assert _tables(full) == _tables(against)
    sign_ins = [(read, unparsed) for kind, read, unparsed in seen if kind == "sign_in_activity"]
    assert sign_ins[0] == (0, 42)  # day 1: nothing changed, all 42 counted unread


def test_sign_ins_of_the_users_are_not_taken_for_the_datasets_when_the_store_reads_around_them(tmp_path):
    """`kind_sources`: a snapshot's sign-in facts have one source, so the sources of a kind read around the
    unparsed elements are those of the layout the snapshot has."""
    assert normalize.kind_sources("sign_in_activity")["sign_in_activity"] == ("sign_in_activity",)
    assert normalize.kind_sources(None)["sign_in_activity"] == ("sign_in_activity",)  # not collected: unobserved
    assert normalize.kind_sources("users")["sign_in_activity"] == ("users",)
    assert normalize.kind_sources("users")["principal"] == normalize.KIND_SOURCES["principal"]
    assert "sign_in_activity" in normalize.SKIPPABLE


# -- the collector and the emulator -----------------------------------------------------------------
def test_sign_ins_are_asked_for_the_privileged_users_and_the_break_glass_accounts_15_a_request(tmp_path):
    """Against the synthetic tenant: one `id in (...)` request per 15 users, twenty to a `$batch`, for the users
    whose FIDO2 keys are read plus the break-glass accounts (given by UPN, found in the users list, or by id),
    among them two users who hold no role (the tenant's own break-glass accounts are privileged: without these
    a collector that ignored the configured accounts would pass); the live collection holds the same facts as
    the export read offline; the users are listed without signInActivity."""
    gen = Generator("small", seed=5)
    root = gen.write(tmp_path / "export")
    privileged = set(gen.tenant.privileged_user_slots()) | set(gen.tenant.break_glass)
    plain = [i for i in range(gen.tenant.p.users) if i not in privileged][:2]
    glass = tuple(gen.tenant.user_name(i)[1] for i in (*gen.tenant.break_glass, plain[0]))
    extra = {gen.tenant.user_id(i) for i in plain}
    with Emulator(root, page_size=200) as graph:
        settings = GraphSettings(http=HttpSettings(base_url=graph.base_url, timeout=10, time_scale=0.001),
                                 break_glass=(*(u.upper() for u in glass),  # letter case ignored
                                              gen.tenant.user_id(plain[1]).upper()))
        run = collect_graph(StaticTokenCredential("t"), settings, export=tmp_path / "live")
        asked = graph.requests("sign_in_activity")
        keys = graph.requests("fido2_methods")
        listed = graph.requests("users")
        batches = graph.requests(BATCH)
    ids = [p for r in asked for p in r.parent.split(",")]
    assert len(ids) == len(set(ids)) and all(len(r.parent.split(",")) <= USERS_PER_REQUEST for r in asked)
    assert len(asked) == -(-len(ids) // USERS_PER_REQUEST)
    assert not extra & {r.parent for r in keys}
    assert set(ids) == {r.parent for r in keys} | {gen.tenant.user_id(i) for i in gen.tenant.break_glass} | extra
    assert all(r.batch is not None for r in asked)
    assert max(Counter(r.in_batch for r in asked).values()) == min(20, len(asked))
    assert {r.in_batch for r in asked} <= set(range(len(batches)))
    assert all("signInActivity" not in r.query for r in listed)
    offline = read_export(root)
    assert {(f.kind, f.key, json.dumps(f.data, sort_keys=True)) for f in run.snapshot.facts} == \
        {(f.kind, f.key, json.dumps(f.data, sort_keys=True)) for f in offline.facts}
    written = json.loads((tmp_path / "live" / "sign_in_activity.json").read_text())
    assert {p["parent"] for p in written["pages"]} == {""}  # the request names the users
    assert run.snapshot.status == "complete"


def test_the_emulator_answers_id_in_like_graph(tmp_path):
    """At most 15 ids (more: Graph's 400), the users that exist (an unknown id is not answered), and a page of
    at most 500 users when signInActivity is selected (SIGN_IN_PAGE_CAP)."""
    gen = Generator(dataclasses.replace(PRESETS["small"], users=620), seed=5)  # more users than the cap
    root = gen.write(tmp_path / "export")
    ids = sorted(gen.tenant.user_id(i) for i in gen.tenant.privileged_user_slots())[:16]
    dataset = get("sign_in_activity")
    headers = {"Authorization": "Bearer t"}
    with Emulator(root, page_size=999) as graph:
        ok = graph.answer("GET", dataset.request(",".join(ids[:14] + ["00000000-0000-4000-8000-000000000000"])),
                          headers)
        too_many = graph.answer("GET", dataset.request(",".join(ids)), headers)
        listed = graph.answer("GET", "/v1.0/users?$select=id,signInActivity", headers)
        plain = graph.answer("GET", get("users").request(), headers)
    assert ok.status == 200 and [v["id"] for v in ok.body["value"]] == ids[:14]
    assert too_many.status == 400 and "Max allowed: 15" in too_many.body["error"]["message"]
    assert len(listed.body["value"]) == SIGN_IN_PAGE_CAP == 500 < len(plain.body["value"])  # PR #9591, July 2025
    assert len(plain.body["value"]) == min(999, gen.preset.users)


def test_an_export_without_the_dataset_through_the_emulator_is_not_asked_twice(tmp_path):
    """The emulator serves an export without the dataset as Graph would a tenant that has not got it: a live
    collection records the dataset's error, the snapshot is partial and PIM-ACT-018's data is named missing."""
    data = t.compliant(NOW)
    t.signed_in_on_users(data)
    root = exports.write(tmp_path / "export", data)
    with Emulator(root) as graph:
        run = collect_graph(StaticTokenCredential("t"), GraphSettings(http=HttpSettings(
            base_url=graph.base_url, timeout=10, time_scale=0.001)))
    coverage = {c.dataset: c for c in run.snapshot.coverage}
    assert coverage["sign_in_activity"].status == "error" and run.snapshot.status == "partial"
    assert "sign_in_activity" in run.snapshot.unobserved
    assert not [f for f in run.snapshot.facts if f.kind == "sign_in_activity"]


@pytest.mark.parametrize("given", ["upn", "id"])
def test_break_glass_accounts_that_cannot_be_looked_up_leave_the_dataset_incomplete(tmp_path, given):
    """`users` refused: a break-glass account given by UPN cannot be found, so `sign_in_activity` is not
    complete (an error: the snapshot partial, sign-ins unknown), never complete without it; one given by id is
    asked as given, and the dataset is complete."""
    gen = Generator("small", seed=5)
    root = gen.write(tmp_path / "export")
    slot = next(i for i in range(gen.tenant.p.users)
                if i not in set(gen.tenant.privileged_user_slots()) | set(gen.tenant.break_glass))
    account = gen.tenant.user_name(slot)[1] if given == "upn" else f" {gen.tenant.user_id(slot).upper()} "
    refused = {"users": Behaviour(faults=[Fault(403, *DENIED, times=None)])}
    with Emulator(root, page_size=200, behaviours=refused) as graph:
        settings = GraphSettings(http=HttpSettings(base_url=graph.base_url, timeout=10, time_scale=0.001),
                                 break_glass=(account,))
        run = collect_graph(StaticTokenCredential("t"), settings)
        asked = {p for r in graph.requests("sign_in_activity") for p in r.parent.split(",")}
    coverage = {c.dataset: c for c in run.snapshot.coverage}["sign_in_activity"]
    assert run.snapshot.status == "partial"  # users failed either way
    if given == "upn":
        assert coverage.status == "error" and "sign_in_activity" in run.snapshot.unobserved
        assert account in (coverage.error_message or "") and not asked
    else:
        assert coverage.status == "ok" and gen.tenant.user_id(slot).lower() in asked


def test_ids_in_the_request_are_odata_string_literals():
    """A quote in an id is doubled (OData), so a configured id cannot change the filter."""
    request = get("sign_in_activity").request("a'b,c")
    assert "id in ('a''b','c')" in request


def test_break_glass_accounts_are_matched_one_way_everywhere(tmp_path):
    """pimtrail.toml's accounts with blanks around them and in other letter case name the same accounts for the
    controls (`SnapshotView.break_glass_ids`) as for the collector (`BreakGlass.split`): one reading of them."""
    def padded(data):
        data["_config"]["break_glass"]["accounts"] = [f"  {a.upper()} " for a in data["_config"]["break_glass"]["accounts"]]

    plain, store, _ = _check(tmp_path / "plain", [None])
    store.close()
    spaced, store, _ = _check(tmp_path / "spaced", [padded])
    store.close()
    assert {k: r.status for k, r in spaced.items()} == {k: r.status for k, r in plain.items()}
    assert spaced["PIM-GA-001"].status is Status.PASS
    ids, upns = parse_config({"break_glass": {"accounts": [" A@B.example ", "ID-1 ", " "]}}).break_glass.split()
    assert (ids, upns) == ({"id-1"}, {"a@b.example"})
