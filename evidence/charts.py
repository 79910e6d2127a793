"""Charts of a `Series` as self-contained inline SVG strings, shared by the dashboard and the pack.

matplotlib draws on a bare `Figure` (no pyplot, no GUI, no global backend switch). The output is
deterministic: a fixed hash salt, fixed ids prefixed per chart (several charts share one HTML page),
no date or creator in the metadata. Each SVG carries a `<title>` and a `<desc>` holding its data as
text, and a native tooltip (`<title>`) on every snapshot column or week.
"""

from __future__ import annotations

import functools
import io
import re
import textwrap
from datetime import datetime, timedelta
from html import escape
from typing import Callable

import matplotlib
import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from pimtrail.evidence.series import Series
from pimtrail.timeutil import parse_iso

# Okabe-Ito colours (colour-blind safe) plus hatches and line styles, so a greyscale print still reads.
INK, GRID, MUTED = "#222222", "#d0d0d0", "#6b6b6b"
TIERS = (("0", "Tier 0 (most sensitive)", "#B8420F", ""), ("1", "Tier 1", "#E69F00", "////"),
         ("2", "Tier 2", "#56B4E9", ".."))
STYLE = {
    "svg.hashsalt": "pimtrail", "svg.fonttype": "none", "text.parse_math": False,
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9, "axes.labelsize": 9, "axes.labelcolor": INK, "text.color": INK,
    "axes.edgecolor": MUTED, "xtick.color": INK, "ytick.color": INK,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "axes.grid.axis": "y",
    "grid.color": GRID, "grid.linewidth": 0.6, "axes.axisbelow": True,
    "legend.frameon": False, "legend.fontsize": 8.5, "hatch.color": "#ffffff", "hatch.linewidth": 1.0,
    "figure.facecolor": "white", "axes.facecolor": "white",
}
SIZE = (7.6, 3.4)  # inches; at 72 units per inch the viewBox is 547 x 245
NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def day(value: str | datetime) -> str:
    """`2026-07-01T06:00:00Z` -> `1 July 2026`."""
    moment = parse_iso(value) if isinstance(value, str) else value
    return f"{moment.day} {moment:%B %Y}"


def short_day(value: str | datetime) -> str:
    moment = parse_iso(value) if isinstance(value, str) else value
    return f"{moment.day} {moment:%b %Y}"


class Canvas:
    """One chart being drawn: the figure, its axes, and the tooltips to attach."""

    def __init__(self, name: str):
        self.name = name
        self.fig = Figure(figsize=SIZE, layout="constrained")
        self.ax = self.fig.add_subplot()
        self.tips: list[tuple[str, str]] = []

    def tip(self, artist, text: str) -> None:
        gid = f"tip-{len(self.tips)}"
        artist.set_gid(gid)
        self.tips.append((gid, text))

    def column_tips(self, xs: list, width: float, texts: list[str]) -> None:
        """Invisible full-height columns, one per x, each carrying a tooltip (call after the y limits)."""
        top = self.ax.get_ylim()[1]
        for x, text in zip(xs, texts):
            [bar] = self.ax.bar([x], [top], width=width, color="white", alpha=0.0, linewidth=0, zorder=0.1)
            self.tip(bar, text)

    def empty(self, message: str) -> str:
        """Say `message` in place of the chart; returns it as the chart's description."""
        self.ax.text(0.5, 0.5, message, transform=self.ax.transAxes, ha="center", va="center",
                     fontsize=10, color=MUTED)
        self.ax.set_xticks([])
        self.ax.set_yticks([])
        for spine in self.ax.spines.values():
            spine.set_visible(False)
        return f"{message}."

    def legend(self, ncols: int = 4) -> None:
        handles, labels = self.ax.get_legend_handles_labels()
        if handles:
            self.fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, len(handles)))

    def svg(self, title: str, desc: str) -> str:
        buf = io.StringIO()
        self.fig.savefig(buf, format="svg", metadata=NO_METADATA)
        return finish_svg(buf.getvalue(), self.name, title, desc, self.tips)


def finish_svg(text: str, name: str, title: str, desc: str, tips: list[tuple[str, str]]) -> str:
    """matplotlib's SVG document -> an inline `<svg>` element with unique ids and text alternatives."""
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{name}-{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{name}-{m.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{name}-{m.group(1)}"', text)
    for gid, tip in tips:
        text = text.replace(f'<g id="{name}-{gid}">', f'<g id="{name}-{gid}" class="tip"><title>{escape(tip)}</title>', 1)
    head_end = text.index(">") + 1
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    head = head.replace("<svg ", f'<svg class="chart" role="img" aria-labelledby="{name}-title {name}-desc" '
                                 f'data-chart="{name}" ', 1)
    alt = f'<title id="{name}-title">{escape(title)}</title><desc id="{name}-desc">{escape(desc)}</desc>'
    return head + alt + text[head_end:].rstrip() + "\n"


def chart(name: str) -> Callable[[Callable[[Series, Canvas], tuple[str, str]]], Callable[..., str]]:
    """Decorate `draw(series, canvas) -> (title, desc)` into `chart(series) -> svg`. With
    `titled=False` the title is left out of the drawing (a page that heads the chart itself) but
    stays the SVG's `<title>`."""
    def wrap(draw):
        @functools.wraps(draw)
        def run(series: Series, *, titled: bool = True) -> str:
            with matplotlib.rc_context(STYLE | {"svg.id": name}):
                canvas = Canvas(name)
                title, desc = draw(series, canvas)
                if titled:
                    canvas.fig.suptitle(title, x=0.012, ha="left", fontsize=11, fontweight="bold")
                return canvas.svg(title, desc)
        return run
    return wrap


def date_axis(ax, dates: list[datetime], label: str = "Snapshot date (UTC)") -> float:
    """Dates on x, ticks a locator chooses; returns a bar width in days that fits the spacing."""
    locator = mdates.AutoDateLocator(minticks=5, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        locator, formats=["%Y", "%b", "%-d", "%H:%M", "%H:%M", "%S.%f"], show_offset=False))
    gaps = [(b - a).total_seconds() / 86400 for a, b in zip(dates, dates[1:]) if b > a]
    step = min(gaps) if gaps else 2.0  # one snapshot: a slim bar in a week-wide window
    first, last = min(dates), max(dates)
    years = f"{first.year}" if first.year == last.year else f"{first.year}–{last.year}"
    ax.set_xlabel(label.replace("(UTC)", f"({years}, UTC)"))
    pad = timedelta(days=max(step * 0.6, (last - first).days * 0.02, 0 if gaps else 3.5))
    ax.set_xlim(first - pad, last + pad)
    return step * 0.7


def count_axis(ax, label: str, top: float) -> None:
    ax.set_ylabel(label)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    ax.set_ylim(0, max(top, 1) * 1.15)


def _dates(series: Series) -> list[datetime]:
    return [parse_iso(p.collected_at) for p in series.points]


@chart("standing")
def standing_by_tier(series: Series, c: Canvas) -> tuple[str, str]:
    title = "Standing privileged access by tier"
    if not series.points:
        return title, c.empty("No snapshots in the selected range")
    dates, ax = _dates(series), c.ax
    width = date_axis(ax, dates)
    bottom = [0] * len(dates)
    for tier, label, colour, hatch in TIERS:
        values = [p.standing_by_tier.get(tier, 0) for p in series.points]
        ax.bar(dates, values, width=width, bottom=bottom, label=label, color=colour, hatch=hatch,
               edgecolor="white", linewidth=0.6, zorder=2)
        bottom = [b + v for b, v in zip(bottom, values)]
    count_axis(ax, "Permanent active assignments (count)", max(bottom))
    for d, total in zip(dates, bottom):
        ax.annotate(str(total), (d, total), xytext=(0, 2), textcoords="offset points", ha="center",
                    va="bottom", fontsize=8, color=INK)
    rows = [f"{short_day(p.collected_at)}: {p.standing_total} (tier 0 {p.standing_by_tier['0']}, "
            f"tier 1 {p.standing_by_tier['1']}, tier 2 {p.standing_by_tier['2']})" for p in series.points]
    c.column_tips(dates, width, rows)
    c.legend()
    return title, ("Stacked bars: permanent active privileged role assignments per snapshot, by tier, "
                   "break-glass accounts excluded. " + "; ".join(rows) + ".")


LINE_STYLES = (("#0072B2", "-", "o"), ("#B8420F", "--", "s"), ("#009E73", ":", "^"))


def _lines(series: Series, c: Canvas, fields: list[tuple[str, str]], ylabel: str) -> list[str]:
    dates, ax = _dates(series), c.ax
    width = date_axis(ax, dates)
    top = 0
    for (attr, label), (colour, style, marker) in zip(fields, LINE_STYLES):
        values = [getattr(p, attr) for p in series.points]
        top = max(top, *values)
        ax.plot(dates, values, color=colour, linestyle=style, marker=marker, markersize=4.5,
                linewidth=1.8, label=label, zorder=3)
    count_axis(ax, ylabel, top)
    rows = [f"{short_day(p.collected_at)}: " + ", ".join(f"{label.lower()} {getattr(p, attr)}"
                                                         for attr, label in fields) for p in series.points]
    c.column_tips(dates, width, rows)
    c.legend()
    return rows


@chart("assignments")
def eligible_active_activated(series: Series, c: Canvas) -> tuple[str, str]:
    title = "Eligible, active and activated assignments"
    if not series.points:
        return title, c.empty("No snapshots in the selected range")
    rows = _lines(series, c, [("eligible", "Eligible"), ("active_assigned", "Active (assigned)"),
                              ("activated", "Activated (just-in-time)")], "Privileged assignments (count)")
    return title, "Lines per snapshot, privileged roles only. " + "; ".join(rows) + "."


@chart("identity")
def identity_counts(series: Series, c: Canvas) -> tuple[str, str]:
    title = "Global Administrators, break-glass, outside PIM"
    if not series.points:
        return title, c.empty("No snapshots in the selected range")
    rows = _lines(series, c, [("ga_holders", "Global Administrator holders"),
                              ("break_glass", "Break-glass accounts"),
                              ("outside_pim", "Assignments outside PIM")], "Count")
    return title, ("Lines per snapshot: principals holding Global Administrator (eligible or active, "
                   "break-glass included), break-glass accounts, role assignments made outside PIM. "
                   + "; ".join(rows) + ".")


def share(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "n/a"


@chart("activations")
def activations_weekly(series: Series, c: Canvas) -> tuple[str, str]:
    title = "Activations per week"
    if not series.weeks:
        return title, c.empty("No activations recorded in the selected range")
    ax = c.ax
    mondays = [datetime.fromisoformat(w.week) for w in series.weeks]
    mids = [m + timedelta(days=3.5) for m in mondays]
    date_axis(ax, mondays + [m + timedelta(days=7) for m in mondays], "Week, Monday to Sunday (UTC)")
    ax.bar(mids, [w.activations for w in series.weeks], width=6.4, color="#e4e4e4", edgecolor=MUTED,
           linewidth=0.6, label="All activations", zorder=2)
    parts = (("approved", "Approved", "#009E73", ""), ("denied", "Denied", "#B8420F", ""),
             ("off_hours", "Outside business hours", "#0072B2", "////"))
    for i, (attr, label, colour, hatch) in enumerate(parts):
        ax.bar([m + timedelta(days=1.8 * (i - 1)) for m in mids], [getattr(w, attr) for w in series.weeks],
               width=1.6, color=colour, hatch=hatch, edgecolor="white", linewidth=0.4, label=label, zorder=3)
    count_axis(ax, "Activations (count per week)", max(w.activations for w in series.weeks))
    rows = [f"week of {short_day(m)}: {w.activations} activations, {w.approved} approved "
            f"({share(w.approved, w.activations)}), {w.denied} denied, {w.off_hours} outside business hours "
            f"({share(w.off_hours, w.activations)})" for m, w in zip(mondays, series.weeks)]
    c.column_tips(mids, 6.4, [r[0].upper() + r[1:] for r in rows])
    c.legend()
    return title, "Bars per week: all activations, and those approved, denied, outside business hours. " \
        + "; ".join(rows) + "."


@chart("passrate")
def pass_rate(series: Series, c: Canvas) -> tuple[str, str]:
    title = "Control pass rate"
    points = [p for p in series.pass_rate if p["rate"] is not None]
    if not points:
        return title, c.empty("No assessed controls in the selected range")
    ax = c.ax
    dates = [parse_iso(p["collected_at"]) for p in points]
    rates = [100 * p["rate"] for p in points]
    width = date_axis(ax, dates)
    ax.fill_between(dates, rates, color="#0072B2", alpha=0.12, linewidth=0, zorder=1)
    ax.plot(dates, rates, color="#0072B2", marker="o", markersize=4.5, linewidth=1.8,
            label="Controls passing (pass or excepted) of those assessed", zorder=3)
    ax.set_ylim(0, 105)
    ax.set_ylabel("Controls passing (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    last = points[-1]
    ax.annotate(f"{round(rates[-1])}% ({last['pass']} of {last['total']})", (dates[-1], rates[-1]),
                xytext=(-4, 8), textcoords="offset points", ha="right", fontsize=8.5, fontweight="bold")
    changed = {}
    for change in series.status_changes:
        changed[change["seq"]] = changed.get(change["seq"], 0) + 1
    rows = [f"{short_day(p['collected_at'])}: {p['pass']} of {p['total']} ({round(100 * p['rate'])}%)"
            + (f", {changed[p['seq']]} status change(s)" if changed.get(p["seq"]) else "") for p in points]
    c.column_tips(dates, width, rows)
    c.legend()
    return title, "Line per snapshot: share of assessed controls that pass. " + "; ".join(rows) + "."


@chart("reviews")
def review_cycles(series: Series, c: Canvas) -> tuple[str, str]:
    title = "Access reviews per cycle"
    if not series.cycles:
        return title, c.empty("No access-review cycle ended in the selected range")
    ax, xs = c.ax, list(range(len(series.cycles)))
    cycles = series.cycles
    ax.bar([x - 0.2 for x in xs], [k.reviewed for k in cycles], width=0.38, color="#009E73",
           label="Decisions recorded", zorder=2)
    ax.bar([x - 0.2 for x in xs], [k.not_reviewed for k in cycles], width=0.38,
           bottom=[k.reviewed for k in cycles], color="#9a9a9a", hatch="////", edgecolor="white",
           linewidth=0.4, label="Not reviewed", zorder=2)
    ax.bar([x + 0.1 for x in xs], [k.denied for k in cycles], width=0.18, color="#B8420F",
           label="Denied", zorder=2)
    ax.bar([x + 0.3 for x in xs], [k.denied_applied for k in cycles], width=0.18, color="#0072B2",
           hatch="..", edgecolor="white", linewidth=0.4, label="Denials applied", zorder=2)
    count_axis(ax, "Review decisions (count)", max(k.decisions for k in cycles))
    for x, k in zip(xs, cycles):
        ax.annotate(share(k.reviewed, k.decisions), (x - 0.2, k.decisions), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)
    if len(cycles) <= 6:
        ax.set_xticks(xs, [f"{short_day(k.ended + 'T00:00:00Z')}\n{_wrap(k.definition or '?', 26)}"
                           for k in cycles], fontsize=7.5)
    else:  # many cycles: dates only (the tooltips and the data table name each review)
        ax.set_xticks(xs, [short_day(k.ended + "T00:00:00Z") for k in cycles], fontsize=7.5, rotation=45,
                      ha="right", rotation_mode="anchor")
    ax.set_xlabel("Review cycle (end date and review)")
    ax.set_xlim(-0.6, len(xs) - 0.4)
    rows = [f"{k.definition or '?'} ending {short_day(k.ended + 'T00:00:00Z')}: {k.reviewed} of {k.decisions} "
            f"decisions recorded ({share(k.reviewed, k.decisions)}), {k.denied} denied, {k.denied_applied} "
            f"denials applied" for k in cycles]
    c.column_tips(xs, 0.9, rows)
    c.legend()
    return title, "Bars per review cycle. " + "; ".join(rows) + "."


def _wrap(text: str, width: int, lines: int = 2) -> str:
    wrapped = textwrap.wrap(text, width) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1] + "…"
    return "\n".join(wrapped)


CHARTS: dict[str, Callable[..., str]] = {
    "standing": standing_by_tier, "assignments": eligible_active_activated, "identity": identity_counts,
    "activations": activations_weekly, "passrate": pass_rate, "reviews": review_cycles,
}
