"""Live collection through the real msgraph-sdk, pointed at the local Graph emulator."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

import exports
from pimtrail.collectors.exportdir import read_export
from pimtrail.collectors.graph import (GraphSettings, HttpSettings, StaticTokenCredential, collect_graph)
from pimtrail.emulator import (BATCH, Emulator, Fault, gateway_timeout, licence_missing, permission_missing,
                               premium_missing, slow, throttled, unavailable)

TOKEN = "emulator-token-7c1d"
SCALE = 0.001  # a Retry-After of 2 s waits 2 ms: the waits are recorded, not felt


def collect(graph: Emulator, *, export: Path | None = None, batch_size: int = 20, timeout: float = 10.0,
            concurrency: int = 4, also: tuple[str, ...] = (), tenant: str | None = None):
    settings = GraphSettings(http=HttpSettings(base_url=graph.base_url, time_scale=SCALE, timeout=timeout,
                                               concurrency=concurrency), batch_size=batch_size, also=also)
    return collect_graph(StaticTokenCredential(TOKEN), settings, export=export, tenant=tenant)


def fill(data: dict) -> None:
    """Give the tiny export every dataset read by default (empty), so that it is complete."""
    from pimtrail.collectors.datasets import DATASETS, Parent

    for d in DATASETS:
        if d.name not in data and "ReadWrite" not in d.permission:
            data[d.name] = {"pages": []} if d.parent is not Parent.NONE else {"value": []}


@pytest.fixture
def tenant(export) -> Path:
    """The tiny export with every dataset present."""
    return export(change=fill)


def facts(snap) -> set[tuple[str, str, str]]:
    return {(f.kind, f.key, json.dumps(f.data, sort_keys=True)) for f in snap.facts}


def events(snap) -> set[tuple[str, str, str]]:
    return {(e.kind, e.source_id, json.dumps(e.data, sort_keys=True)) for e in snap.events}


def coverage(snap) -> dict[str, object]:
    return {c.dataset: c for c in snap.coverage}


def history(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select seq, collected_at, status, fact_count, event_count, state_digest "
                            "from snapshot order by seq").fetchall()


# -- the whole sample tenant --------------------------------------------------------------------
def test_live_collection_of_the_sample_quarter_equals_offline_collection(tmp_path):
    from pimtrail import collect as service
    from pimtrail.sample_data import build_exports
    from pimtrail.store import HistoryStore

    roots = build_exports(tmp_path / "sample")
    offline = service.read_exports(roots)
    live, reread = [], []
    for n, root in enumerate(roots):
        with Emulator(root, page_size=7) as graph:  # pages cut differently from the export's
            run = collect(graph, export=tmp_path / f"live-{n}")
        run.snapshot.collected_at = offline[n].collected_at  # the sample's clock, not today's
        live.append(run.snapshot)
        again = read_export(run.export_dir, source="graph")  # "export, then collect offline"
        again.collected_at = offline[n].collected_at
        reread.append(again)
        assert facts(run.snapshot) == facts(offline[n]), root.name
        assert events(run.snapshot) == events(offline[n]), root.name
        assert {k: c.rows for k, c in coverage(run.snapshot).items()} == \
            {k: c.rows for k, c in coverage(offline[n]).items()}, root.name
        assert run.snapshot.status == offline[n].status == "complete"

    dbs = {name: tmp_path / f"{name}.db" for name in ("offline", "live", "reread")}
    for name, snaps in (("offline", offline), ("live", live), ("reread", reread)):
        with HistoryStore.open(str(dbs[name]), create=True) as store:
            service.ingest_all(store, snaps)
    # Same facts and events, snapshot by snapshot: same state digests over the whole quarter.
    assert history(dbs["live"]) == history(dbs["offline"])
    assert len(history(dbs["live"])) == 14
    # And live == its own export read back offline, down to the snapshot content hash.
    with sqlite3.connect(dbs["live"]) as a, sqlite3.connect(dbs["reread"]) as b:
        query = "select seq, content_hash, chain_hash from snapshot order by seq"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
    print(f"\nsample quarter: 14 live snapshots == offline; last has {len(live[-1].facts)} facts, "
          f"{len(live[-1].events)} events, {sum(c.pages for c in live[-1].coverage)} pages")


def test_receipts_are_the_exact_bytes_graph_sent(tenant, tmp_path):
    with Emulator(tenant, page_size=1) as graph:
        run = collect(graph, export=tmp_path / "out")
        sent = {r.body_sha256 for r in graph.requests() if r.dataset != BATCH}
    received = {hashlib.sha256(p.payload).hexdigest() for p in run.snapshot.pages}
    assert received <= sent and len(received) == len(run.snapshot.pages)
    from test_export_format import check_export  # the export follows the documented schema

    assert check_export(run.export_dir) == sum(1 for c in run.snapshot.coverage if c.status == "ok")


# -- paging ------------------------------------------------------------------------------------
def test_every_next_link_is_followed_through_empty_pages_at_page_size_one(tenant, tmp_path):
    root = tenant
    with Emulator(root, page_size=1) as graph:
        graph.behaviour("users").empty_pages = (0, 2)  # empty, then data, empty, data
        graph.behaviour("directory_audits").empty_pages = (2, 3)  # two empty pages at the end
        graph.behaviour("role_definitions").empty_pages = (1,)
        run = collect(graph)
        log = {name: graph.requests(name) for name in ("users", "directory_audits", "role_definitions")}
    cov = coverage(run.snapshot)
    assert (cov["users"].pages, cov["users"].rows) == (4, 2)
    assert (cov["directory_audits"].pages, cov["directory_audits"].rows) == (4, 2)
    assert (cov["role_definitions"].pages, cov["role_definitions"].rows) == (3, 2)
    for name, requests in log.items():
        assert [r.page for r in requests] == list(range(cov[name].pages)), name
        assert all(r.status == 200 and r.authorized for r in requests)
    offline = read_export(root)
    assert facts(run.snapshot) == facts(offline) and events(run.snapshot) == events(offline)
    print(f"\npage size 1: users {cov['users'].pages} pages, audits {cov['directory_audits'].pages} pages")


def test_filters_graph_requires_are_sent_and_beta_goes_through_the_v1_client(tenant):
    with Emulator(tenant) as graph:
        run = collect(graph)
        log = graph.requests()
    assert not [r for r in log if r.status == 400]  # the emulator 400s a missing required $filter
    beta = [r for r in log if r.path.startswith("/beta/")]
    assert {r.dataset for r in beta} == {"privileged_role_definitions", "pim_groups", "role_management_alerts"}
    assert all(r.authorized for r in beta)
    assert {c.dataset for c in run.snapshot.coverage if c.status == "missing"} == {"role_assignment_requests"}


# -- per-parent datasets -------------------------------------------------------------------------
def test_fido2_keys_are_read_for_privileged_users_only_twenty_per_batch(tmp_path):
    from pimtrail.sample_data import build_exports

    root = build_exports(tmp_path / "sample")[-1]
    recorded = json.loads((root / "fido2_methods.json").read_text())
    expected = {page["parent"] for page in recorded["pages"]}
    with Emulator(root) as graph:
        run = collect(graph)
        sub = graph.requests("fido2_methods")
        batches = graph.requests(BATCH)
    users = sum(1 for f in run.snapshot.facts if f.kind == "principal" and f.data.get("type") == "user")
    assert {r.parent for r in sub} == expected and len(expected) < users
    assert all(r.batch is not None for r in sub)  # none sent one by one
    per_batch = sorted(Counter(r.in_batch for r in sub).values(), reverse=True)
    assert per_batch == [20] * (len(expected) // 20) + ([len(expected) % 20] if len(expected) % 20 else [])
    assert {r.in_batch for r in sub} <= {n for n, _ in enumerate(batches)}
    assert facts(run.snapshot) == facts(read_export(root))
    print(f"\nfido2: {len(expected)} privileged of {users} users, $batch sizes {per_batch} "
          f"({len(batches)} $batch requests for all per-parent datasets)")


def test_per_parent_requests_without_batch_and_a_vanished_parent(tenant):
    with Emulator(tenant) as graph:
        graph.inject("fido2_methods", Fault(404, parent=exports.BOB, times=None))
        run = collect(graph, batch_size=1)
        sub = graph.requests("fido2_methods")
    assert {(r.parent, r.status, r.batch) for r in sub} == {(exports.ALICE, 200, None), (exports.BOB, 404, None)}
    assert run.outcomes["fido2_methods"].skipped_parents == [exports.BOB]
    assert coverage(run.snapshot)["fido2_methods"].status == "ok"


# -- throttling and failures ---------------------------------------------------------------------
def test_throttled_and_unavailable_requests_are_retried_after_retry_after(tenant):
    root = tenant
    with Emulator(root, page_size=1) as graph:
        graph.inject("users", throttled(times=2, retry_after=2))
        graph.inject("role_definitions", unavailable(times=1, retry_after=1, page=1))  # mid-paging
        graph.inject("organization", gateway_timeout(times=1))  # no Retry-After: SDK back-off
        graph.inject("directory_audits", throttled(times=1, retry_after=5))
        graph.inject("fido2_methods", throttled(times=1, retry_after=3, parent=exports.ALICE))  # inside $batch
        run = collect(graph)
        users = graph.requests("users")
        defs = graph.requests("role_definitions")
        fido = graph.requests("fido2_methods")
    assert run.snapshot.status == "complete"
    assert facts(run.snapshot) == facts(read_export(root))
    # The emulator saw each retry, numbered by the SDK's Retry-Attempt header.
    assert [(r.status, r.retry_after, r.retry_attempt, r.page) for r in users] == \
        [(429, 2, 0, 0), (429, 2, 1, 0), (200, None, 2, 0), (200, None, 0, 1)]
    assert [(r.status, r.page, r.retry_attempt) for r in defs] == [(200, 0, 0), (503, 1, 0), (200, 1, 1)]
    assert [(r.parent, r.status) for r in fido if r.parent == exports.ALICE] == \
        [(exports.ALICE, 429), (exports.ALICE, 200)]
    # ... and the waits honoured Retry-After (scaled by SCALE for the test).
    waits = sorted((r.status, r.retry_after, round(r.wait / SCALE, 6)) for r in run.retries
                   if r.retry_after is not None)
    assert waits == [(429, "2", 2.0), (429, "2", 2.0), (429, "3", 3.0), (429, "5", 5.0), (503, "1", 1.0)]
    backoff = [r for r in run.retries if r.status == 504]
    assert len(backoff) == 1 and backoff[0].wait / SCALE >= 3.0  # Retry-After missing: SDK back-off
    print(f"\nthrottling: {len(run.retries)} retries, waits (s, unscaled): "
          f"{[round(r.wait / SCALE, 2) for r in run.retries]}")


def test_throttled_past_the_retries_fails_that_dataset_only(tenant):
    with Emulator(tenant) as graph:
        graph.inject("ca_policies", throttled(times=None, retry_after=1))
        run = collect(graph)
        tries = graph.requests("ca_policies")
    cov = coverage(run.snapshot)
    assert len(tries) == 4  # the first try and the SDK's three retries
    assert (cov["ca_policies"].status, cov["ca_policies"].http_status) == ("error", 429)
    assert "still throttled" in cov["ca_policies"].error_message
    assert run.snapshot.status == "partial" and cov["users"].status == "ok"


def test_a_slow_answer_times_out_and_only_that_dataset_fails(tenant):
    with Emulator(tenant) as graph:
        graph.inject("authentication_contexts", slow(3.0))
        run = collect(graph, timeout=0.3)
    cov = coverage(run.snapshot)
    assert (cov["authentication_contexts"].status, cov["authentication_contexts"].error_code) == ("error", "Timeout")
    assert "no answer" in cov["authentication_contexts"].error_message
    failed = {c.dataset for c in run.snapshot.coverage if c.status != "ok"}
    assert failed == {"authentication_contexts", "role_assignment_requests"}  # the latter: not by default


def test_missing_licence_and_permission_are_recorded_and_the_rest_kept(tenant):
    root = tenant
    with Emulator(root) as graph:
        graph.inject("role_eligibility_instances", licence_missing())
        graph.inject("registration_details", premium_missing())
        graph.inject("users", permission_missing())
        graph.inject("role_management_alerts", licence_missing())  # optional: stays complete-worthy
        run = collect(graph)
    cov = coverage(run.snapshot)
    assert (cov["role_eligibility_instances"].http_status, cov["role_eligibility_instances"].error_code) == \
        (400, "AadPremiumLicenseRequired")
    assert "Entra ID P2" in cov["role_eligibility_instances"].error_message
    assert (cov["registration_details"].http_status, cov["registration_details"].error_code) == \
        (403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    assert "Entra ID P1" in cov["registration_details"].error_message
    assert (cov["users"].http_status, cov["users"].error_code) == (403, "Authorization_RequestDenied")
    assert "User.Read.All" in cov["users"].error_message
    assert run.snapshot.status == "partial"
    assert {c.dataset for c in run.snapshot.gaps} == {"role_eligibility_instances", "registration_details", "users"}
    kinds = {f.kind for f in run.snapshot.facts}
    assert {"role_assignment", "role_definition", "fido2_key", "tenant"} <= kinds  # the rest is kept
    assert "role_eligibility" not in kinds
    # Without the users list, the holders' type comes from $expand=principal: keys still read.
    assert [p.parent for p in run.outcomes["fido2_methods"].pages] == [exports.ALICE, exports.BOB]


def test_a_refused_token_stops_the_run_and_nothing_is_returned(tenant):
    from pimtrail.collectors.graph import GraphRunError

    with Emulator(tenant) as graph:
        graph.inject("organization", Fault(401, times=None))
        with pytest.raises(GraphRunError, match="refused the token"):
            collect(graph)


def test_requests_in_flight_never_exceed_the_concurrency(tenant):
    with Emulator(tenant, page_size=1) as graph:
        for name in ("organization", "users", "role_definitions", "ca_policies", "subscribed_skus"):
            graph.behaviour(name).latency = 0.05  # slow enough for requests to pile up
        collect(graph, concurrency=2)
        assert 1 <= graph.max_in_flight <= 2
