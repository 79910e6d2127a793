"""The evidence pack as an Excel workbook: every row of every listing, streamed.

Each sheet is a list of blocks (a table: columns and an iterable of row dicts). Rows are converted one at a
time into the sheet's XML (`xlsx_stream`: inline strings, numbers, dates as serial numbers with a date
style), so a sheet never exists in memory, not even once. A sheet that would pass Excel's row limit continues
on `Name (2)`, `Name (3)`... with the header repeated. Text from the tenant is always a string cell, never a
formula; text that a spreadsheet could take for one also gets Excel's quote prefix (`xlsx_stream.text_cell`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import chain, islice
from pathlib import Path
from typing import Any

from openpyxl.chart import LineChart, Reference
from openpyxl.chart.axis import DateAxis
from openpyxl.chart.reference import DummyWorksheet
from openpyxl.utils import get_column_letter as letter

from pimtrail.evidence.machine import FORMULA_START
from pimtrail.evidence.xlsx_stream import (DATE_FORMAT, DT_FORMAT, HOURS_FORMAT, MAX_TEXT, S_DT,  # noqa: F401
                                           S_HEADER, S_HOURS, S_TITLE, UNSAFE, Part, XlsxBook, bool_cell, date_cell,
                                           iso_serial, number_cell, text_cell)
from pimtrail.timeutil import parse_iso

SHEETS = ["Summary", "Controls", "Findings", "Population", "RollForward", "Eligible", "Active", "Activations",
          "Approvals", "Reviews", "Policies", "BreakGlass", "Exceptions", "Coverage", "Manifest"]
MAX_ROWS = 1_048_576  # Excel's limit per sheet; module-level so tests can lower it
WIDTH_MIN, WIDTH_MAX, PEEK = 6, 60, 500  # widths come from the header and the first PEEK rows of each table
KIND_WIDTH = {"dt": 17, "date": 11, "bool": 6}
STATUSES = ("fail", "warn", "pass", "not_assessable", "excepted")  # coloured by conditional formats
_LEAD, _EDGE = "".join(FORMULA_START) + " \n", " \t\n\r"  # first and last characters that need text_cell
def _to_time(value: str | None) -> datetime | None:
    try:
        return (parse_iso(value) if "T" in value else datetime.fromisoformat(value[:10])) if value else None
    except ValueError:
        return None  # not a timestamp after all: kept as text


def cell_xml(ref: str, value: Any, kind: str = "text") -> str | None:
    """One model value -> the XML of its cell at `ref`, or None for an empty cell: a number, a bool, a date
    (an ISO string too in a `dt` or `date` column), a number with two decimals in an `hours` column, or text
    (lists and dicts joined)."""
    if value is None or value == "":
        return None
    if type(value) is str:
        if kind == "dt" or kind == "date":
            moment = _to_time(value)
            if moment is not None:
                return date_cell(ref, moment, kind == "date")
        return text_cell(ref, value)
    if isinstance(value, bool):
        return bool_cell(ref, value)
    if isinstance(value, (int, float)):
        return number_cell(ref, value, S_HOURS if kind == "hours" else 0)
    if isinstance(value, (datetime, date)):
        return date_cell(ref, value, kind == "date" or not isinstance(value, datetime))
    if isinstance(value, str):  # a str subclass: as its text
        return cell_xml(ref, str(value), kind)
    return text_cell(ref, _text(value))


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return ", ".join(_text(v) for v in value) if isinstance(value, (list, tuple, set)) else str(value)


def _cells(spec: list[tuple], row: dict, r: str, careful: bool) -> tuple[list[str], list[str]]:
    """One row's cells (each column's (letter, function, key, kind, timed, hours) in `spec`), and its plain text
    values. Ints, booleans, Graph's UTC timestamps and text are formatted inline; text only when `careful` is
    false: the caller checks the row's text at once (`UNSAFE`, "_x", length) and if need be asks again with
    `careful`, when `text_cell` escapes and cuts each text."""
    get, cells, texts = row.get, [], []
    for col, fn, key, kind, timed, hours in spec:
        value = get(key) if fn is None else fn(row)
        if value is None:
            continue
        t = type(value)
        if t is str:
            if not value:
                continue
            if timed:  # a date cell, or text (escaped by text_cell) when it is no timestamp after all
                serial = iso_serial(value) if kind == "dt" else None
                cells.append(f'<c r="{col}{r}" s="{S_DT}"><v>{serial!r}</v></c>' if serial is not None
                             else cell_xml(col + r, value, kind))
            elif careful or value[0] in _LEAD or value[-1] in _EDGE:  # formula-like, spaces to keep...
                cells.append(text_cell(col + r, value))
            else:
                texts.append(value)
                cells.append(f'<c r="{col}{r}" t="inlineStr"><is><t>{value}</t></is></c>')
        elif t is bool:
            cells.append(f'<c r="{col}{r}" t="b"><v>{value:d}</v></c>')
        elif t is int and not hours:
            cells.append(f'<c r="{col}{r}"><v>{value}</v></c>')
        elif (xml := cell_xml(col + r, value, kind)) is not None:
            cells.append(xml)
    return cells, texts


@dataclass
class Col:
    header: str
    key: str | Callable[[dict], Any]
    kind: str = "text"  # text, status (coloured), dt, date, bool, int, hours, any

    def get(self, row: dict) -> Any:
        return self.key(row) if callable(self.key) else row.get(self.key)


def cols(spec: str, **computed: Callable[[dict], Any]) -> list[Col]:
    """`"Header=key:kind | ..."` -> columns. The key defaults to the header in snake case (`Principal type` ->
    `principal_type`), the kind to text; a key named in `computed` is worked out by that function."""
    items = [re.fullmatch(r"\s*([^=:]+?)\s*(?:=(\w+))?(?::(\w+))?\s*", item).groups() for item in spec.split("|")]
    keys = [k or re.sub(r"[ -]", "_", h.lower()) for h, k, _ in items]
    return [Col(h, computed.get(k, k), kind or "text") for (h, _, kind), k in zip(items, keys)]


@dataclass
class Block:
    cols: list[Col]
    rows: Iterable[dict]
    title: str | None = None  # shown above the header when the block is not the first of its sheet
    highlight: tuple[str, bool] | None = None  # (header of a bool column, value) that marks the whole row


@dataclass
class _Part:
    sheet: Part
    data: int = 0
    spans: list[list] = field(default_factory=list)  # [block, header row, last row] of each table on it

    @property
    def rows(self) -> int:  # rows used, headers and titles included
        return self.sheet.rows


class SheetWriter:
    """Streams blocks into one sheet, going on in `Name (2)`... when Excel's row limit is reached."""

    def __init__(self, book: XlsxBook, name: str, blocks: list[Block]):
        self.book, self.name, self.blocks, self.parts = book, name, blocks, []
        self.widths: dict[int, float] = {}
        for block in blocks:  # measure the first rows of each block; the rest is streamed unmeasured
            head = list(islice(rows := iter(block.rows), PEEK))
            block.rows = chain(head, rows)
            for i, col in enumerate(block.cols, 1):
                words = max((len(w) for w in col.header.split()), default=0)
                need = max(words + 2, min(len(col.header) + 2, 18), KIND_WIDTH.get(col.kind, 0) + 2,
                           *(0 if v is None or col.kind in ("dt", "date") else len(_text(v)) + 2
                             for v in map(col.get, head)))
                self.widths[i] = min(WIDTH_MAX, max(WIDTH_MIN, need, self.widths.get(i, 0)))

    def write(self) -> dict[str, int]:
        """Every block, then the sheet (or its parts) handed to the book; the data rows per sheet title."""
        self.fill()
        return self.close()

    def fill(self) -> None:
        for block in self.blocks:
            self._start(block)
            self._rows(block)
        if not self.parts:
            self._new_part(None)

    def _rows(self, block: Block) -> None:
        spec = [(letter(i), c.key if callable(c.key) else None, c.key, c.kind, c.kind in ("dt", "date"),
                 c.kind == "hours") for i, c in enumerate(block.cols, 1)]
        width, part = len(spec), self.parts[-1]
        sheet, span = part.sheet, part.spans[-1]
        for row in block.rows:
            if sheet.rows >= MAX_ROWS:
                self._new_part(block)
                part = self.parts[-1]
                sheet, span = part.sheet, part.spans[-1]
            r = str(sheet.rows + 1)
            cells, texts = _cells(spec, row, r, False)
            if texts and (len(blob := "".join(texts)) > MAX_TEXT or "_x" in blob or UNSAFE.search(blob)):
                cells = _cells(spec, row, r, True)[0]
            sheet.raw_row(f'<row r="{r}">{"".join(cells)}</row>', width)
            part.data += 1
            span[2] = sheet.rows

    def close(self) -> dict[str, int]:
        for part in self.parts:
            self._finish(part)
            part.sheet.close()
        return {p.sheet.title: p.data for p in self.parts}

    def _new_part(self, block: Block | None) -> None:
        title = self.name if not self.parts else f"{self.name} ({len(self.parts) + 1})"
        self.parts.append(_Part(self.book.sheet(title, self.widths)))  # frozen at A2, header printed on each page
        if block is not None:
            self._header(block)

    def _start(self, block: Block) -> None:
        part = self.parts[-1] if self.parts else None
        if part is None or part.rows + (3 if block.title else 2) + 1 > MAX_ROWS:
            self._new_part(block)  # a table that starts a sheet needs no title: the sheet's name says it
            return
        part.sheet.skip()
        if block.title:
            part.sheet.row([text_cell(f"A{part.rows + 1}", block.title, S_TITLE)], 1)
        self._header(block)

    def _header(self, block: Block) -> None:
        part = self.parts[-1]
        lines = max(-(-len(c.header) // max(1, int(self.widths[i] - 1))) for i, c in enumerate(block.cols, 1))
        r = part.rows + 1
        cells = [text_cell(f"{letter(i)}{r}", c.header, S_HEADER) for i, c in enumerate(block.cols, 1)]
        part.sheet.row(cells, len(cells), height=15 * min(3, lines))
        part.spans.append([block, part.rows, part.rows])

    def _finish(self, part: _Part) -> None:
        sheet = part.sheet
        if not part.spans:
            return
        block, first, last = max(part.spans, key=lambda s: s[2] - s[1])  # the filter goes on the largest table
        sheet.autofilter = f"A{first}:{letter(len(block.cols))}{last}"
        for block, first, last in part.spans:
            if last <= first:
                continue
            for i, col in enumerate(block.cols, 1):
                for status in STATUSES if col.kind == "status" else ():
                    sheet.cell_is(f"{letter(i)}{first + 1}:{letter(i)}{last}", status, status)
            if block.highlight:
                header, value = block.highlight
                cell = f"${letter(1 + [c.header for c in block.cols].index(header))}{first + 1}"
                sheet.expression(  # a blank cell equals FALSE in Excel: match real booleans only
                    f"A{first + 1}:{letter(len(block.cols))}{last}",
                    f"AND(ISLOGICAL({cell}),{cell}={str(value).upper()})", "highlight")


# -- the pack's sheets -----------------------------------------------------------------------------------------------
HOLDING = ("Principal | Principal type | Role | Tier:int | State | Permanent:bool | Via | Outside PIM:bool | "
           "Assignment type | Start (UTC)=start:dt | End (UTC)=end:dt | Principal id | Role id | Group id")
FIGURES = cols("Section | Figure | Value:any")
SEVERITIES = ("critical", "high", "medium", "low", "info")
METRICS = {"Permanent active privileged (standing)": "standing_total", "Eligible": "eligible",
           "Active assignments": "active_assigned", "Activated at the snapshot": "activated",
           "Global Administrator holders": "ga_holders", "Break-glass accounts": "break_glass",
           "Assigned outside PIM": "outside_pim", "Privileged principals": "privileged_principals"}


def _tiers(point: dict | None) -> dict[str, int]:
    """A snapshot's standing access by tier, as {"Tier 0": n, ...} (the keys are str or int, JSON or not)."""
    return {f"Tier {t}": n for t, n in (point or {}).get("standing_by_tier", {}).items()}


def _figures(sections: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"section": s, "figure": f, "value": v} for s, items in sections.items() for f, v in items.items()]


def _cover(model: dict) -> dict[str, dict[str, Any]]:
    """The cover's figures by section: the top of both the Summary and the Manifest."""
    c, standing = model["cover"], model["summary"]["standing"]
    return {"Tenant": {"Name": c["tenant_name"], "Tenant id": c["tenant_id"], "Default domain": c["default_domain"]},
            "Period": {"Period": c["period"], "Start (UTC, inclusive)": _to_time(c["start"]),
                       "End (UTC, exclusive)": _to_time(c["end"]), "Last day": date.fromisoformat(c["last_day"]),
                       "Opening snapshot (UTC)": _to_time((standing["opening"] or {}).get("collected_at")),
                       "Closing snapshot (UTC)": _to_time((standing["closing"] or {}).get("collected_at")),
                       "Snapshots used": len(c["snapshots"]),
                       "Opening snapshot taken after the period start": c["opening_is_late"]},
            "Report": {"Generated at (UTC)": _to_time(c["generated_at"]), "Tool version": c["tool_version"],
                       "Profile": c["profile"], "Run id": c["run_id"]}}


def _summary(model: dict) -> list[Block]:
    summary, pop, points = model["summary"], model["population"], model["series"]["points"]
    roles, moves = model["rollforward"]["roles"], model["rollforward"]["movements"]
    opening, closing = summary["standing"]["opening"] or {}, summary["standing"]["closing"] or {}
    figures = _cover(model) | {
        "Control results": summary["counts"],
        "Failed controls by severity": {s: summary["failed_by_severity"].get(s, 0) for s in SEVERITIES},
        "Population at period end": {"Privileged holdings": len(pop),
                                     "Eligible": sum(p["state"] == "eligible" for p in pop),
                                     "Active": sum(p["state"] == "active" for p in pop)},
        "Roll-forward": {"Roles balanced": f"{sum(r['balanced'] for r in roles)} of {len(roles)}",
                         "Unexplained movements": sum(not m["explained"] for m in moves)},
        "Activity": {"Activations in the period": summary["activations"], "Approval decisions": len(model["approvals"]),
                     "Access review decisions": len(model["reviews"]["decisions"])},
        "Exceptions": {"In force": sum(e.get("status") == "in force" for e in model["exceptions"])},
        "Completeness": {"Hash chain verified": model["completeness"]["chain"]["verified"],
                         "Coverage gaps": len(model["completeness"]["gaps"])}}
    points = [p | _tiers(p) for p in points]
    tiers = sorted({t for p in points for t in _tiers(p)}, key=lambda t: (len(t), t))
    standing = [(f"Standing, {t.lower()}", _tiers(opening).get(t), _tiers(closing).get(t)) for t in tiers]
    standing = [{"figure": f, "opening": o, "closing": c, "change": None if o is None or c is None else c - o}
                for f, o, c in standing + [(label, opening.get(k), closing.get(k)) for label, k in METRICS.items()]]
    previous = "" if summary["previous_period_available"] else " (no snapshot before the period)"
    series = cols("Snapshot (UTC)=collected_at:dt | Standing total:int")
    series += [Col(label, k, "int") for label, k in [(t, t) for t in tiers] + list(METRICS.items())[1:]]
    return [Block(FIGURES, _figures(figures)),
            Block(cols("Standing access=figure | Opening:int | Closing:int | Change:int"), standing,
                  "Standing access: opening and closing snapshot"),
            Block(series, points, "Standing access at each snapshot"),
            Block(cols("Control=control_id | Title | Previous:status | Now:status"), summary["changes"],
                  f"Control status changes since the previous period{previous}")]


def _add_chart(writer: SheetWriter, points: list[dict]) -> None:
    """A native line chart of standing access per snapshot, beside the key figures and clear of the tables."""
    where = {id(b): (part, first, last) for part in writer.parts for b, first, last in part.spans}
    figures, (part, first, last) = writer.blocks[0], where[id(writer.blocks[2])]
    if last <= first:
        return
    chart = LineChart()
    chart.title = "Standing access (permanent active privileged)"
    chart.y_axis.title, chart.y_axis.crossAx, chart.y_axis.delete = "Assignments", 500, False
    chart.x_axis = DateAxis(crossAx=100)
    chart.x_axis.title, chart.x_axis.delete, chart.x_axis.axPos = "Snapshot (UTC)", False, "b"
    start, end = _to_time(points[0]["collected_at"]), _to_time(points[-1]["collected_at"])
    chart.x_axis.number_format, chart.x_axis.majorTimeUnit = DATE_FORMAT, "days"
    chart.x_axis.majorUnit = 7 * max(1, -(-((end - start).days // 7) // 12))  # whole weeks, about 12 labels
    last_col = 1 + len(writer.blocks[2].cols) - len(METRICS)  # the standing total and each tier
    sheet = DummyWorksheet(part.sheet.title)
    chart.add_data(Reference(sheet, min_col=2, max_col=last_col, min_row=first, max_row=last), titles_from_data=True)
    for line in chart.series:
        line.smooth, line.marker.symbol = False, "circle"
    chart.set_categories(Reference(sheet, min_col=1, min_row=first + 1, max_row=last))
    chart.width, chart.height = 22, max(5.0, min(10.0, (where[id(figures)][2] - 1) * 0.5))  # as tall as the figures
    part.sheet.add_chart(chart, f"{letter(len(figures.cols) + 2)}2")


def _expected(e: dict | None) -> str | None:
    """A tier rule in words: `max 1 h, MFA, justification, approval (1)`."""
    e = e or {}
    parts = [e.get("max_activation_hours") is not None and f"max {e['max_activation_hours']:g} h",
             e.get("require_mfa") and "MFA", e.get("require_justification") and "justification", e.get("require_ticket")
             and "ticket", e.get("require_approval") and f"approval ({e.get('min_approvers') or 1})"]
    return ", ".join(p for p in parts if p) or None


def _manifest(model: dict) -> list[Block]:
    comp, sample, ch = model["completeness"], model.get("activation_sample") or {}, model["completeness"]["chain"]
    rows = _figures(_cover(model) | {
        "Completeness": {"Hash chain verified": ch["verified"], "Snapshots verified": ch["snapshots"], "First broken link":
                         ch["first_broken"] or "none", "Closing chain hash": ch["closing_chain_hash"]},
        "Sample": {"Activation sample seed": sample.get("seed"), "Method": sample.get("method")}})
    rows += [{"section": "Completeness", "figure": "Coverage gap", "value": g} for g in comp["gaps"]]
    rows += [{"section": "Limits", "figure": "Known limit", "value": x} for x in comp["limits"]]
    return [Block(FIGURES, rows),
            Block(cols("Seq:int | Collected at (UTC)=collected_at:dt | Status | Source | Content hash | Chain hash"),
                  model["cover"]["snapshots"], "Snapshots used, with their hash-chain links")]


def _sheets(model: dict) -> Iterator[tuple[str, list[Block]]]:
    """Every sheet after Summary, in order, as (name, blocks)."""
    pop, sample = model["population"], set((model.get("activation_sample") or {}).get("rows") or [])
    yield "Controls", [Block(cols(
        "Control=control_id | Title | Severity | Status:status | Findings=n:int | Failing:int | Reason | Frameworks | "
        "Rationale | Remediation", n=lambda r: len(r["findings"]),
        failing=lambda r: sum(f["status"] == "fail" for f in r["findings"])), model["controls"])]
    findings = ({**(f.get("subject") or {}), "finding_status": f["status"], "message": f["message"], "control": c}
                for c in model["controls"] for f in c["findings"])
    yield "Findings", [Block(cols(
        "Control=control_id | Severity | Control status=status:status | Status=finding_status:status | "
        "Principal=principal_name | Principal type | Role | Group | Message | Remediation | Control title=title | "
        "Principal id", **{k: lambda r, k=k: r["control"][k] for k in ("control_id", "severity", "status",
                                                                          "remediation", "title")}), findings)]
    yield "Population", [Block(cols(HOLDING), pop)]
    yield "RollForward", [
        Block(cols("Role | Tier:int | Opening:int | Added:int | Removed:int | Closing:int | Balanced:bool | Role id"),
              model["rollforward"]["roles"], highlight=("Balanced", False)),
        Block(cols("Role | Tier:int | Change | Principal | State | Via | Permanent:bool | "
                   "After snapshot (UTC)=after:dt | Observed at snapshot (UTC)=observed:dt | Explained:bool | "
                   "Explaining event=event | Event time (UTC)=event_time:dt | By | Event id | Principal id",
                   event=lambda m: m["event"] or "unexplained"), model["rollforward"]["movements"],
              "Movements: each addition and removal, with the event that explains it", ("Explained", False))]
    yield "Eligible", [Block(cols(HOLDING), (p for p in pop if p["state"] == "eligible"))]
    yield "Active", [Block(cols(HOLDING), (p for p in pop if p["state"] == "active"))]
    yield "Activations", [Block(cols(
        "Requested at (UTC)=requested_at:dt | Start (UTC)=start:dt | End (UTC)=end:dt | Principal | Role | Scope | "
        "Hours=duration_hours:hours | Justification | Approval | Outcome | Approvers | Self-approved:bool | "
        "Global Administrator=global_admin:bool | Off hours:bool | In audit sample=sampled:bool | Correlation id | "
        "Principal id | Role id | Group id", sampled=lambda a: a["correlation_id"] in sample),
        model["activations"], highlight=("Global Administrator", True))]
    yield "Approvals", [Block(cols("Time (UTC)=time:dt | Requester | Role | Approver | Decision | Self-approval:bool | "
                                   "Correlation id"), model["approvals"], highlight=("Self-approval", True))]
    names = {d["id"]: d.get("name") for d in model["reviews"]["definitions"]}
    instances = {i["id"]: i | {"review": names.get(i.get("definition_id"))} for i in model["reviews"]["instances"]}
    of_instance = {k: lambda d, k=k: instances.get(d["instance_id"], {}).get(k) for k in ("review", "start", "end")}
    yield "Reviews", [Block(cols(
        "Review | Instance start (UTC)=start:dt | Instance end (UTC)=end:dt | Principal | Resource | Decision | "
        "Reviewer | Reviewed at (UTC)=reviewed_at:dt | Justification | Apply result | Applied at (UTC)=applied_at:dt | "
        "Deny applied=removal_effective:bool | Instance id", **of_instance),
        model["reviews"]["decisions"], highlight=("Deny applied", False))]
    yield "Policies", [Block(cols(
        "Role | Tier:int | Status:status | Max activation | MFA:bool | Auth context | Justification:bool | "
        "Ticket:bool | Approval required:bool | Approvers | Tier expects=expected | Gaps",
        expected=lambda r: _expected(r["expected"])), model["policies"])]
    bg = model["break_glass"]
    yield "BreakGlass", [Block(cols("Account | Status:status | State | Evidence"), bg["accounts"]),
                         Block(cols("Time (UTC)=time:dt | Account | What"), bg["events"],
                               "Sign-ins and activity of the break-glass accounts in the period")]
    yield "Exceptions", [Block(cols("Control | Subject | Reason | Approver | Expires:date | Status"),
                               model["exceptions"])]
    yield "Coverage", [
        Block(cols("Seq:int | Collected at (UTC)=collected_at:dt | Dataset | Status | Rows:int | Pages:int | "
                   "Requests:int | Error | HTTP status:int | Window from (UTC)=window_from:dt | "
                   "Window to (UTC)=window_to:dt"), model["completeness"]["coverage"]),
        Block(cols("Dataset | Graph query=query | Permission | Status at closing=status | Rows:int | Pages:int | "
                   "Optional:bool | Error"), (model.get("scope") or {}).get("datasets", []),
              "Datasets behind the pack (closing snapshot)")]
    yield "Manifest", _manifest(model)


def write_workbook(model: dict, path: Path) -> dict[str, int]:
    """Write the pack model as an .xlsx; returns the data rows (headers and titles apart) per sheet title."""
    title = f"pimtrail evidence pack {model['cover']['tenant_name'] or ''} {model['cover']['period']}"
    book = XlsxBook(Path(path), title=title)
    try:
        writer = SheetWriter(book, "Summary", _summary(model))
        writer.fill()
        _add_chart(writer, model["series"]["points"])
        counts = writer.close()
        for name, blocks in _sheets(model):
            counts |= SheetWriter(book, name, blocks).write()
        book.save()
    except BaseException:
        book.abort()
        raise
    return counts
