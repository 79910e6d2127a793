"""The trend's figures of the range's last snapshot (review cycles, top standing holders, holdings added and
removed since the snapshot before) equal those of full views of the last two snapshots, as the series computed
them before the sweep gave the holders and SQL counted the review decisions (tests/series_reference.py)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

import series_reference as reference
from pimtrail.controls.profiles import load_profile
from pimtrail.controls.view import build_view
from pimtrail.evidence.series import DECISION_FIELDS, build_series, decision_counts
from pimtrail.store import HistoryStore


def ranges(snaps):
    """(start, end) of build_series: the whole history, from long before it, ending early, one snapshot."""
    return [(None, None), (snaps[0].collected_at - timedelta(days=400), None),
            (None, snaps[-2].collected_at), (snaps[-1].collected_at, None)]


@pytest.mark.parametrize("which", ["sample", "synthetic"])
def test_last_snapshot_figures_equal_full_views(which, sample_history, sample_config, synthetic_small):
    db, config = (sample_history, sample_config) if which == "sample" else synthetic_small
    profile = load_profile(None, config)
    with HistoryStore.open(db) as store:
        tenant = store.tenant(None)
        snaps = store.snapshots(tenant)
        seen = Counter()
        for start, end in ranges(snaps):
            inside = [s for s in snaps if (start is None or s.collected_at >= start)
                      and (end is None or s.collected_at <= end)]
            first, last = start or inside[0].collected_at, end or inside[-1].collected_at
            final = build_view(store, tenant, inside[-1], profile, config, first, last + timedelta(seconds=1))
            before = build_view(store, tenant, inside[-2], profile, config) if len(inside) > 1 else None
            expected = (reference.review_cycles(final), reference.top_standing(final),
                        reference.holding_changes(before, final))
            for closing in (None, final):  # review facts read here, or lent by the pack's closing view
                series = build_series(store, tenant, profile, config, start, end, closing=closing)
                assert (series.reviews, series.top_standing, series.changes) == expected, (start, end)
            seen.update(reviews=len(expected[0]), top=len(expected[1]), added=len(expected[2]["added"]),
                        removed=len(expected[2]["removed"]))
        assert min(seen.values()) > 0, seen  # every figure has something to compare


def test_review_decisions_counted_in_sql_on_both_backends(db_url):
    """`HistoryStore.fact_counts` (json_extract on SQLite, ->> on PostgreSQL) counts what `decision_counts`
    counts in the decoded facts: a snapshot of the sample with decisions applied and not, denied and not
    reviewed, and one whose decision and apply result are null or missing."""
    from pimtrail import collect
    from pimtrail.model import FactRecord

    snap = next(s for n, s in enumerate(collect.sample_snapshots()) if n == 10)
    decision = next(f for f in snap.facts if f.kind == "access_review_decision")
    odd = {k: v for k, v in decision.data.items() if k != "apply_result"} | {"id": "odd", "decision": None}
    snap.facts.append(FactRecord("access_review_decision", f"{odd['instance_id']}|odd", odd,
                                 principal_id=decision.principal_id))
    with HistoryStore.open(db_url, create=True) as store:
        info = store.ingest(snap)
        facts = store.facts(info.tenant_id, "access_review_decision", info.seq)
        counted = store.fact_counts(info.tenant_id, "access_review_decision", info.seq, DECISION_FIELDS)
    expected = decision_counts(facts)
    assert Counter({k[:-1]: k[-1] for k in counted}) == Counter({k[:-1]: k[-1] for k in expected})
    assert len(counted) == len(expected) >= 5 and sum(k[-1] for k in counted) == len(facts) == 60
    assert any(k[1] is None and k[2] is None for k in counted)
