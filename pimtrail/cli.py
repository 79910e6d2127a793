"""The `pimtrail` command line: parses options, calls the library, maps errors to exit codes.

Heavy modules (SQLAlchemy, msgraph) are imported inside the commands so `--help` stays instant.
"""

from __future__ import annotations

import functools
import json
import re
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


class CatalogueFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


# what a terminal acts on or shows otherwise than it reads: C0 controls but tab, newline and a carriage return that
# ends a line (the CSV writer's), as ESC begins a terminal's commands, DEL and C1 controls, the line and paragraph
# separators, and the marks and overrides of text direction
_UNSHOWN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
                      "|\r(?!\n)")


def shown(text: str) -> str:
    """`text` as it may reach a terminal: each character of `_UNSHOWN` written as its escape, `\\u001b` (tenant text
    is untrusted: a display name holding ESC could rewrite the screen). JSON reads the escape as the character, so
    a machine format written to stdout keeps its values; `--output` files keep the text as it is."""
    return _UNSHOWN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def say(text: str = "") -> None:
    typer.echo(shown(text))


def _error(text: str) -> None:
    typer.echo(shown(text), err=True)


def handle_errors(command):
    """Domain errors become one line on stderr and their exit code."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except PimtrailError as exc:
            _error(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a file or folder it cannot read or write (--out on a file, no space, no right)
            where = f"{exc.filename}: " if exc.filename else ""
            _error(f"error: {where}{exc.strerror or exc}")
            raise typer.Exit(EXIT_USAGE) from None
        except OverflowError as exc:  # a date so near the calendar's ends that the period around it is not one
            typer.echo(f"error: a date outside the calendar ({exc}): give dates of real years", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        except Exception as exc:
            # a database refusing us (permissions, server gone) is an environment problem, not a bug:
            # one line, not a traceback; anything else is a bug and keeps its traceback
            if type(exc).__module__.startswith("sqlalchemy"):
                reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                _error(f"error: database: {reason}")
                raise typer.Exit(EXIT_USAGE) from None
            raise
    return wrapper


def _report(outcome) -> None:
    if outcome.snapshot is None:
        say(f"  skipped {outcome.source_ref}: {outcome.skipped_reason}")
        return
    s = outcome.snapshot
    gaps = f"  ({len(outcome.gaps)} dataset(s) missing)" if outcome.gaps else ""
    say(f"  snapshot #{s.seq} {s.collected_at:%Y-%m-%d %H:%M}Z  {s.status:<8} "
        f"{s.fact_count:>6} facts {s.event_count:>5} new events  chain {s.chain_hash[:12]}{gaps}")


ConfigOption = Annotated[Optional[str], typer.Option(
    "--config", envvar="PIMTRAIL_CONFIG", help="pimtrail.toml (default ./pimtrail.toml if present).")]


def _settings(config: Optional[str]):
    """pimtrail.toml as `--config` names it; its `database` and `tenant` are the defaults of --db and --tenant in
    every command that reads or writes the history."""
    from pimtrail.config import load_config

    return load_config(config)


@app.command()
@handle_errors
def collect(
    source: Annotated[str, typer.Option("--source", help="'sample', 'graph', or an export directory.")],
    db: DbOption = None,
    tenant: Annotated[Optional[str], typer.Option(
        "--tenant", help="Tenant id. With an export: the export must be of this tenant. With graph: the "
        "tenant to sign in to (default AZURE_TENANT_ID).")] = None,
    auth: Annotated[str, typer.Option(
        "--auth", envvar="PIMTRAIL_AUTH", help="graph: how to sign in: auto, certificate, secret, "
        "managed-identity, default, device-code or token (docs/setup.md). Secrets come from the "
        "environment only (AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PASSWORD, PIMTRAIL_GRAPH_TOKEN).")] = "auto",
    client_id: Annotated[Optional[str], typer.Option(
        "--client-id", envvar="AZURE_CLIENT_ID", help="graph: the app registration's client id.")] = None,
    certificate: Annotated[Optional[str], typer.Option(
        "--certificate", envvar="AZURE_CLIENT_CERTIFICATE_PATH",
        help="graph: PEM or PFX file of the app's certificate.")] = None,
    export: Annotated[Optional[Path], typer.Option(
        "--export", help="graph: also keep the raw Graph responses as an export directory (a new folder).")] = None,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", min=1, max=32, help="graph: requests in flight at once.")] = 4,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, help="graph: seconds to wait for one answer before giving up.")] = 60.0,
    also: Annotated[Optional[list[str]], typer.Option(
        "--also", help="graph: also read a dataset that is off by default (role_assignment_requests "
        "needs RoleManagement.ReadWrite.Directory).")] = None,
    graph_url: Annotated[str, typer.Option(
        "--graph-url", envvar="PIMTRAIL_GRAPH_URL",
        help="graph: Graph's v1.0 root (a national cloud, or the local emulator).")] = "https://graph.microsoft.com/v1.0",
    full_audit: Annotated[bool, typer.Option(
        "--full-audit", help="graph: read the whole audit retention window, not only the events since the "
        "previous collection of this tenant in --db.")] = False,
    config: ConfigOption = None,
) -> None:
    """Collect one snapshot (live from Graph, from an export directory, or the sample quarter)."""
    import os
    import tempfile
    from contextlib import ExitStack

    from pimtrail import collect as service
    from pimtrail.bulk import kept_heap
    from pimtrail.store import HistoryStore
    from pimtrail.store.engine import shown_url

    settings = _settings(config)
    db = db or settings.database
    # an export read and written in one scope of memory kept for reuse: the read frees what the ingest allocates
    # again (`bulk.kept_heap`). Not for Graph, whose collector's peak memory is held to a target (docs/benchmarks.md)
    with ExitStack() as scope:
        if source != "graph":
            scope.enter_context(kept_heap())
        run = None
        if source == "graph":
            from pimtrail.collectors import datasets as ds
            from pimtrail.collectors.graph import CredentialConfig, GraphSettings, HttpSettings, collect_graph
            from pimtrail.collectors.graph.progress import Progress
            from pimtrail.collectors.graph.window import previous_audit_windows
            from pimtrail.errors import InputError

            for name in also or []:
                if name not in ds.BY_NAME:
                    raise InputError(f"unknown dataset {name!r}", field="--also", fix="see `pimtrail permissions`")
            credential = CredentialConfig.from_env(auth, tenant or os.environ.get("AZURE_TENANT_ID"),
                                                   client_id, certificate)
            graph = GraphSettings(http=HttpSettings(base_url=graph_url, concurrency=concurrency, timeout=timeout),
                                  also=tuple(also or ()),
                                  previous_audit={} if full_audit else previous_audit_windows(db),
                                  break_glass=tuple(settings.break_glass.accounts))
            typer.echo(f"Reading {graph_url} (sign-in: {credential.describe()})", err=True)
            # without --export, the collection is written to a folder kept until it is ingested: read back against
            # the history, its audit log may be read by a worker meanwhile, and a read the history refuses is read
            # again from it (`collect._ingest`)
            scratch = None if export is not None else \
                Path(scope.enter_context(tempfile.TemporaryDirectory(prefix="pimtrail-graph-")))
            run = collect_graph(credential, graph, export=export, tenant=tenant, progress=Progress(), scratch=scratch,
                                read_back=lambda root, check: service.read_exports([root], check, db, "graph")[0])
            snaps = [run.snapshot]
        else:
            snaps = service.sample_snapshots(tenant) if source == "sample" else \
                service.read_exports([Path(source)], tenant=tenant, db=db)
        service.check_before_creating(db, snaps)
        with service.removed_if_failed(db), HistoryStore.open(db, create=True) as store:
            say(f"Collecting {len(snaps)} snapshot(s) into {shown_url(store.engine.url)}")
            results = service.ingest_all(store, snaps, progress=_report)
    if run is not None and run.export_dir is not None:
        say(f"Raw Graph responses kept in {run.export_dir}")
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
    config: ConfigOption = None,
    format: Annotated[Format, typer.Option("--format",
                                           help="table, or json with each dataset's coverage")] = Format.table,
) -> None:
    """List the snapshots in the history: a line each, or with per-dataset coverage (--format json)."""
    from pimtrail.store import HistoryStore
    from pimtrail.views import snapshot_listing

    settings = _settings(config)
    with HistoryStore.open(db or settings.database) as store:
        listing = snapshot_listing(store, tenant or settings.tenant)
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
def verify(db: DbOption = None, tenant: TenantOption = None, config: ConfigOption = None) -> None:
    """Recompute the hash chain over every snapshot; name the first that does not match."""
    from pimtrail.store import HistoryStore

    settings = _settings(config)
    tenant = tenant or settings.tenant
    with HistoryStore.open(db or settings.database) as store:
        report = store.verify(store.tenant(tenant) if tenant else None)
    if not report.checks:
        say("no snapshots to verify")
        return
    broken = report.first_broken
    if broken is None:
        tenants = len({c.tenant_id for c in report.checks})
        say(f"verified: {len(report.checks)} snapshot(s) of {tenants} tenant(s); hash chain intact")
        return
    _error(f"verify failed: tenant {broken.tenant_id} snapshot #{broken.seq} (id {broken.snapshot_id}): "
           f"{'; '.join(broken.problems)}")
    raise typer.Exit(EXIT_FAILED)



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
    from pimtrail.controls.model import Severity, Status
    from pimtrail.errors import InputError
    from pimtrail.evidence import machine
    from pimtrail.store import HistoryStore

    levels = [s.value for s in Severity] + ["never"]
    if fail_on not in levels:
        raise InputError(f"unknown severity {fail_on!r}", field="--fail-on", fix=f"one of {', '.join(levels)}")
    settings = _settings(config)
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
    format: Annotated[CatalogueFormat, typer.Option("--format")] = CatalogueFormat.table,
) -> None:
    """The control catalogue: ids, severities, what each needs, and framework mappings."""
    from pimtrail.controls.docs import catalogue_json, catalogue_markdown
    from pimtrail.controls.registry import all_controls

    if format is CatalogueFormat.json:
        say(json.dumps(catalogue_json(), indent=2))
    elif format is CatalogueFormat.markdown:
        say(catalogue_markdown())
    else:
        for c in all_controls():
            say(f"{c.id:<13} {c.severity.value:<8} {c.title}")


@app.command()
@handle_errors
def trend(
    out: Annotated[Path, typer.Option("--out", help="The dashboard to write: one self-contained HTML file.")],
    db: DbOption = None,
    tenant: TenantOption = None,
    config: ConfigOption = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="pimtrail, cis-m365 or cisa-scuba")] = None,
    period_from: Annotated[Optional[str], typer.Option(
        "--from", help="first day (YYYY-MM-DD, UTC); default: the first snapshot")] = None,
    period_to: Annotated[Optional[str], typer.Option(
        "--to", help="last day, included (YYYY-MM-DD, UTC); default: the latest snapshot")] = None,
    csv_dir: Annotated[Optional[Path], typer.Option(
        "--csv", help="also write the series behind the charts as CSV files into this folder")] = None,
) -> None:
    """Trend dashboard of standing privileged access over the snapshots in range (one HTML file)."""
    from datetime import timedelta

    from pimtrail.errors import InputError
    from pimtrail.evidence.dashboard import write_trend
    from pimtrail.store import HistoryStore
    from pimtrail.timeutil import iso, utcnow

    start, end = _day(period_from, "--from"), _day(period_to, "--to")
    if end is not None and len(period_to.strip()) == 10:  # a day given: the whole day is in range
        end += timedelta(days=1, seconds=-1)
    if start and end and start > end:
        raise InputError(f"--from {period_from} is after --to {period_to}", field="--from",
                         fix="give the earlier day to --from")
    if out.is_dir():
        raise InputError("is a folder", path=str(out), fix="give a file name, e.g. --out dashboard.html")
    settings = _settings(config)
    with HistoryStore.open(db or settings.database) as store:
        series, files = write_trend(store, settings, out, tenant=tenant, profile=profile, start=start, end=end,
                                    csv_dir=csv_dir, generated_at=iso(utcnow()))
    say(f"Dashboard: {out} ({len(series.points)} snapshot(s) of {series.tenant_name or series.tenant_id})")
    if files:
        say(f"Series: {len(files)} CSV files in {csv_dir}")
    if not series.points:
        typer.echo("warning: no snapshots in the selected range; the dashboard says so", err=True)


@app.command()
@handle_errors
def pack(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the pack into.")],
    period: Annotated[Optional[str], typer.Option("--period", help="2026-Q3, 2026-08 or 2026")] = None,
    period_from: Annotated[Optional[str], typer.Option("--from", help="first day (YYYY-MM-DD, UTC)")] = None,
    period_to: Annotated[Optional[str], typer.Option("--to", help="last day (YYYY-MM-DD, UTC)")] = None,
    format: Annotated[str, typer.Option("--format", help="comma list of pdf, xlsx, json")] = "pdf,xlsx,json",
    db: DbOption = None,
    tenant: TenantOption = None,
    config: ConfigOption = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="pimtrail, cis-m365 or cisa-scuba")] = None,
    template_dir: Annotated[Optional[Path], typer.Option("--template-dir", help="folder with pack.html.j2 / "
                                                         "pack.css overriding the built-in templates")] = None,
) -> None:
    """Write the auditor evidence pack (PDF, workbook, JSON, manifest, SHA256SUMS) for a period."""
    from pimtrail.controls.profiles import load_profile
    from pimtrail.evidence.pack import parse_formats, write_pack
    from pimtrail.evidence.period import parse_period
    from pimtrail.store import HistoryStore

    formats = parse_formats(format)
    chosen = parse_period(period, period_from, period_to)
    settings = _settings(config)
    with HistoryStore.open(db or settings.database) as store:
        tenant_id = store.tenant(tenant or settings.tenant)
        result = write_pack(store, tenant_id, chosen, load_profile(profile, settings), settings, out, formats,
                            template_dir)
    for f in result.files:
        say(f"  {f['name']:<64} {f['size']:>10,} bytes  sha256 {f['sha256'][:16]}")
    pages = f", PDF {result.pdf_pages} pages" if result.pdf_pages else ""
    say(f"Pack for {chosen.label} written to {out}{pages}; check it with: cd {out} && sha256sum -c SHA256SUMS")


@app.command()
@handle_errors
def permissions(
    format: Annotated[CatalogueFormat, typer.Option("--format")] = CatalogueFormat.table,
) -> None:
    """The Graph requests pimtrail makes and the least read permission each needs."""
    from pimtrail.collectors.graph.permissions_doc import granted_permissions, permission_table
    from pimtrail.views import permission_rows

    rows = permission_rows()
    if format is CatalogueFormat.json:
        say(json.dumps(rows, indent=2))
    elif format is CatalogueFormat.markdown:
        say("\n".join(permission_table()))
    else:
        for r in rows:
            say(f"{r['permission']:<48} {r['dataset']:<30} {'(optional)' if r['optional'] else ''}")
        required, optional = granted_permissions()  # as docs/permissions.md lists them: each permission once
        say(f"\nRequired application permissions ({len(required)}): {', '.join(required)}")
        say(f"Recommended, for optional datasets ({len(optional)}): {', '.join(optional)}")


@app.command()
@handle_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo history and outputs.")] = Path("pimtrail-demo"),
) -> None:
    """Run the whole pipeline on the sample tenant: history, checks, 2026-Q3 pack, trend dashboard."""
    from pimtrail.demo import run_demo

    if not run_demo(out, say, progress=_report):
        raise typer.Exit(EXIT_FAILED)


db_app = typer.Typer(no_args_is_help=True, help="The history database itself (docs/postgresql.md).")
app.add_typer(db_app, name="db")


@db_app.command("copy")
@handle_errors
def db_copy(to: Annotated[str, typer.Option("--to", help="The empty target database: a URL "
                                            "(postgresql+psycopg://user@host/db) or a SQLite file path.")],
            db: DbOption = None, config: ConfigOption = None) -> None:
    """Copy the whole history (every tenant, ids kept) into an empty database, then verify it there."""
    from pimtrail.store.copy import copy_history

    report = copy_history(db or _settings(config).database, to)
    say(report.summary())
    if report.problem:
        _error(report.problem)
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
