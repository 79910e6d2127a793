"""A daily export read against the history (elements its newest snapshot held are not parsed again)
stores exactly what a full read stores (collectors/unparsed.py, docs/architecture.md)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from pimtrail.collect import _ingest, read_against
from pimtrail.collectors.exportdir import read_export
from pimtrail.collectors.rawjson import BODY_SPEC, load_with_raw
from pimtrail.collectors.unparsed import Skipper
from pimtrail.model import SKIPPED
from pimtrail.store import HistoryStore
from pimtrail.store.receipts import Unrecognised, digest, strip
from pimtrail.store.schema import snapshot_table
from pimtrail.synthetic import generate
from test_daily_ingest import _tables


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("exports"), "small", days=4, churn=0.05, seed=3)


def test_a_history_read_against_itself_stores_what_full_reads_store(roots, tmp_path):
    """Four days at 5 % churn, read in full and read against the history: every table holds the same
    rows, row ids included, and most users, registration rows and review decisions were not parsed."""
    full, against = str(tmp_path / "full.db"), str(tmp_path / "against.db")
    with HistoryStore.open(full, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
    skipped, users, decisions = [], 0, []
    with HistoryStore.open(against, create=True) as store:
        for root in roots:
            snap = read_against(store, root)
            skipped.append(sum(len(p.skipped) for p in snap.pages))
            decisions.append(sum(len(p.skipped) for p in snap.pages if p.dataset == "access_review_decisions"))
            users = sum(len(p.items or ()) for p in snap.pages if p.dataset == "users")
            store.ingest(snap)
        assert store.verify().ok
    assert skipped[0] == 0 and min(skipped[1:]) > users  # users and registration rows, most of both
    assert decisions[0] == 0 and min(decisions[1:]) > 0  # some instances' pages hold no decisions: the rest count
    assert _tables(full) == _tables(against)


def test_a_snapshot_read_against_one_that_is_no_longer_the_newest_is_read_again(roots, tmp_path):
    """Another collector wrote a snapshot meanwhile: the store refuses what was read against the older
    one before writing anything, and `pimtrail collect` reads the export again in full."""
    path = str(tmp_path / "h.db")
    with HistoryStore.open(path, create=True) as store:
        for root in roots[:2]:
            store.ingest(read_export(root))
        late = read_against(store, roots[3])
        assert late.based_on is not None
        store.ingest(read_export(roots[2]))
        before = _tables(path)
        with pytest.raises(Unrecognised):
            store.ingest(late)
        assert _tables(path) == before
        _ingest(store, late)
        assert store.verify().ok
    reference = str(tmp_path / "ref.db")
    with HistoryStore.open(reference, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
    assert _tables(path) == _tables(reference)


def test_nothing_is_offered_for_a_snapshot_whose_facts_do_not_name_their_elements(roots, tmp_path):
    """Snapshots written before migration 0006 (`element_links` false) say nothing of which facts an
    element gave: the next export is read in full."""
    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        store.ingest(read_export(roots[0]))
        tenant = store.tenant(None)
        assert store.known(tenant) is not None
        with store.engine.begin() as conn:
            conn.execute(update(snapshot_table).values(element_links=False))
        assert store.known(tenant) is None
        assert not any(p.skipped for p in read_against(store, roots[1]).pages)


def _body(elements: list[str], sep: str = ",\n") -> str:
    return '{"@odata.context":"x","value":[\n' + sep.join(elements) + "\n]}"


def _read(text: str, skipper: Skipper) -> list:
    value, _ = load_with_raw(text, dict(BODY_SPEC, skip=skipper))
    return value["value"]


def _known(elements: list[str], key: str | None = None) -> Skipper:
    stored = [strip(e, (key,))[0] if key else e for e in elements]
    return Skipper([digest(s) for s in stored], [len(s) for s in stored], list(range(100, 100 + len(stored))),
                   (key,) if key else ())


def test_only_elements_the_previous_snapshot_held_as_they_are_go_unparsed():
    """Changed, inserted, removed and moved elements are parsed; the others are not, and the comparison
    finds its way again after each difference. What is parsed is what a full parse gives."""
    old = [json.dumps({"id": f"u{n}", "name": f"User {n}", "x": [n, {"y": "}"}]}) for n in range(8)]
    new = [old[0], json.dumps({"id": "u1", "name": "Renamed"}), old[2], json.dumps({"id": "new"}), old[3],
           old[5], old[7], old[6], "{\"id\": \"é\"}"]
    skipper = _known(old)
    value = _read(_body(new), skipper)
    skipped = [i for i, v in enumerate(value) if v is SKIPPED]
    assert skipped == [0, 2, 4, 5, 6]  # u6 came back after u7: found by its digest, but parsed
    for i, element in enumerate(new):
        assert value[i] is SKIPPED or value[i] == json.loads(element)
    assert skipper.kept == [100, 102, 103, 105, 107]


@pytest.mark.parametrize("sep", [",", ",\n", " , "])
def test_a_volatile_value_that_changed_does_not_stop_an_element_going_unparsed(sep):
    """The registration report's refresh time changes every day: the elements are known by their text
    without it. A value that is not a plain string is left to the parser."""
    key = "lastUpdatedDateTime"
    old = [json.dumps({"id": f"r{n}", key: "2026-07-01T00:00:00Z", "m": ["fido2"]}, separators=(",", ":"))
           for n in range(4)]
    new = [old[0].replace("07-01", "07-02"), old[1].replace('"2026-07-01T00:00:00Z"', '"a\\"b"'),
           old[2].replace('"2026-07-01T00:00:00Z"', "null"), old[3].replace("07-01T00:00:00Z", "07-02T01:02:03.1234567Z")]
    value = _read(_body(new, sep), _known(old, key))
    assert [v is SKIPPED for v in value] == [True, False, False, True]
    assert value[1] == json.loads(new[1]) and value[2] == json.loads(new[2])


def test_the_same_text_twice_is_never_taken_for_one_of_them():
    old = ['{"id":"a"}', '{"id":"b"}', '{"id":"a"}']
    value = _read(_body(old), _known(old))
    assert [v is SKIPPED for v in value] == [False, True, False]


def test_read_against_the_history_on_each_backend(roots, db_url, tmp_path):
    """The same snapshots, the same hashes, whether the history is SQLite or PostgreSQL (`element_n` is
    read back as text in one joined string on both)."""
    reference = str(tmp_path / "ref.db")
    with HistoryStore.open(reference, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
        expected = [(s.seq, s.fact_count, s.event_count, s.content_hash) for s in store.snapshots()]
    with HistoryStore.open(db_url, create=True) as store:
        skipped = 0
        for root in roots:
            snap = read_against(store, root)
            skipped += sum(len(p.skipped) for p in snap.pages)
            store.ingest(snap)
        assert skipped > 0 and store.verify().ok
        assert [(s.seq, s.fact_count, s.event_count, s.content_hash) for s in store.snapshots()] == expected


def test_a_fact_two_elements_give_stays_while_either_of_them_does(tmp_path):
    """The same user twice in the users pages (one with a field nothing reads): one fact, named by one
    of the two elements. A read that did not parse the other one is refused (it names no fact) and the
    export is read in full; when either element goes, the fact stays open, as a full read has it."""
    import exports

    def day(n: int, users: list[list[dict]]) -> object:
        data = exports.baseline(f"2026-07-0{n + 1}T06:00:00Z")
        data["users"] = [{"value": page} for page in users]
        return exports.write(tmp_path / f"day{n}", data)

    alice, bob = exports._user(exports.ALICE, "Alice"), exports._user(exports.BOB, "Bob")
    twice = dict(alice, employeeId="E1")
    days = [day(0, [[alice], [bob, twice]]), day(1, [[alice], [bob, twice]]), day(2, [[alice], [bob]]),
            day(3, [[], [bob, twice]]), day(4, [[], [bob, twice]])]
    tables = []
    for name, against in (("full.db", False), ("against.db", True)):
        with HistoryStore.open(str(tmp_path / name), create=True) as store:
            for root in days:
                if against:
                    snap = read_against(store, root)
                    if root == days[1]:
                        with pytest.raises(Unrecognised, match="names no open fact"):
                            store.ingest(snap)
                    _ingest(store, snap)  # what `pimtrail collect` does: read again in full if refused
                else:
                    store.ingest(read_export(root))
            tenant = store.tenant(None)
            assert [p["id"] for p in store.facts(tenant, "principal", 5) if p["id"] == exports.ALICE] == [exports.ALICE]
        tables.append(_tables(str(tmp_path / name)))
    assert tables[0] == tables[1]


def test_the_same_bytes_in_two_datasets_keep_only_their_own_datasets_facts(tmp_path):
    """Elements are numbered by their text, so a user and a registration row that read byte for byte the same are
    one number. When the registration row goes while the user stays (read unparsed), the registration fact is
    closed, as a full read closes it: an element read unparsed keeps only facts of the kinds its dataset gives."""
    import exports

    same = {"id": "cccccccc-0000-4000-8000-000000000003", "userPrincipalName": "c@contoso.example"}

    def day(n: int, registered: bool) -> object:
        data = exports.baseline(f"2026-07-0{n + 1}T06:00:00Z")
        data["users"][1]["value"].append(same)
        rows = [{"id": uid, "userPrincipalName": uid[:4] + "@contoso.example", "methodsRegistered": ["fido2"]}
                for uid in (exports.ALICE, exports.BOB)]
        data["registration_details"] = [{"value": rows + ([same] if registered else [])}]
        return exports.write(tmp_path / f"day{n}", data)

    days = [day(0, True), day(1, True), day(2, False), day(3, False)]
    tables, skipped = [], []
    for name, against in (("full.db", False), ("against.db", True)):
        with HistoryStore.open(str(tmp_path / name), create=True) as store:
            for root in days:
                snap = read_against(store, root) if against else read_export(root)
                skipped += [len(p.skipped) for p in snap.pages if p.dataset == "users" and p.skipped] if against else []
                _ingest(store, snap)
            tenant = store.tenant(None)
            registered = [f["_key"] for f in store.facts(tenant, "auth_registration", 4)]
            assert same["id"] not in registered and store.verify().ok
        tables.append(_tables(str(tmp_path / name)))
    assert sum(skipped) > 0  # the user was read unparsed
    assert tables[0] == tables[1]


def test_pages_read_unparsed_are_cut_as_pages_read_in_full(roots, tmp_path):
    """The digests and refresh times the reader found for the elements it recognised are the ones cutting
    the page would find (`_Cut` takes them instead of hashing those elements again)."""
    from pimtrail.store.receipts import _Cut

    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        for root in roots[:2]:
            store.ingest(read_export(root))
        against = read_against(store, roots[2])
    full = read_export(roots[2])
    assert sum(len(p.skipped) for p in against.pages if p.volatile) > 0  # registration rows among them
    for a, f in zip(against.pages, full.pages, strict=True):
        assert (a.dataset, a.index, a.text, a.items) == (f.dataset, f.index, f.text, f.items)
        cut_a, cut_f = _Cut(a), _Cut(f)
        assert (cut_a.sha, cut_a.digests, cut_a.volatile, cut_a.gaps) == (cut_f.sha, cut_f.digests, cut_f.volatile,
                                                                           cut_f.gaps)


def test_a_review_decision_read_unparsed_under_another_instance_is_read_again(tmp_path):
    """Review decisions are requested per review instance, and a decision's key and data take its instance
    from the page's parent. The same decision text under another instance than the day before is where the
    reader expects the next known element: the store refuses that read (the previous snapshot did not hold it
    under that parent) and the export is read in full, storing what a full read stores."""
    import exports

    def decision(did: str, uid: str) -> dict:
        return {"id": did, "decision": "Approve", "recommendation": "Approve", "applyResult": "New",
                "principal": {"id": uid, "userPrincipalName": f"{uid[:4]}@contoso.example"},
                "reviewedBy": {"id": exports.ALICE}, "reviewedDateTime": "2026-06-30T10:00:00Z"}

    def day(n: int, first: list[dict], second: list[dict]) -> object:
        data = exports.baseline(f"2026-07-0{n + 1}T06:00:00Z")
        data["access_review_decisions"] = {"pages": [
            {"parent": f"def-1/{iid}", "request": f"/v1.0/identityGovernance/accessReviews/definitions/def-1/"
                                                  f"instances/{iid}/decisions", "body": {"value": value}}
            for iid, value in (("inst-1", first), ("inst-2", second))]}
        return exports.write(tmp_path / f"day{n}", data)

    one, two, three = (decision(f"dec-{n}", uid) for n, uid in ((1, exports.ALICE), (2, exports.BOB), (3, exports.BOB)))
    days = [day(0, [one], [two]), day(1, [one], [two]), day(2, [three], [one, two]), day(3, [three], [one, two])]
    tables, skipped = [], []
    for name, against in (("full.db", False), ("against.db", True)):
        with HistoryStore.open(str(tmp_path / name), create=True) as store:
            for root in days:
                if against:
                    snap = read_against(store, root)
                    skipped.append(sum(len(p.skipped) for p in snap.pages if p.dataset == "access_review_decisions"))
                    if root == days[2]:
                        with pytest.raises(Unrecognised, match="access_review_decisions"):
                            store.ingest(snap)
                    _ingest(store, snap)
                else:
                    store.ingest(read_export(root))
            tenant = store.tenant(None)
            assert sorted(f["_key"] for f in store.facts(tenant, "access_review_decision", 4)) == [
                "inst-1|dec-3", "inst-2|dec-1", "inst-2|dec-2"]
        tables.append(_tables(str(tmp_path / name)))
    assert skipped == [0, 2, 2, 3]  # day 3 follows the full read of day 2: all three as they were
    assert tables[0] == tables[1]
