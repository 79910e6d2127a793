"""`pimtrail trend`: the series equal plain queries on the history; the dashboard, its charts and CSV."""

from __future__ import annotations

import csv
from html import unescape
import re
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

import exports
from pimtrail.activations import join_activations
from pimtrail.config import parse_config
from pimtrail.controls.profiles import load_profile
from pimtrail.evidence import charts, dashboard
from pimtrail.evidence.series import build_series
from pimtrail.store import HistoryStore
from pimtrail.timeutil import parse_iso

GA = "62e90394-69f5-4237-9190-012177145e10"


@pytest.fixture(scope="module")
def sample_config():
    text = (resources.files("pimtrail.sample_data") / "pimtrail.toml").read_text()
    return parse_config(tomllib.loads(text), "sample_data/pimtrail.toml")


@pytest.fixture(scope="module")
def quarter(sample_history, sample_config):
    """The sample quarter's series, and the store it came from (read-only)."""
    with HistoryStore.open(sample_history) as store:
        tenant = store.tenant(None)
        series = build_series(store, tenant, load_profile(None, sample_config), sample_config)
        yield series, store, tenant


# -- (1) the series equal plain queries on the history ------------------------------------
def plain_standing(store, tenant, seq, profile, break_glass: set[str]) -> Counter:
    """Permanent active assignments to tiered roles per tier, groups expanded to their members,
    break-glass accounts left out: straight from the stored facts, without the controls' view."""
    principals = {p["id"]: p for p in store.facts(tenant, "principal", seq)}
    roles = {r["id"]: r for r in store.facts(tenant, "role_definition", seq)}
    glass = {pid for pid, p in principals.items() if pid in break_glass or (p.get("upn") or "") in break_glass}
    via_pim = {(m["group_id"], m["principal_id"]): m for m in store.facts(tenant, "group_pim_assignment", seq)
               if m.get("access", "member") == "member"}
    plain = [(m["group_id"], m["member_id"]) for m in store.facts(tenant, "group_member", seq)
             if (m["group_id"], m["member_id"]) not in via_pim]
    counts: Counter = Counter()
    for a in store.facts(tenant, "role_assignment", seq):
        tier = profile.tier_of(roles.get(a["role_id"]) or {"id": a["role_id"]})
        if tier is None or not a["permanent"]:
            continue
        holder = principals.get(a["principal_id"], {"type": "unknown"})
        if holder.get("type") != "group":
            counts[str(tier)] += a["principal_id"] not in glass
            continue
        members = [m for g, m in plain if g == a["principal_id"]] + \
                  [m for (g, m), rec in via_pim.items() if g == a["principal_id"] and rec["permanent"]]
        counts[str(tier)] += sum(1 for m in members if m not in glass
                                 and principals.get(m, {}).get("type") != "group")
    return counts


def test_standing_access_per_weekly_snapshot_equals_the_stored_facts(quarter, sample_config):
    series, store, tenant = quarter
    profile = load_profile(None, sample_config)
    snaps = store.snapshots(tenant)
    assert [p.seq for p in series.points] == [s.seq for s in snaps] and len(snaps) == 14
    for point, snap in zip(series.points, snaps):
        expected = plain_standing(store, tenant, snap.seq, profile, set(sample_config.break_glass.accounts))
        assert point.standing_by_tier == {t: expected.get(t, 0) for t in "012"}, snap.seq
        assert point.standing_total == sum(expected.values())
    # the sample's story: standing access falls over the quarter, tier 0 to nothing
    assert series.points[0].standing_total > series.points[-1].standing_total
    assert series.points[-1].standing_by_tier["0"] == 0


def test_ga_holders_break_glass_and_outside_pim_equal_the_history(quarter, sample_config):
    series, store, tenant = quarter
    for point in series.points:
        when = parse_iso(point.collected_at)
        holders = {h["principal_id"] for h in store.holders_on(tenant, when, GA)}
        assert point.ga_holders == len(holders), point.seq
        active = store.facts(tenant, "role_assignment", point.seq)
        assert point.outside_pim == sum(1 for a in active if a.get("outside_pim"))
        upns = {p.get("upn") for p in store.facts(tenant, "principal", point.seq)}
        assert point.break_glass == len(set(sample_config.break_glass.accounts) & upns)


def test_weekly_activations_equal_the_joined_audit_log(quarter):
    series, store, tenant = quarter
    start, end = parse_iso(series.start), parse_iso(series.end) + timedelta(seconds=1)
    activations = [a for a in join_activations(store.events(tenant, "audit", start - timedelta(days=1), end))
                   if start <= parse_iso(a.requested_at or a.start) < end]
    weeks = Counter()
    for a in activations:
        moment = parse_iso(a.start or a.requested_at)
        weeks[(moment - timedelta(days=moment.weekday())).date().isoformat()] += 1
    assert {w.week: w.activations for w in series.weeks} == dict(weeks)
    assert sum(w.denied for w in series.weeks) == sum(a.outcome == "denied" for a in activations)
    assert sum(w.approved for w in series.weeks) == sum(a.approval == "approved" for a in activations)


def test_review_cycles_sum_the_stored_decisions(quarter):
    series, store, tenant = quarter
    last = series.points[-1].seq
    decisions = Counter(d["instance_id"] for d in store.facts(tenant, "access_review_decision", last))
    ended = {i["id"]: i["end"][:10] for i in store.facts(tenant, "access_review_instance", last) if i.get("end")}
    per_day = Counter()
    for instance, count in decisions.items():
        if instance in ended and series.start[:10] <= ended[instance] <= series.end[:10]:
            per_day[ended[instance]] += count
    by_day = Counter()
    for k in series.cycles:
        by_day[k.ended] += k.decisions
    assert by_day == per_day and len(series.cycles) >= 3
    assert all(k.reviewed + k.not_reviewed == k.decisions for k in series.cycles)


def test_pass_rate_equals_a_check_of_the_same_snapshot(quarter, sample_config):
    from pimtrail.check import run_check

    series, store, tenant = quarter
    for which, point in (("1", series.pass_rate[0]), ("latest", series.pass_rate[-1])):
        report = run_check(store, sample_config, snapshot=which, save=False)
        counts = report.counts()
        assessed = sum(v for k, v in counts.items() if k not in ("not_assessable", "not_applicable"))
        assert (point["pass"], point["total"]) == (counts.get("pass", 0) + counts.get("excepted", 0), assessed)


def test_readings_state_the_trend_in_words(quarter):
    series, _, _ = quarter
    read = dashboard.readings(series)
    first, last = series.points[0].standing_total, series.points[-1].standing_total
    assert read["standing"].startswith(f"Standing privileged access is down from {first} to {last} since 1 July 2026")
    assert "since the previous snapshot" in read["changes"].lower()
    assert set(read) >= {name for name, _ in dashboard.SECTIONS}


# -- charts -------------------------------------------------------------------------------
def test_charts_are_deterministic_accessible_inline_svg(quarter):
    series, _, _ = quarter
    for name, draw in charts.CHARTS.items():
        svg = draw(series)
        assert svg == draw(series), f"{name}: same input, different SVG"
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg") and root.get("role") == "img"
        assert root.get("width") is None and root.get("viewBox")
        ns = "{http://www.w3.org/2000/svg}"
        assert root.find(f"{ns}title").text and root.find(f"{ns}desc").text
        ids = re.findall(r'\bid="([^"]+)"', svg)
        assert len(ids) == len(set(ids)) and all(i.startswith(f"{name}-") for i in ids), name
        assert "<?xml" not in svg and "DOCTYPE" not in svg and "dc:date" not in svg.lower()
        assert svg.count('class="tip"') >= 1, name
    assert "Standing privileged access by tier" in charts.standing_by_tier(series)
    assert "Standing privileged access by tier</text>" not in charts.standing_by_tier(series, titled=False)


# -- (3) single snapshot, empty range ---------------------------------------------------------
def test_single_snapshot_history_renders_with_a_clear_message(cli, export, db, tmp_path):
    assert cli("collect", "--source", export(), "--db", db).exit_code in (0, 3)  # 3: partial, stored
    out = tmp_path / "one.html"
    result = cli("trend", "--db", db, "--out", out, "--csv", tmp_path / "csv")
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Only one snapshot in the selected range (1 July 2026)" in html
    assert "No earlier snapshot in the range to compare with." in html
    # one point per chart that has data; no activation and no review in this history: said in words
    assert re.findall(r'data-chart="(\w+)"', html) == ["standing", "assignments", "identity", "passrate"]
    assert "No activations recorded in the selected range." in html
    assert "No access-review cycle ended in the selected range." in html
    assert len(list((tmp_path / "csv").glob("*.csv"))) == 8


def test_empty_range_renders_with_a_clear_message(cli, sample_history, tmp_path):
    out = tmp_path / "empty.html"
    result = cli("trend", "--db", sample_history, "--from", "2025-01-01", "--to", "2025-01-31", "--out", out)
    assert result.exit_code == 0, result.output
    assert "no snapshots in the selected range" in result.output.lower()
    html = out.read_text()
    assert "No snapshots between 1 January 2025 and 31 January 2025" in html
    assert "The history holds 14 snapshots of this tenant, from 1 July 2026 to 30 September 2026" in html
    assert '<svg class="chart"' not in html


def test_a_day_range_takes_the_snapshots_of_those_days(cli, sample_history, tmp_path):
    out = tmp_path / "july.html"
    result = cli("trend", "--db", sample_history, "--from", "2026-07-01", "--to", "2026-07-31", "--out", out,
                 "--csv", tmp_path / "csv")
    assert result.exit_code == 0, result.output
    with (tmp_path / "csv" / "snapshots.csv").open(newline="") as handle:
        dates = [row["collected_at"][:10] for row in csv.DictReader(handle)]
    assert dates == ["2026-07-01", "2026-07-08", "2026-07-15", "2026-07-22", "2026-07-29"]


def test_bad_ranges_are_usage_errors(cli, sample_history, tmp_path):
    result = cli("trend", "--db", sample_history, "--from", "2026-09-01", "--to", "2026-08-01",
                 "--out", tmp_path / "x.html")
    assert result.exit_code == 2 and "after --to" in result.output
    result = cli("trend", "--db", sample_history, "--from", "July", "--out", tmp_path / "x.html")
    assert result.exit_code == 2 and "not a date" in result.output
    assert not (tmp_path / "x.html").exists()


# -- (4) hostile tenant text ----------------------------------------------------------------------
SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example/x","open me")'


def hostile_history(cli, export, db: str) -> None:
    """Two snapshots; in the second a principal named like an attack gets a permanent role."""
    assert cli("collect", "--source", export(), "--db", db).exit_code in (0, 3)  # 3: partial, stored

    def change(data):
        data["organization"]["value"][0]["displayName"] = "<img src=x onerror=alert(2)>"
        mallory = exports._user("cccccccc-0000-4000-8000-000000000003", "Mallory")
        mallory.update(displayName=SCRIPT, userPrincipalName=FORMULA)
        eve = exports._user("eeeeeeee-0000-4000-8000-000000000005", "Eve")
        eve.update(displayName=FORMULA, userPrincipalName=SCRIPT)
        data["users"][1]["value"] += [mallory, eve]
        data["role_assignment_instances"]["value"] += [
            exports._instance("inst-mallory", mallory["id"], exports.EXCHANGE, None),
            exports._instance("inst-eve", eve["id"], exports.GA, None)]

    assert cli("collect", "--source", export("2026-07-08T06:00:00Z", change), "--db", db).exit_code in (0, 3)


def test_hostile_names_are_inert_in_html_and_csv(cli, export, db, tmp_path):
    hostile_history(cli, export, db)
    out = tmp_path / "dash.html"
    assert cli("trend", "--db", db, "--out", out, "--csv", tmp_path / "csv").exit_code == 0
    html = out.read_text()
    assert SCRIPT not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # the tenant name, shown as text
    assert html.count("<script") == 1  # ours, allowed by its hash in the CSP
    assert "HYPERLINK(&#34;http://evil.example/x&#34;" in html or "HYPERLINK(&quot;" in html
    rows = []
    for name in ("top_standing", "changes"):
        with (tmp_path / "csv" / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
            rows += list(csv.DictReader(handle))
    cells = [v for row in rows for v in row.values()]
    assert "'" + FORMULA in cells and SCRIPT in cells  # as data: harmless in a CSV
    assert not any(v.startswith(("=", "+", "-", "@")) for v in cells)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # Eve's UPN, shown as text


def test_hostile_text_in_a_chart_is_escaped_svg_text():
    from pimtrail.evidence.series import CycleTotal, Series

    series = Series("t", SCRIPT, "pimtrail", "2026-07-01T00:00:00Z", "2026-07-31T00:00:00Z",
                    cycles=[CycleTotal(SCRIPT + " $x^2$", "2026-07-16", 1, 3, 2, 1, 1, 1)])
    svg = charts.review_cycles(series)
    ET.fromstring(svg)  # well-formed: nothing broke out of its text node
    assert "<script" not in svg and "&lt;script&gt;" in svg and "$x^2$" in svg  # no mathtext either
    assert 'alert(1)' not in re.sub(r"&lt;script&gt;alert\(1\)&lt;/script&gt;", "", svg)


# -- (5) CSV files equal the series ----------------------------------------------------------------
def test_csv_files_hold_the_series(quarter, tmp_path):
    series, _, _ = quarter
    written = dashboard.write_csv(series, tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{n}.csv" for n in dashboard.csv_tables(series))

    def read(name):
        with (tmp_path / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    snapshots = read("snapshots")
    assert [(int(r["seq"]), r["collected_at"], int(r["standing_total"]), int(r["standing_tier_0"]),
             int(r["eligible"]), int(r["ga_holders"]), int(r["outside_pim"])) for r in snapshots] == \
        [(p.seq, p.collected_at, p.standing_total, p.standing_by_tier["0"], p.eligible, p.ga_holders,
          p.outside_pim) for p in series.points]
    assert [(r["week"], int(r["activations"]), int(r["approved"]), int(r["denied"]), int(r["off_hours"]))
            for r in read("activations_weekly")] == \
        [(w.week, w.activations, w.approved, w.denied, w.off_hours) for w in series.weeks]
    assert [(int(r["pass"]), int(r["total"]), float(r["rate"])) for r in read("pass_rate")] == \
        [(p["pass"], p["total"], p["rate"]) for p in series.pass_rate]
    assert [(r["control_id"], r["from"], r["to"]) for r in read("status_changes")] == \
        [(c["control_id"], c["from"], c["to"]) for c in series.status_changes]
    assert [(r["ended"], int(r["decisions"]), int(r["denied_applied"])) for r in read("review_cycles")] == \
        [(k.ended, k.decisions, k.denied_applied) for k in series.cycles]
    assert len(read("review_instances")) == len(series.reviews)
    assert [r["principal_id"] for r in read("top_standing")] == [t["principal_id"] for t in series.top_standing]
    assert len(read("changes")) == sum(len(v) for v in series.changes.values())


def test_dashboard_html_is_reproducible_and_self_contained(quarter):
    series, _, _ = quarter
    html = dashboard.render(series)
    assert html == dashboard.render(series)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert unescape(csp).startswith("default-src 'none';")
    for needle in ("http://", "https://", "src=", "@import", "url(http"):
        outside = [m for m in re.findall(rf".{{0,40}}{re.escape(needle)}.{{0,40}}", html)
                   if "www.w3.org" not in m]
        assert not outside, (needle, outside[:3])
    assert html.count('<svg class="chart"') == len(dashboard.SECTIONS)
