"""In-process measures: `--help`, ingest (with the plain executemany baseline), controls, trend series."""

from __future__ import annotations

import json
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, db_size, median, timed

PER_USER = ("principal", "sign_in_activity", "auth_registration")  # one fact per user of the tenant
TENANT = "large"  # the preset measured, for the row labels (run.py sets it)
HEAVY = ("msgraph", "kiota_abstractions", "azure.identity", "sqlalchemy", "weasyprint", "openpyxl", "matplotlib")


# ----------------------------------------------------------------------------------- --help
def cli_help(runs: int) -> list[Row]:
    script = Path(sys.executable).parent / "pimtrail"
    command = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "pimtrail.cli", "--help"]
    walls = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
        walls.append(time.perf_counter() - began)
    probe = ("import sys\nsys.argv = ['pimtrail', '--help']\nfrom pimtrail.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             f"print(repr(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = eval(done.stderr.strip().splitlines()[-1])  # noqa: S307 - our own repr of a list of names
    return [Row("`pimtrail --help`", median(walls), "s", "<= 0.3 s, msgraph not imported",
                0.3 if "msgraph" not in loaded else -1, runs,
                f"heavy modules imported: {', '.join(loaded) or 'none'}", walls)]


# ----------------------------------------------------------------------------------- ingest
def ingest_once(export: Path, db: Path) -> tuple[float, float, Any, Any]:
    """What `pimtrail collect --source DIR` does: read the export against the history (the elements its
    newest snapshot held are not parsed again), then HistoryStore.ingest into `db`, both in one scope of freed
    memory kept for reuse, as the command has them (`bulk.kept_heap`); returns (read s, write s, snapshot, info).
    The read includes what is read of the history for it."""
    from pimtrail.bulk import kept_heap
    from pimtrail.collect import read_against
    from pimtrail.store import HistoryStore

    with kept_heap(), HistoryStore.open(str(db), create=True) as store:
        read, snap = timed(lambda: read_against(store, export))
        write, info = timed(lambda: store.ingest(snap))
    return read, write, snap, info


def ingest(export: Path, work: Path, runs: int, first: tuple[float, float] | None = None) -> tuple[list[Row], Any]:
    """Ingest the large export into a new SQLite file `runs` times (`first`: a run already made)."""
    reads, writes = ([first[0]], [first[1]]) if first else ([], [])
    snap = None
    while len(reads) < runs or snap is None:
        db = work / "ingest.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        snap = None  # free the previous one first
        read, write, snap, _ = ingest_once(export, db)
        if len(reads) < runs:
            reads.append(read)
            writes.append(write)
    totals = [r + w for r, w in zip(reads, writes)]
    snap.undefer()  # its audit log, read by the ingest's worker, read here too for the counts and the baseline
    rows = [
        Row(f"ingest one {TENANT} snapshot into SQLite (read export + write)", median(totals), "s", "<= 10 s", 10,
            len(totals), f"{len(snap.facts):,} facts, {len(snap.events):,} events, {len(snap.pages):,} raw pages "
            f"({sum(len(p.payload) for p in snap.pages) / 1e6:.0f} MB)", totals),
        Row("  of which reading the export (parse + normalise)", median(reads), "s", "", None, len(reads),
            "collectors/exportdir.read_export", reads),
        Row("  of which writing it (HistoryStore.ingest)", median(writes), "s", "", None, len(writes),
            "pimtrail/store/ingest.py, one transaction", writes),
    ]
    return rows, snap


def baseline(snap: Any, work: Path, pimtrail_write: float, runs: int) -> list[Row]:
    """The same rows through plain sqlite3.executemany into the same schema (pragmas as the store sets)."""
    from pimtrail.store import HistoryStore, hashing

    prep, rows = timed(lambda: _rows(snap, hashing))
    inserts = []
    for _ in range(runs):
        db = work / "baseline.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        HistoryStore.open(str(db), create=True).close()
        conn = sqlite3.connect(db, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        inserts.append(timed(lambda: _insert(conn, rows))[0])
        conn.close()
    insert = median(inserts)
    total = sum(len(v) for v in rows.values())
    return [
        Row("baseline: plain sqlite3.executemany of the same rows", insert, "s", "", None, runs,
            f"{total:,} rows (facts, events, element packs, listings), one transaction; preparing them "
            f"(canonical JSON, cutting pages into elements, sha256, zlib, zstd) took {prep:.1f} s more", inserts),
        Row("bulk path / executemany ratio", round(pimtrail_write / insert, 2) if insert else None, "x", "", None, 1,
            f"HistoryStore.ingest {pimtrail_write:.1f} s vs executemany {insert:.1f} s; vs executemany + the same "
            f"preparation: {pimtrail_write / (insert + prep):.2f} x"),
    ]


def _rows(snap: Any, hashing: Any) -> dict[str, list[tuple]]:
    tenant = snap.tenant_id
    facts = []
    for f in {(f.kind, f.key): f for f in snap.facts}.values():
        text, digest = hashing.encode(f.data)
        facts.append((tenant, f.kind, f.key, f.principal_id, f.role_id, f.group_id, digest, text, 1, None))
    from pimtrail.store.eventdata import Codec, train

    texts = {(e.kind, e.source_id): (e, hashing.encode(e.data)[0]) for e in snap.events}
    trained = train([text for _, text in texts.values()])
    codec = Codec({trained[0]: trained[1]} if trained else {})
    events = [(tenant, e.kind, e.source_id, str(e.occurred_at), e.principal_id, e.role_id, e.correlation_id,
               codec.compress(text), 1) for e, text in texts.values()]
    # raw pages as the store keeps them: elements in packs, one listing blob per dataset
    from pimtrail.store import receipts
    from pimtrail.store.blobs import whole

    cuts = receipts.cut_pages(snap.pages)
    known: dict[bytes, int] = {}
    packs = receipts.new_packs(tenant, cuts, known, 1).rows()
    _, named, listing_blobs = receipts.listings(cuts, known)
    blobs = [(tenant, sha, len(data), whole(data)) for sha, data in listing_blobs.items()]
    lists = [(tenant, 1, name, sha) for name, sha, _ in named]
    return {"fact": facts, "event": events, "item_pack": packs, "blob": blobs, "receipt_list": lists}


def _insert(conn: sqlite3.Connection, rows: dict[str, list[tuple]]) -> None:
    conn.execute("BEGIN")
    conn.execute("INSERT INTO snapshot (id, tenant_id, seq, collected_at, ingested_at, source, source_ref, "
                 "tool_version, status, fact_count, event_count, state_digest, content_hash, prev_hash, chain_hash) "
                 "VALUES (1, 't', 1, '2026-01-01', '2026-01-01', 's', 'r', 'v', 'complete', 0, 0, '', '', '', '')")
    conn.executemany("INSERT INTO fact (tenant_id, kind, key, principal_id, role_id, group_id, digest, data, "
                     "valid_from, valid_to) VALUES (?,?,?,?,?,?,?,?,?,?)", rows["fact"])
    conn.executemany("INSERT INTO event (tenant_id, kind, source_id, occurred_at, principal_id, role_id, "
                     "correlation_id, zdata, first_seen) VALUES (?,?,?,?,?,?,?,?,?)", rows["event"])
    conn.executemany("INSERT INTO item_pack (tenant_id, first_n, count, size, digests, data) VALUES (?,?,?,?,?,?)",
                     rows["item_pack"])
    conn.executemany("INSERT INTO blob (tenant_id, sha256, size, data) VALUES (?,?,?,?)", rows["blob"])
    conn.executemany("INSERT INTO receipt_list (tenant_id, snapshot_id, dataset, sha256) VALUES (?,?,?,?)",
                     rows["receipt_list"])
    conn.execute("COMMIT")


# ----------------------------------------------------------------------------------- controls
def check(store: Any, config: Any) -> dict[str, float]:
    """What `pimtrail check` does on the newest snapshot (pimtrail/check.py), timed by step."""
    from pimtrail.check import settings_hash
    from pimtrail.controls.engine import evaluate
    from pimtrail.controls.profiles import load_profile
    from pimtrail.controls.view import build_view, paused_gc

    tenant = store.tenant(None)
    snap = store.snapshot(tenant, None)
    profile = load_profile(None, config)
    view_s, view = timed(lambda: build_view(store, tenant, snap, profile, config))
    with paused_gc():  # as run_check evaluates
        eval_s, report = timed(lambda: evaluate(view))
    holders = len({h.principal_id for h in view.holdings()})
    users = sum(1 for p in view.facts.get("principal", []) if p.get("type") == "user")
    save_s, _ = timed(lambda: store.save_check_run(tenant, snap.id, profile.name, (view.period_start, view.period_end),
                                                   settings_hash(profile, config),
                                                   [r.as_dict() for r in report.results]))
    with store.engine.connect() as conn:  # every stored run: the newest in full, the older ones compacted
        stored, runs = conn.exec_driver_sql("SELECT coalesce(sum(length(data)), 0), count(DISTINCT run_id) "
                                            "FROM control_result").one()
    return {"view_s": view_s, "evaluate_s": eval_s, "save_s": save_s, "stored_bytes": stored, "runs": runs,
            "per_user_rows": sum(len(view.facts.get(k, [])) for k in PER_USER), "users_read": users,
            "holders": holders, "findings": sum(len(r.findings) for r in report.results), "counts": report.counts(),
            "activations": len(view.activations)}


def check_rows(samples: list[dict[str, float]]) -> list[Row]:
    totals = [s["view_s"] + s["evaluate_s"] for s in samples]
    last = samples[-1]
    growth = [b["stored_bytes"] - a["stored_bytes"] for a, b in zip(samples, samples[1:])]
    return [
        Row(f"evaluate every control on the {TENANT} snapshot", median(totals), "s", "<= 5 s", 5, len(totals),
            f"build_view {median([s['view_s'] for s in samples]):.1f} s + evaluate "
            f"{median([s['evaluate_s'] for s in samples]):.1f} s (one run per daily snapshot of the history); "
            f"{last['findings']:,} findings {last['counts']}, {last['activations']:,} activations. The view reads "
            f"the per-user facts ({', '.join(PER_USER)}) of the principals the snapshot and the period's "
            f"activations name: {last['per_user_rows']:,} rows ({last['holders']:,} principals hold roles)", totals),
        Row("  storing the results (`pimtrail check` saves them)", median([s["save_s"] for s in samples]), "s", "",
            None, len(samples), "HistoryStore.save_check_run, which compacts the previous run of the profile "
            f"(its findings dropped, their SHA-256 kept): {last['stored_bytes'] / 1e6:.1f} MB stored for "
            f"{last['runs']} runs" + (f", {median(growth) / 1e3:,.0f} kB more a day (median)" if growth else ""),
            [s["save_s"] for s in samples]),
    ]


# ----------------------------------------------------------------------------------- trend
def series(db: Path, config: Any, runs: int, events_per_day: int) -> list[Row]:
    """build_series over the whole history, then its parts timed apart for the 365-day extrapolation. Parts
    that grow with the fact versions of the history, scaled by them to a year: reading the holdings history
    (`trend_history`: every version of the holding kinds and of the principals they name; scaled by those
    versions) of which the scan for the break-glass accounts (every principal version; scaled by those), and
    indexing every version's start and end for the sweep (`Sweep(history)`). Parts per snapshot, times 364: the
    sweep's step to each further snapshot and that snapshot's point (`standing_points`). Once: the first
    snapshot's point, the figures of the last snapshot (`last_figures`: its review cycles, decisions counted in
    SQL, and its top standing holders and changes from the sweep), and the rest of build_series.

    The weekly activations are counted from the `activation` rows of the range (one per activation, kept at
    ingest): timed over the 90 days of audit log the first export brings and scaled per activation to a
    year (366 / 90); timed over 30 days too, to show how the time grows with the range."""
    from sqlalchemy import func, select

    from pimtrail.controls.profiles import load_profile
    from pimtrail.evidence.series import build_series, last_figures, range_weeks
    from pimtrail.evidence.standing import Sweep, standing_points, trend_history
    from pimtrail.store import HistoryStore
    from pimtrail.store.schema import activation_table as act

    profile = load_profile(None, config)
    glass = sorted(config.break_glass.wanted())
    walls, parts = [], []
    with HistoryStore.open(str(db)) as store:
        tenant = store.tenant(None)
        snaps = store.snapshots(tenant)
        last = snaps[-1].collected_at
        window = (last - timedelta(days=89), last + timedelta(seconds=1))
        short = (last - timedelta(days=29), window[1])
        with store.engine.connect() as conn:
            def activations(start, end) -> int:  # what range_weeks counts: activations requested (else started) then
                return conn.execute(select(func.count()).select_from(act).where(
                    act.c.tenant_id == tenant, act.c.asked >= start, act.c.asked < end)).scalar()

            n_act, n_short = activations(*window), activations(*short)
            range_act = activations(snaps[0].collected_at, window[1])  # what the measured build_series counted
        for _ in range(runs):
            walls.append(timed(lambda: build_series(store, tenant, profile, config))[0])
            load, history = timed(lambda: trend_history(store, tenant, snaps, profile, config))
            scan = timed(lambda: store.version_rows(tenant, "principal", snaps[-1].seq, contains=glass,
                                                    after_seq=snaps[0].seq, fields=history.fields_of("principal"))
                         )[0] if glass else 0.0
            index, sweep = timed(lambda: Sweep(history))
            first_point = timed(lambda: standing_points(history, snaps[:1], sweep))[0]
            step = timed(lambda: standing_points(history, snaps[1:], sweep))[0] / max(1, len(snaps) - 1)
            events = timed(lambda: range_weeks(store, tenant, config, *window))[0]
            events_short = timed(lambda: range_weeks(store, tenant, config, *short))[0]
            closing = timed(lambda: last_figures(store, tenant, sweep, snaps[-1], snaps[0].collected_at,
                                               snaps[-1].collected_at))[0]
            parts.append({"load": load - min(scan, load), "scan": min(scan, load), "index": index, "first": first_point,
                          "step": step, "closing": closing, "events": events, "short": events_short})
    n = len(snaps)
    versions, principals = _versions(db)  # versions each snapshot opened: what the read and the index grow with
    load_scale, glass_scale = _scale(versions, n), _scale(principals, n)
    load, scan, index, first_point, step, closing, events, events_short = (  # unrounded: the step is ~3 ms
        statistics.median([p[k] for p in parts]) for k in ("load", "scan", "index", "first", "step", "closing",
                                                           "events", "short"))
    year_act = round(n_act * 366 / 90)  # the 90 days' activations a day, for 366 days
    year_weeks = events * year_act / max(1, n_act)
    rest = max(0.0, statistics.median(walls) - load - scan - index - first_point - (n - 1) * step - closing
               - events * range_act / max(1, n_act))
    at_365 = ((load + index) * load_scale + scan * glass_scale + first_point + 364 * step + closing + year_weeks
              + rest)
    per_day = median(list(versions.values())[1:]) or 0
    return [
        Row(f"trend series over the history ({n} daily snapshots, measured)", median(walls), "s", "", None, runs,
            f"build_series; control posture read from the stored check runs. Parts: holdings history read once "
            f"{load + scan:.2f} s (of which the break-glass scan {scan:.2f} s), versions indexed {index:.2f} s, "
            f"the first snapshot's point {first_point:.2f} s + {step:.4f} s per further one, the last snapshot's "
            f"reviews, top holders and changes {closing:.2f} s, weekly activations of 90 days ({n_act:,} "
            f"activations, {events_per_day:,} audit events a day) {events:.2f} s (30 days, {n_short:,} "
            f"activations: {events_short:.2f} s), the rest {rest:.2f} s", walls),
        Row("trend series over a 365-day history (EXTRAPOLATED)", round(at_365, 1), "s", "<= 5 s", 5, runs,
            f"({load:.2f} s read + {index:.2f} s index) x {load_scale:.2f} (fact versions: {per_day:,.0f} new a day) "
            f"+ {scan:.2f} s break-glass scan x {glass_scale:.2f} (principal versions) + {first_point:.2f} "
            f"+ 364 x {step:.4f} + {closing:.2f} + {rest:.2f} s + the weekly activations scaled from the 90 days' "
            f"{n_act:,} to a year's {year_act:,} ({year_weeks:.2f} s). Summed as if one after the other: "
            "build_series counts the activations in a thread of its own, beside the sweep",
            extrapolated=True),
    ]


def _scale(versions: dict[int, int], n: int) -> float:
    """How many times the versions a history of 365 daily snapshots holds are those of these `n`: the first
    snapshot's, then as many a day as the median of the further ones."""
    per_day = median(list(versions.values())[1:]) or 0
    return (sum(versions.values()) + (365 - n) * per_day) / max(1, sum(versions.values()))


def _versions(db: Path) -> tuple[dict[int, int], dict[int, int]]:
    """How many fact versions each snapshot opened (seq -> count) of what a trend reads: the kinds holdings are
    made of and the principals they name (HoldingsHistory reads no one else); and of every principal (the
    break-glass accounts are looked for among them all)."""
    from pimtrail.controls.view import HOLDING_KINDS

    kinds = tuple(HOLDING_KINDS)
    marks = ",".join("?" * len(kinds))
    conn = sqlite3.connect(db)
    rows = conn.execute(f"SELECT valid_from, count(*) FROM fact WHERE kind IN ({marks}) OR (kind = 'principal' AND "
                        f"principal_id IN (SELECT principal_id FROM fact WHERE kind IN ({marks}))) "
                        "GROUP BY valid_from ORDER BY valid_from", kinds + kinds).fetchall()
    principals = conn.execute("SELECT valid_from, count(*) FROM fact WHERE kind = 'principal' GROUP BY valid_from "
                              "ORDER BY valid_from").fetchall()
    holders = {p for (p,) in conn.execute(f"SELECT DISTINCT principal_id FROM fact WHERE kind IN ({marks})", kinds)}
    conn.close()
    counts, all_principals = Counter(dict(rows)), Counter(dict(principals))
    # and the closed versions, kept apart since migration 0008 (pimtrail.store.archive)
    from sqlalchemy import create_engine, text

    from pimtrail.store import archive

    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as sa_conn:
        closed = [v for (tenant,) in sa_conn.execute(text("SELECT DISTINCT tenant_id FROM snapshot"))
                  for v in archive.versions(sa_conn, tenant, (*kinds, "principal"))]
    engine.dispose()
    holders |= {v.principal_id for v in closed if v.kind in kinds}
    for v in closed:
        if v.kind in kinds or v.principal_id in holders:
            counts[v.valid_from] += 1
        if v.kind == "principal":
            all_principals[v.valid_from] += 1
    return dict(sorted(counts.items())), dict(sorted(all_principals.items()))


def pack_bytes(db: Path) -> dict[str, int]:
    """Bytes stored so far of the raw elements (item_pack: compressed texts and their digests) and of the
    archived events (event_archive batches), which an ingest adds to or rewrites rather than appends rows."""
    out = {"packs": 0, "archive": 0}
    if not Path(db).exists():  # before the first ingest (connecting would create an empty file)
        return out
    conn = sqlite3.connect(db)
    try:
        for name, sql in (("packs", "SELECT coalesce(sum(length(data)) + sum(length(digests)), 0) FROM item_pack"),
                          ("archive", "SELECT coalesce(sum(length(data)), 0) FROM event_archive")):
            try:
                out[name] = conn.execute(sql).fetchone()[0]
            except sqlite3.OperationalError:  # a history without the table (before migration 0003 / 0009)
                pass
        return out
    finally:
        conn.close()


def growth(db: Path, before: dict[str, int] | None = None) -> dict[str, int]:
    """What the newest snapshot added to the database, by part: new listings (compressed) per dataset,
    new raw elements, the newest check's stored results, new fact versions, new events (compressed) and
    what the archive of old events grew by (`before`: `pack_bytes` before the ingest)."""
    now, before = pack_bytes(db), before or {"packs": 0, "archive": 0}
    conn = sqlite3.connect(db)
    last_id, last_seq = conn.execute("SELECT id, seq FROM snapshot ORDER BY seq DESC LIMIT 1").fetchone()
    out = dict(conn.execute(
        "SELECT 'raw listing ' || r.dataset, sum(length(b.data)) FROM receipt_list r JOIN blob b "
        "ON b.tenant_id = r.tenant_id AND b.sha256 = r.sha256 WHERE r.snapshot_id = ? AND r.sha256 NOT IN "
        "(SELECT sha256 FROM receipt_list WHERE snapshot_id <> ?) GROUP BY r.dataset", (last_id, last_id)).fetchall())
    out["raw new elements (packs)"] = now["packs"] - before["packs"]
    out["old events archived (batches)"] = now["archive"] - before["archive"]
    out["check results"] = conn.execute(
        "SELECT coalesce(sum(length(c.data)), 0) FROM control_result c JOIN check_run r ON r.id = c.run_id "
        "WHERE r.snapshot_id = ?", (last_id,)).fetchone()[0]
    out["fact versions"] = conn.execute("SELECT sum(length(data)) FROM fact WHERE valid_from = ?",
                                        (last_seq,)).fetchone()[0] or 0
    out["events"] = conn.execute("SELECT sum(length(zdata)) FROM event WHERE first_seen = ?",  # compressed
                                 (last_seq,)).fetchone()[0] or 0
    conn.close()
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def full_window_ingest(gen: Any, db: Path, work: Path, layout: str = "graph") -> tuple[float, float]:
    """The current day ingested from an export holding the whole audit window (as a collection
    without a history, or with --full-audit, asks for it) into a copy of `db`: (read s, write s)."""
    import shutil

    export = gen.write(work / "exports" / "full-window", layout=layout)
    copy = work / "full-window.db"
    shutil.copyfile(db, copy)
    read, write, _, _ = ingest_once(export, copy)
    copy.unlink()
    shutil.rmtree(export)
    return read, write


def history_rows(days: list[dict[str, Any]], churn: float, parts: dict[str, int] | None = None,
                 full_window: tuple[float, float] | None = None, signin_share: float = 0.0) -> list[Row]:
    first = days[0]["db_bytes"]
    growth = [b["db_bytes"] - a["db_bytes"] for a, b in zip(days, days[1:])]
    daily = [d["read_s"] + d["write_s"] for d in days[1:]]
    per_day = median(growth) or 0
    at_365 = first + 364 * per_day
    measured_ratio = days[-1]["db_bytes"] / first
    return [
        Row(f"daily ingest at {churn * 100:g} % churn" + (f", {signin_share * 100:g} % signing in" if signin_share else "")
            + f" (median of {len(daily)} days, read + write)", median(daily), "s", "<= 5 s",
            5, len(daily), f"write alone {median([d['write_s'] for d in days[1:]]):.1f} s; "
            f"{median([d['new_events'] for d in days[1:]]):,.0f} new events/day; audit since the previous "
            "collection less 1 h", daily),
        *([Row("  daily ingest of an export holding the whole audit window instead", sum(full_window), "s", "",
               None, 1, f"read {full_window[0]:.1f} s + write {full_window[1]:.1f} s; the last day once more, "
               "into a copy of the history", list(full_window))] if full_window else []),
        Row(f"database size after {len(days)} daily snapshots (measured)", round(measured_ratio, 3),
            "x first", "", None, 1, f"first {first / 1e6:.0f} MB, then {days[-1]['db_bytes'] / 1e6:.0f} MB; "
            f"growth per day {per_day / 1e6:.1f} MB (median)", [d["db_bytes"] / 1e6 for d in days]),
        Row("database size after 365 daily snapshots (EXTRAPOLATED)", round(at_365 / first, 2), "x first",
            "<= 3 x first", 3, 1, f"{first / 1e6:.0f} MB + 364 x {per_day / 1e6:.1f} MB/day = {at_365 / 1e9:.1f} GB "
            "(linear from the measured days)" + ("; the last day added (bytes stored, before indexes): " + ", ".join(
                f"{k} {v / 1e6:.1f} MB" for k, v in list(parts.items())[:6]) if parts else ""), extrapolated=True),
    ]


def size_now(db: Path) -> int:
    """The database's size with the WAL checkpointed into it (as `HistoryStore.close` leaves it)."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db_size(db)


def dumps(rows: list[Row]) -> str:
    return json.dumps([r.as_dict() for r in rows], indent=1)
