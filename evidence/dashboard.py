"""The trend dashboard: one self-contained HTML file from a `Series`, and the series as CSV files.

Self-contained means inline CSS, inline SVG charts and a few lines of inline JavaScript (table
filters); a Content-Security-Policy that allows only that script (by hash) and no fetch of any kind,
so the file opened from a mail attachment or a SharePoint folder makes no request. Tenant text is
untrusted: jinja2 autoescapes it in HTML, and CSV cells that a spreadsheet would run as a formula are
neutralised.
"""

from __future__ import annotations

import base64
import csv
import hashlib
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from pimtrail import __version__
from pimtrail.evidence import charts
from pimtrail.evidence.machine import safe_cell
from pimtrail.evidence.series import Series

SCRIPT = """\
document.querySelectorAll("input[data-filter]").forEach(function (input) {
  var rows = document.querySelectorAll("#" + input.getAttribute("data-filter") + " tbody tr");
  input.addEventListener("input", function () {
    var query = input.value.trim().toLowerCase();
    rows.forEach(function (row) {
      row.hidden = query !== "" && row.textContent.toLowerCase().indexOf(query) < 0;
    });
  });
});
"""

SECTIONS = (  # chart name, heading (the order of the page)
    ("standing", "Standing privileged access by tier"),
    ("assignments", "Eligible, active and activated assignments"),
    ("identity", "Global Administrators, break-glass accounts, assignments outside PIM"),
    ("activations", "Activations per week"),
    ("passrate", "Control pass rate"),
    ("reviews", "Access reviews per cycle"),
)


# -- one-line readings ---------------------------------------------------------------------
def change(first: int, last: int, since: str) -> str:
    if last < first:
        return f"down from {first} to {last} since {since}"
    if last > first:
        return f"up from {first} to {last} since {since}"
    return f"unchanged at {last} since {since}"


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"


def readings(series: Series) -> dict[str, str]:
    """One sentence per chart, and for the tables, computed from the series alone."""
    pts = series.points
    if not pts:
        empty = "No snapshots in the selected range."
        return {name: empty for name, _ in SECTIONS} | {"principals": empty, "changes": empty}
    first, last = pts[0], pts[-1]
    since, when = charts.day(first.collected_at), charts.day(last.collected_at)
    tiers = ", ".join(f"tier {t}: {first.standing_by_tier[t]} → {last.standing_by_tier[t]}" for t in "012")
    out: dict[str, str] = {}
    if len(pts) == 1:
        out["standing"] = (f"{plural(last.standing_total, 'standing privileged assignment')} on {when} "
                           f"(tier 0: {last.standing_by_tier['0']}, tier 1: {last.standing_by_tier['1']}, "
                           f"tier 2: {last.standing_by_tier['2']}).")
        out["assignments"] = (f"On {when}: {last.eligible} eligible, {last.active_assigned} active (assigned), "
                              f"{last.activated} activated just in time.")
        out["identity"] = (f"On {when}: {plural(last.ga_holders, 'Global Administrator holder')}, "
                           f"{plural(last.break_glass, 'break-glass account')}, "
                           f"{plural(last.outside_pim, 'assignment')} outside PIM.")
    else:
        out["standing"] = f"Standing privileged access is {change(first.standing_total, last.standing_total, since)} ({tiers})."
        out["assignments"] = (f"Eligible assignments {change(first.eligible, last.eligible, since)}; active (assigned) "
                              f"{change(first.active_assigned, last.active_assigned, since)}; "
                              f"{last.activated} activated just in time on {when}.")
        out["identity"] = (f"Global Administrator holders {change(first.ga_holders, last.ga_holders, since)}; "
                           f"{plural(last.break_glass, 'break-glass account')}; assignments outside PIM "
                           f"{change(first.outside_pim, last.outside_pim, since)}.")
    total = sum(w.activations for w in series.weeks)
    if total:
        approved, denied = sum(w.approved for w in series.weeks), sum(w.denied for w in series.weeks)
        off = sum(w.off_hours for w in series.weeks)
        out["activations"] = (f"{plural(total, 'activation')} over {plural(len(series.weeks), 'week')}: "
                              f"{approved} approved ({charts.share(approved, total)}), {denied} denied "
                              f"({charts.share(denied, total)}), {off} outside business hours "
                              f"({charts.share(off, total)}).")
    else:
        out["activations"] = "No activations recorded in the selected range."
    rated = [p for p in series.pass_rate if p["rate"] is not None]
    if rated:
        a, b = rated[0], rated[-1]
        now = f"{b['pass']} of {b['total']} assessed controls pass ({round(100 * b['rate'])}%) on {when}"
        if len(rated) > 1:
            word = "up" if b["rate"] > a["rate"] else "down" if b["rate"] < a["rate"] else "the same as"
            now += (f", {word}{' from' if word != 'the same as' else ''} {a['pass']} of {a['total']} "
                    f"({round(100 * a['rate'])}%) on {charts.day(a['collected_at'])}; "
                    f"{plural(len(series.status_changes), 'status change')} in the range")
        out["passrate"] = now + "."
    else:
        out["passrate"] = "No assessed controls in the selected range."
    if series.cycles:
        k = series.cycles[-1]
        denied = sum(c.denied for c in series.cycles)
        applied = sum(c.denied_applied for c in series.cycles)
        out["reviews"] = (f"Latest cycle ({k.definition or 'unnamed review'}, ended {charts.day(k.ended + 'T00:00:00Z')}): "
                          f"{k.reviewed} of {plural(k.decisions, 'decision')} recorded "
                          f"({charts.share(k.reviewed, k.decisions)}); over {plural(len(series.cycles), 'cycle')} "
                          f"{applied} of {plural(denied, 'denial')} applied.")
    else:
        out["reviews"] = "No access-review cycle ended in the selected range."
    glass = sum(1 for t in series.top_standing if t["break_glass"])
    out["principals"] = (f"{plural(len(series.top_standing), 'principal')} with standing privilege on {when}"
                         + (f", {glass} of them break-glass (expected to hold Global Administrator)" if glass else "")
                         + "." if series.top_standing else f"Nobody holds a privileged role permanently on {when}.")
    if len(pts) > 1:
        added, removed = len(series.changes.get("added", [])), len(series.changes.get("removed", []))
        out["changes"] = (f"Since the previous snapshot ({charts.day(pts[-2].collected_at)}): "
                          f"{plural(added, 'privileged holding')} added, {removed} removed.")
    else:
        out["changes"] = "No earlier snapshot in the range to compare with."
    return out


def notice(series: Series, available: tuple[int, str, str] | None = None) -> str | None:
    """The message for a history too short to show a trend, or a range holding no snapshot."""
    if not series.points:
        text = (f"No snapshots between {charts.day(series.start)} and {charts.day(series.end)}: nothing to chart."
                if series.start and series.end and not series.start.startswith("0001") else
                "The history holds no snapshots for this tenant: nothing to chart.")
        if available and available[0]:
            text += (f" The history holds {plural(available[0], 'snapshot')} of this tenant, from "
                     f"{charts.day(available[1])} to {charts.day(available[2])}: choose --from/--to within them.")
        return text
    if len(series.points) == 1:
        return (f"Only one snapshot in the selected range ({charts.day(series.points[0].collected_at)}): the charts "
                "show that single point. A trend needs two or more snapshots (collect again, or widen --from/--to).")
    return None


def kpis(series: Series) -> list[tuple[str, str, str]]:
    """The headline figures: (label, value, note)."""
    if not series.points:
        return []
    first, last = series.points[0], series.points[-1]
    since = charts.short_day(first.collected_at)
    rated = [p for p in series.pass_rate if p["rate"] is not None]
    return [
        ("Standing privileged access", str(last.standing_total), f"{first.standing_total} on {since}"),
        ("Tier 0 standing", str(last.standing_by_tier["0"]), f"{first.standing_by_tier['0']} on {since}"),
        ("Global Administrator holders", str(last.ga_holders), f"{last.break_glass} break-glass accounts"),
        ("Assignments outside PIM", str(last.outside_pim), f"{first.outside_pim} on {since}"),
        ("Controls passing", f"{round(100 * rated[-1]['rate'])}%" if rated else "n/a",
         f"{rated[-1]['pass']} of {rated[-1]['total']} assessed" if rated else "no assessed control"),
        ("Activations", str(sum(w.activations for w in series.weeks)),
         f"in {plural(len(series.weeks), 'week')}"),
    ]


# -- HTML ------------------------------------------------------------------------------------
def html_tables(series: Series) -> dict[str, dict[str, Any]]:
    """The tables of the page: the data behind each chart, status changes, principals, changes."""
    def table(caption: str, headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
        return {"caption": caption, "headers": headers, "rows": rows}

    day, pts = charts.short_day, series.points
    previous = day(pts[-2].collected_at) if len(pts) > 1 else "the previous snapshot"
    return {
        "standing": table("Permanent active privileged assignments per snapshot (break-glass excluded)",
                          ["Snapshot", "Date", "Tier 0", "Tier 1", "Tier 2", "Total"],
                          [[f"#{p.seq}", day(p.collected_at), *(p.standing_by_tier[t] for t in "012"),
                            p.standing_total] for p in pts]),
        "assignments": table("Privileged role assignments per snapshot",
                             ["Snapshot", "Date", "Eligible", "Active (assigned)", "Activated"],
                             [[f"#{p.seq}", day(p.collected_at), p.eligible, p.active_assigned, p.activated]
                              for p in pts]),
        "identity": table("Global Administrator holders, break-glass accounts and assignments outside PIM",
                          ["Snapshot", "Date", "Global Administrator holders", "Break-glass accounts",
                           "Assignments outside PIM"],
                          [[f"#{p.seq}", day(p.collected_at), p.ga_holders, p.break_glass, p.outside_pim]
                           for p in pts]),
        "activations": table("Activations per week (weeks start on Monday, UTC)",
                             ["Week of", "Activations", "Approved", "Denied", "Outside business hours"],
                             [[day(w.week + "T00:00:00Z"), w.activations,
                               f"{w.approved} ({charts.share(w.approved, w.activations)})", w.denied,
                               f"{w.off_hours} ({charts.share(w.off_hours, w.activations)})"] for w in series.weeks]),
        "passrate": table("Controls passing (pass or excepted) of those assessed, per snapshot",
                          ["Snapshot", "Date", "Passing", "Assessed", "Pass rate"],
                          [[f"#{p['seq']}", day(p["collected_at"]), p["pass"], p["total"],
                            "n/a" if p["rate"] is None else f"{round(100 * p['rate'])}%"] for p in series.pass_rate]),
        "reviews": table("Access-review cycles: the instances of one review that ended on the same day",
                         ["Ended", "Review", "Instances", "Decisions", "Recorded", "Not reviewed", "Completion",
                          "Denied", "Denials applied"],
                         [[day(k.ended + "T00:00:00Z"), k.definition or "?", k.instances, k.decisions, k.reviewed,
                           k.not_reviewed, charts.share(k.reviewed, k.decisions), k.denied, k.denied_applied]
                          for k in series.cycles]),
        "status_changes": table("Control status changes between consecutive snapshots",
                                ["Snapshot", "Date", "Control", "Title", "From", "To"],
                                [[f"#{c['seq']}", day(c["collected_at"]), c["control_id"], _title(c["control_id"]),
                                  _badge(c["from"]), _badge(c["to"])] for c in series.status_changes]),
        "top_standing": table("Weight: 3 per tier-0 role, 2 per tier-1 role, 1 per tier-2 role held as a "
                              "permanent active assignment",
                              ["#", "Principal", "Type", "Roles held permanently", "Weight", "Break-glass"],
                              [[i, t["principal"], (t["type"] or "").replace("_", " "), "; ".join(t["roles"]),
                                t["score"], _badge("break-glass", "expected") if t["break_glass"] else ""]
                               for i, t in enumerate(series.top_standing, 1)]),
        "changes": table(f"Privileged role holdings added or removed since {previous}",
                         ["Change", "Principal", "Role", "State", "Permanent", "Via"],
                         [[kind, c["principal"], c["role"], c["state"], "yes" if c["permanent"] else "no",
                           c["via"].replace("_", " ")]
                          for kind in ("added", "removed") for c in series.changes.get(kind, [])]),
    }


def _badge(text: str, kind: str | None = None) -> dict[str, str]:
    return {"text": text.replace("_", " "), "cls": f"badge {kind or text}"}


def _title(control_id: str) -> str:
    from pimtrail.controls.registry import all_controls

    return next((c.title for c in all_controls() if c.id == control_id), "")


def _environment() -> jinja2.Environment:
    folder = resources.files("pimtrail.templates")
    env = jinja2.Environment(loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["day"] = charts.short_day
    return env


def render(series: Series, *, generated_at: str | None = None,
           available: tuple[int, str, str] | None = None) -> str:
    """The dashboard HTML. `available`: (snapshots, first, last) in the whole history, for the
    empty-range message; `generated_at`: shown in the header (left out for reproducible output)."""
    env = _environment()
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    read = readings(series)
    has_data = {"standing": bool(series.points), "assignments": bool(series.points), "identity": bool(series.points),
                "activations": bool(series.weeks), "reviews": bool(series.cycles),
                "passrate": any(p["rate"] is not None for p in series.pass_rate)}
    sections = [{"id": name, "heading": heading, "reading": read[name],
                 "svg": Markup(charts.CHARTS[name](series, titled=False)) if has_data[name] else None}
                for name, heading in SECTIONS]
    return env.get_template("dashboard.html.j2").render(
        series=series, sections=sections, readings=read, tables=html_tables(series), kpis=kpis(series), notice=notice(series, available),
        css=Markup(env.loader.get_source(env, "dashboard.css")[0]), script=Markup(SCRIPT),
        csp=f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:; "
            "base-uri 'none'; form-action 'none'",
        previous=series.points[-2] if len(series.points) > 1 else None,
        generated_at=generated_at, version=__version__)


def write_dashboard(series: Series, out: Path, **options: Any) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(series, **options), encoding="utf-8")
    return out


def write_trend(store, config, out: Path, *, tenant: str | None = None, profile: str | None = None,
                start=None, end=None, csv_dir: Path | None = None,
                generated_at: str | None = None) -> tuple[Series, list[Path]]:
    """The `trend` use case: the series over the range, the dashboard, and (with `csv_dir`) its CSV."""
    from pimtrail.controls.profiles import load_profile
    from pimtrail.evidence.series import build_series
    from pimtrail.timeutil import iso

    tenant_id = store.tenant(tenant or config.tenant)
    series = build_series(store, tenant_id, load_profile(profile, config), config, start, end)
    every = store.snapshots(tenant_id)
    available = (len(every), iso(every[0].collected_at), iso(every[-1].collected_at)) if every else None
    write_dashboard(series, out, generated_at=generated_at, available=available)
    return series, write_csv(series, csv_dir) if csv_dir is not None else []


# -- CSV -------------------------------------------------------------------------------------
def csv_tables(series: Series) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The series as flat tables: file name -> (header, rows)."""
    snapshot_cols = ["seq", "collected_at", "standing_total", "break_glass", "eligible", "active_assigned",
                     "activated", "ga_holders", "outside_pim", "privileged_principals"]
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {
        "snapshots": (snapshot_cols[:2] + ["standing_tier_0", "standing_tier_1", "standing_tier_2"] + snapshot_cols[2:],
                      [[p.seq, p.collected_at, *(p.standing_by_tier[t] for t in "012"),
                        *(getattr(p, c) for c in snapshot_cols[2:])] for p in series.points]),
        "activations_weekly": (["week", "activations", "approved", "denied", "off_hours"],
                               [[w.week, w.activations, w.approved, w.denied, w.off_hours] for w in series.weeks]),
        "pass_rate": (["seq", "collected_at", "pass", "total", "rate"],
                      [[p["seq"], p["collected_at"], p["pass"], p["total"], p["rate"]] for p in series.pass_rate]),
        "status_changes": (["seq", "collected_at", "control_id", "from", "to"],
                           [[c["seq"], c["collected_at"], c["control_id"], c["from"], c["to"]]
                            for c in series.status_changes]),
        "review_instances": (list(asdict(series.reviews[0])) if series.reviews else
                             ["instance_id", "definition", "ended", "status", "decisions", "reviewed",
                              "not_reviewed", "denied", "denied_applied"],
                             [list(asdict(r).values()) for r in series.reviews]),
        "review_cycles": (["ended", "definition", "instances", "decisions", "reviewed", "not_reviewed",
                           "completion", "denied", "denied_applied"],
                          [[k.ended, k.definition, k.instances, k.decisions, k.reviewed, k.not_reviewed,
                            k.completion, k.denied, k.denied_applied] for k in series.cycles]),
        "top_standing": (["rank", "principal", "principal_id", "type", "score", "break_glass", "roles"],
                         [[i, t["principal"], t["principal_id"], t["type"], t["score"], t["break_glass"],
                           "; ".join(t["roles"])] for i, t in enumerate(series.top_standing, 1)]),
        "changes": (["change", "principal", "principal_id", "role", "state", "permanent", "via"],
                    [[kind, c["principal"], c["principal_id"], c["role"], c["state"], c["permanent"], c["via"]]
                     for kind in ("added", "removed") for c in series.changes.get(kind, [])]),
    }
    return tables


def write_csv(series: Series, directory: Path) -> list[Path]:
    """One CSV file per table of the series (UTF-8, header row, formula-like cells neutralised)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (header, rows) in csv_tables(series).items():
        path = directory / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([["" if v is None else safe_cell(v) for v in row] for row in rows])
        written.append(path)
    return written
