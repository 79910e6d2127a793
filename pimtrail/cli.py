"""The `pimtrail` command line: parses options, calls the library, maps errors to exit codes.

Heavy modules (SQLAlchemy, msgraph) are imported inside the commands so `--help` stays instant.
"""

from __future__ import annotations

import functools
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pimtrail import __version__
from pimtrail.errors import PimtrailError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="pimtrail: history and audit evidence for Entra Privileged Identity Management.")

DbOption = Annotated[Optional[str], typer.Option(
    "--db", envvar="PIMTRAIL_DB", help="History database: a file path (SQLite) or a SQLAlchemy URL. "
    "Default ./pimtrail.db")]
TenantOption = Annotated[Optional[str], typer.Option("--tenant", help="Tenant id, where the history holds several.")]


class Format(str, Enum):
    table = "table"
    json = "json"


def say(text: str = "") -> None:
    typer.echo(text)


def handle_errors(command):
    """Domain errors become one line on stderr and their exit code."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except PimtrailError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
    return wrapper


def _report(outcome) -> None:
    if outcome.snapshot is None:
        say(f"  skipped {outcome.source_ref}: {outcome.skipped_reason}")
        return
    s = outcome.snapshot
    gaps = f"  ({len(outcome.gaps)} dataset(s) missing)" if outcome.gaps else ""
    say(f"  snapshot #{s.seq} {s.collected_at:%Y-%m-%d %H:%M}Z  {s.status:<8} "
        f"{s.fact_count:>6} facts {s.event_count:>5} new events  chain {s.chain_hash[:12]}{gaps}")


@app.command()
@handle_errors
def collect(
    source: Annotated[str, typer.Option("--source", help="'sample', 'graph', or an export directory.")],
    db: DbOption = None,
    tenant: TenantOption = None,
) -> None:
    """Collect one snapshot (or the sample quarter) into the history."""
    from pimtrail import collect as service
    from pimtrail.errors import InputError
    from pimtrail.store import HistoryStore

    if source == "graph":
        raise InputError("live collection through Microsoft Graph is not built yet (issue #3)",
                         field="--source", fix="collect from an export directory or --source sample")
    snaps = service.sample_snapshots(tenant) if source == "sample" else \
        service.read_exports([Path(source)], tenant=tenant)
    with HistoryStore.open(db, create=True) as store:
        say(f"Collecting {len(snaps)} snapshot(s) into {store.engine.url.render_as_string(hide_password=True)}")
        results = service.ingest_all(store, snaps, progress=_report)
    partial = [r for r in results if r.snapshot is not None and r.gaps]
    if partial:
        missing = sorted({g for r in partial for g in r.gaps})
        typer.echo(f"collection incomplete: {', '.join(missing)} not collected; "
                   "controls that need them will be not assessable", err=True)
        raise typer.Exit(EXIT_INCOMPLETE)


@app.command()
@handle_errors
def snapshots(
    db: DbOption = None,
    tenant: TenantOption = None,
    format: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """List the snapshots in the history, with per-dataset coverage."""
    from pimtrail.store import HistoryStore
    from pimtrail.views import snapshot_listing

    with HistoryStore.open(db) as store:
        listing = snapshot_listing(store, tenant)
    if format is Format.json:
        say(json.dumps(listing, indent=2))
        return
    say(f"{'tenant':<36}  {'#':>3}  {'collected at (UTC)':<17}  {'status':<8}  {'facts':>6}  "
        f"{'events':>6}  {'gaps':<4}  chain")
    for s in listing:
        gaps = sum(1 for c in s["coverage"] if c["status"] != "ok" and not c["optional"])
        say(f"{s['tenant_id']:<36}  {s['seq']:>3}  {s['collected_at'][:16].replace('T', ' '):<17}  "
            f"{s['status']:<8}  {s['fact_count']:>6}  {s['event_count']:>6}  {gaps:<4}  {s['chain_hash'][:16]}")


@app.command()
@handle_errors
def verify(db: DbOption = None, tenant: TenantOption = None) -> None:
    """Recompute the hash chain over every snapshot; name the first that does not match."""
    from pimtrail.store import HistoryStore

    with HistoryStore.open(db) as store:
        report = store.verify(store.tenant(tenant) if tenant else None)
    if not report.checks:
        say("no snapshots to verify")
        return
    broken = report.first_broken
    if broken is None:
        tenants = len({c.tenant_id for c in report.checks})
        say(f"verified: {len(report.checks)} snapshot(s) of {tenants} tenant(s); hash chain intact")
        return
    typer.echo(f"verify failed: tenant {broken.tenant_id} snapshot #{broken.seq} (id {broken.snapshot_id}): "
               f"{'; '.join(broken.problems)}", err=True)
    raise typer.Exit(EXIT_FAILED)


ConfigOption = Annotated[Optional[str], typer.Option(
    "--config", envvar="PIMTRAIL_CONFIG", help="pimtrail.toml (default ./pimtrail.toml if present).")]


class CheckFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    junit = "junit"
    sarif = "sarif"


def _day(value: Optional[str], option: str):
    if value is None:
        return None
    from datetime import datetime

    from pimtrail.errors import InputError

    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise InputError(f"not a date: {value!r}", field=option, fix="use YYYY-MM-DD (UTC)") from None


@app.command()
@handle_errors
def check(
    db: DbOption = None,
    tenant: TenantOption = None,
    config: ConfigOption = None,
    snapshot: Annotated[str, typer.Option("--snapshot", help="latest, or a snapshot number")] = "latest",
    profile: Annotated[Optional[str], typer.Option("--profile", help="pimtrail, cis-m365 or cisa-scuba")] = None,
    format: Annotated[CheckFormat, typer.Option("--format")] = CheckFormat.table,
    fail_on: Annotated[str, typer.Option("--fail-on", help="lowest severity of a failed control that makes "
                                         "the exit code 1: critical, high, medium, low, info, or never")] = "info",
    period_from: Annotated[Optional[str], typer.Option("--from", help="period start (YYYY-MM-DD, UTC)")] = None,
    period_to: Annotated[Optional[str], typer.Option("--to", help="period end (YYYY-MM-DD, UTC); default: the snapshot")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to a file instead of stdout")] = None,
) -> None:
    """Evaluate the controls on a stored snapshot (exit 1 when a control fails)."""
    from pimtrail.check import run_check
    from pimtrail.config import load_config
    from pimtrail.controls.model import Severity, Status
    from pimtrail.errors import InputError
    from pimtrail.evidence import machine
    from pimtrail.store import HistoryStore

    levels = [s.value for s in Severity] + ["never"]
    if fail_on not in levels:
        raise InputError(f"unknown severity {fail_on!r}", field="--fail-on", fix=f"one of {', '.join(levels)}")
    settings = load_config(config)
    with HistoryStore.open(db or settings.database) as store:
        report = run_check(store, settings, tenant=tenant, snapshot=snapshot, profile=profile,
                           period_from=_day(period_from, "--from"), period_to=_day(period_to, "--to"))
    render = {"table": machine.to_table, "json": machine.to_json, "csv": machine.to_csv,
              "junit": machine.to_junit, "sarif": machine.to_sarif}[format.value]
    text = render(report)
    if output:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        say(text)
    if fail_on != "never":
        threshold = Severity(fail_on).rank
        if any(r.status is Status.FAIL and r.control.severity.rank >= threshold for r in report.results):
            raise typer.Exit(EXIT_FAILED)


@app.command()
@handle_errors
def controls(
    format: Annotated[str, typer.Option("--format", help="table, json or markdown")] = "table",
) -> None:
    """The control catalogue: ids, severities, what each needs, and framework mappings."""
    from pimtrail.controls.docs import catalogue_json, catalogue_markdown
    from pimtrail.controls.registry import all_controls

    if format == "json":
        say(json.dumps(catalogue_json(), indent=2))
    elif format == "markdown":
        say(catalogue_markdown())
    else:
        for c in all_controls():
            say(f"{c.id:<13} {c.severity.value:<8} {c.title}")


@app.command()
@handle_errors
def permissions(
    format: Annotated[str, typer.Option("--format", help="table, markdown or json")] = "table",
) -> None:
    """The Graph requests pimtrail makes and the least read permission each needs."""
    from pimtrail.views import permission_rows

    rows = permission_rows()
    if format == "json":
        say(json.dumps(rows, indent=2))
    elif format == "markdown":
        say("| dataset | request | application permission | licence | optional |")
        say("|---|---|---|---|---|")
        for r in rows:
            say(f"| {r['dataset']} | `{r['request']}` | {r['permission']} | {r['licence']} | "
                f"{'yes' if r['optional'] else ''} |")
    else:
        for r in rows:
            say(f"{r['permission']:<48} {r['dataset']:<30} {'(optional)' if r['optional'] else ''}")
        needed = sorted({r["permission"] for r in rows if not r["optional"]})
        say(f"\nRequired application permissions ({len(needed)}): {', '.join(needed)}")


@app.command()
@handle_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo history and outputs.")] = Path("pimtrail-demo"),
) -> None:
    """Run the whole pipeline on the sample tenant (no tenant needed)."""
    from pimtrail import collect as service
    from pimtrail.store import HistoryStore
    from pimtrail.views import demo_summary, sample_checks, sample_config_text

    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "pimtrail.db"
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)
    say("Building the sample tenant's quarter (2026-07-01 .. 2026-09-30) ...")
    snaps = service.sample_snapshots()
    with HistoryStore.open(str(db_path), create=True) as store:
        service.ingest_all(store, snaps, progress=_report)
        report = store.verify()
        summary = demo_summary(store)
        checks = sample_checks(store)
    say()
    say(f"History: {db_path}  ({summary['snapshots']} snapshots of tenant {summary['tenant_name']} "
        f"{summary['tenant_id']})")
    say(f"Hash chain: {'intact' if report.ok else 'BROKEN'} over {len(report.checks)} snapshots")
    for line in summary["lines"]:
        say(f"  {line}")
    for label, check_report in checks:
        counts = check_report.counts()
        say(f"\nControls at quarter {label} (snapshot #{check_report.view.snapshot.seq}, profile "
            f"{check_report.view.profile.name}): " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
        for r in check_report.results:
            if r.status.value in ("fail", "warn"):
                first = next(f for f in r.findings if f.status.value == r.status.value)
                say(f"  {r.status.value.upper():<5} {r.control.id:<13} {first.message}")
    config = out / "pimtrail.toml"
    config.write_text(sample_config_text())
    say(f"\nTry: pimtrail snapshots --db {db_path}    pimtrail verify --db {db_path}\n"
        f"     pimtrail check --db {db_path} --config {config} [--snapshot 1] [--format json|sarif|junit|csv]")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Show the version.")] = False) -> None:
    if version:
        say(f"pimtrail {__version__}")
        raise typer.Exit(0)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
