"""Control results per snapshot: written after each `check`, read for posture trends."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from pimtrail import __version__
from pimtrail.store.schema import check_run_table, control_result_table
from pimtrail.timeutil import utcnow


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
                 "severity": r["severity"], "finding_count": len(r["findings"]),
                 "data": json.dumps(r, sort_keys=True, default=str)} for r in results]
        if rows:
            conn.execute(control_result_table.insert(), rows)
    return run_id


def latest_runs(engine: Engine, tenant: str, profile: str) -> dict[int, dict[str, str]]:
    """snapshot id -> {control id: status} from the newest run per snapshot with this profile."""
    with engine.connect() as conn:
        runs = conn.execute(select(check_run_table.c.id, check_run_table.c.snapshot_id).where(
            check_run_table.c.tenant_id == tenant, check_run_table.c.profile == profile)
            .order_by(check_run_table.c.id)).all()
        newest = {snapshot_id: run_id for run_id, snapshot_id in runs}
        out: dict[int, dict[str, str]] = {}
        for snapshot_id, run_id in newest.items():
            out[snapshot_id] = dict(conn.execute(select(control_result_table.c.control_id,
                                                        control_result_table.c.status)
                                                 .where(control_result_table.c.run_id == run_id)).all())
    return out
