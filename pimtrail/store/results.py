"""Control results per snapshot: written after each `check`, read for posture trends.

Every run keeps, per control, its status, severity and finding count (all the trend and the posture
read). Only the newest run of each tenant and profile keeps its findings in full (every finding with its
evidence: 30 MB for a check of a 100,000-user tenant): storing a run compacts the older runs of the same
tenant and profile to their result without the findings plus `findings_sha256`, the SHA-256 of the
findings as they were stored. A check of the same snapshot with the same tool version and settings
(`settings_hash`) gives them again, and the digest shows they are the ones stored. A year of daily checks
then adds a few kilobytes a day instead of a full copy of the findings.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from pimtrail import __version__
from pimtrail.store.schema import check_run_table, control_result_table
from pimtrail.timeutil import utcnow

COMPACT = '{"compacted": true, '  # how a compacted result's JSON begins (keys sorted: "compacted" comes first)


def encode(result: dict[str, Any]) -> str:
    """A result as stored in full."""
    return json.dumps(result, sort_keys=True, default=str)


def compact(data: str) -> str:
    """A stored result without its findings: every other field, the findings' SHA-256 (of their JSON as
    stored in `data`) and `"compacted": true`. A result already compacted is returned as it is."""
    if data.startswith(COMPACT):
        return data
    result = json.loads(data)
    if result.get("compacted"):
        return data
    findings = json.dumps(result.pop("findings", []), sort_keys=True, default=str)
    result.update(compacted=True, findings_sha256=hashlib.sha256(findings.encode()).hexdigest())
    return json.dumps(result, sort_keys=True, default=str)


def save_run(engine: Engine, tenant: str, snapshot_id: int, profile: str, period: tuple[datetime, datetime],
             settings_hash: str, results: list[dict[str, Any]]) -> int:
    summary: dict[str, int] = {}
    for r in results:
        summary[r["status"]] = summary.get(r["status"], 0) + 1
    with engine.begin() as conn:
        run_id = conn.execute(check_run_table.insert().values(
            tenant_id=tenant, snapshot_id=snapshot_id, profile=profile, evaluated_at=utcnow(),
            period_from=period[0], period_to=period[1], tool_version=__version__,
            settings_hash=settings_hash, summary=json.dumps(summary, sort_keys=True))).inserted_primary_key[0]
        rows = [{"tenant_id": tenant, "run_id": run_id, "control_id": r["control_id"], "status": r["status"],
                 "severity": r["severity"], "finding_count": len(r["findings"]), "data": encode(r)} for r in results]
        if rows:
            conn.execute(control_result_table.insert(), rows)
    compact_older(engine, tenant, profile, run_id)
    return run_id


def compact_older(engine: Engine, tenant: str, profile: str, newest: int) -> int:
    """Compact the results of the runs of this tenant and profile older than run `newest` that still hold
    their findings; returns how many results were compacted. A database role that may only insert results
    (docs/postgresql.md) cannot compact: the runs stay whole until a role that may update them stores one."""
    older = select(check_run_table.c.id).where(check_run_table.c.tenant_id == tenant,
                                               check_run_table.c.profile == profile, check_run_table.c.id < newest)
    query = select(control_result_table.c.id, control_result_table.c.data).where(
        control_result_table.c.tenant_id == tenant, control_result_table.c.run_id.in_(older),
        control_result_table.c.data.not_like(COMPACT.replace("_", "\\_") + "%", escape="\\"))
    try:
        with engine.begin() as conn:
            rows = conn.execute(query).all()
            for row_id, data in rows:
                conn.execute(update(control_result_table).where(control_result_table.c.id == row_id)
                             .values(data=compact(data)))
    except DBAPIError:  # e.g. permission denied for the reader role: results are kept whole
        return 0
    return len(rows)


def load_results(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    """The stored results of one run (compacted ones without `findings`; see `compact`)."""
    with engine.connect() as conn:
        return [json.loads(data) for data in conn.execute(
            select(control_result_table.c.data).where(control_result_table.c.run_id == run_id)
            .order_by(control_result_table.c.id)).scalars()]


def latest_runs(engine: Engine, tenant: str, profile: str) -> dict[int, dict[str, str]]:
    """snapshot id -> {control id: status} from the newest run per snapshot with this profile."""
    with engine.connect() as conn:
        runs = conn.execute(select(check_run_table.c.id, check_run_table.c.snapshot_id).where(
            check_run_table.c.tenant_id == tenant, check_run_table.c.profile == profile)
            .order_by(check_run_table.c.id)).all()
        newest = {snapshot_id: run_id for run_id, snapshot_id in runs}
        out: dict[int, dict[str, str]] = {snapshot_id: {} for snapshot_id in newest}
        wanted = {run_id: snapshot_id for snapshot_id, run_id in newest.items()}
        ids = sorted(wanted)
        for n in range(0, len(ids), 500):  # one query per 500 runs, not one per run
            for run_id, control_id, status in conn.execute(
                    select(control_result_table.c.run_id, control_result_table.c.control_id,
                           control_result_table.c.status).where(control_result_table.c.run_id.in_(ids[n:n + 500]))
                    .order_by(control_result_table.c.id)):
                out[wanted[run_id]][control_id] = status
    return out
