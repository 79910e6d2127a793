"""The evidence workbook: sheets, headers, row counts against the history, typed cells, the chart,
formula injection, the row-limit split, and a large population streamed through write-only mode."""

from __future__ import annotations

import copy
import csv
import re
import shutil
import subprocess
import tomllib
import tracemalloc
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree
from openpyxl import load_workbook

from pimtrail.config import parse_config
from pimtrail.controls.profiles import load_profile
from pimtrail.evidence import workbook, xlsx_stream
from pimtrail.evidence.pack_model import build_pack
from pimtrail.evidence.period import parse_period
from pimtrail.store import HistoryStore
from pimtrail.timeutil import parse_iso

ROOT = Path(__file__).resolve().parents[1]
HEADER_FILL = xlsx_stream.HEADER_FILL
MALICIOUS = ['=HYPERLINK("http://x","y")', "<script>x</script>", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
             "\t=1+1", "\r=1+1", "=1+1"]


@pytest.fixture(scope="module")
def history(sample_history):
    config = parse_config(tomllib.loads((ROOT / "sample_data" / "pimtrail.toml").read_text()))
    profile = load_profile(None, config)
    with HistoryStore.open(sample_history) as store:
        tenant = store.tenant(None)
        period = parse_period("2026-Q3")
        model = build_pack(store, tenant, period, profile, config)
        yield store, tenant, period, profile, model


@pytest.fixture(scope="module")
def model(history):
    return history[4]


@pytest.fixture(scope="module")
def written(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("workbook") / "pack.xlsx"
    counts = workbook.write_workbook(model, path)
    return path, counts, load_workbook(path)


def tables(ws) -> list[tuple[list[str], list[list]]]:
    """A reloaded sheet as its tables: (header, data rows); a header row is recognised by its fill."""
    out, current = [], None
    for row in ws.iter_rows():
        values = [c.value for c in row]
        if row[0].fill.fgColor.rgb == HEADER_FILL:
            current = ([v for v in values if v is not None], [])
            out.append(current)
        elif all(v is None for v in values):
            current = None
        elif current is not None:
            current[1].append(values[:len(current[0])])
    return out


def column(ws, header: str, table: int = 0) -> list:
    head, rows = tables(ws)[table]
    return [r[head.index(header)] for r in rows]


def expected_counts(m: dict) -> dict[str, int]:
    pop = m["population"]
    return {"Controls": len(m["controls"]), "Findings": sum(len(c["findings"]) for c in m["controls"]),
            "Population": len(pop), "RollForward": len(m["rollforward"]["roles"]) + len(m["rollforward"]["movements"]),
            "Eligible": sum(p["state"] == "eligible" for p in pop), "Active": sum(p["state"] == "active" for p in pop),
            "Activations": len(m["activations"]), "Approvals": len(m["approvals"]),
            "Reviews": len(m["reviews"]["decisions"]), "Policies": len(m["policies"]),
            "BreakGlass": len(m["break_glass"]["accounts"]) + len(m["break_glass"]["events"]),
            "Exceptions": len(m["exceptions"]),
            "Coverage": len(m["completeness"]["coverage"]) + len(m["scope"]["datasets"])}


def test_sheets_in_order_with_row_counts_of_the_model(written, model):
    path, counts, wb = written
    assert wb.sheetnames == workbook.SHEETS
    assert list(counts) == workbook.SHEETS
    for name, expected in expected_counts(model).items():
        assert counts[name] == expected, name
        assert sum(len(rows) for _, rows in tables(wb[name])) == expected, name
    assert len(tables(wb["Summary"])[2][1]) == len(model["series"]["points"])
    assert len(tables(wb["Manifest"])[1][1]) == len(model["cover"]["snapshots"])
    assert counts["Population"] > 0 and counts["Activations"] > 0 and counts["Reviews"] > 0


def test_population_equals_a_direct_history_query(history, written):
    """Holders at the closing snapshot straight from the facts, groups expanded to their members, privileged roles
    only: the same count as the model, the Population sheet and Eligible + Active."""
    store, tenant, period, profile, model = history
    closing = store.snapshot_as_of(tenant, period.end - timedelta(seconds=1))
    seq = closing.seq
    roles = {r["id"]: r for r in store.facts(tenant, "role_definition", seq)}
    principals = {p["id"]: p for p in store.facts(tenant, "principal", seq)}
    pim = [m for kind in ("group_pim_assignment", "group_pim_eligibility") for m in store.facts(tenant, kind, seq)
           if m.get("access", "member") == "member"]
    plain = store.facts(tenant, "group_member", seq)
    expected = 0
    for h in store.holders_on(tenant, closing.collected_at):
        if profile.tier_of(roles.get(h["role_id"]) or {"id": h["role_id"], "name": h.get("role_name")}) is None:
            continue
        if h["principal_type"] != "group":
            expected += 1
            continue
        via_pim = {m["principal_id"] for m in pim if m["group_id"] == h["principal_id"]}
        members = [m["principal_id"] for m in pim if m["group_id"] == h["principal_id"]]
        members += [m["member_id"] for m in plain
                    if m["group_id"] == h["principal_id"] and m["member_id"] not in via_pim]
        expected += sum((principals.get(m) or {}).get("type") != "group" for m in members)
    _, counts, wb = written
    assert expected == len(model["population"]) == counts["Population"] == counts["Eligible"] + counts["Active"]
    assert len(tables(wb["Population"])[0][1]) == expected
    assert set(column(wb["Eligible"], "State")) == {"eligible"} and set(column(wb["Active"], "State")) == {"active"}


def test_header_rows_are_styled_frozen_and_filtered(written):
    _, _, wb = written
    for ws in wb:
        head = [c for c in next(ws.iter_rows(max_row=1)) if c.value is not None]
        styled = [c.font.b and c.fill.fgColor.rgb == HEADER_FILL and c.alignment.wrap_text for c in head]
        assert head and all(styled), ws.title
        assert ws.freeze_panes == "A2", ws.title
        assert ws.auto_filter.ref, ws.title
        widths = [d.width for d in ws.column_dimensions.values()]
        assert widths and all(workbook.WIDTH_MIN <= w <= workbook.WIDTH_MAX for w in widths), ws.title
    assert tables(wb["Population"])[0][0] == [c.header for c in workbook.cols(workbook.HOLDING)]
    assert tables(wb["Findings"])[0][0][:4] == ["Control", "Severity", "Control status", "Status"]
    assert tables(wb["RollForward"])[1][0][:3] == ["Role", "Tier", "Change"]
    assert wb["Population"].auto_filter.ref == f"A1:N{len(tables(wb['Population'])[0][1]) + 1}"
    movements = tables(wb["RollForward"])[1]  # the largest table carries the filter
    assert wb["RollForward"].auto_filter.ref.endswith(f"{wb['RollForward'].max_row}")
    assert all(r[movements[0].index("Explaining event")] for r in movements[1])
    findings = wb["Findings"].column_dimensions
    assert findings["I"].width > findings["B"].width  # Message is wider than Severity


def test_dates_are_date_cells_and_booleans_are_booleans(written, model):
    _, _, wb = written
    ws = wb["Activations"]
    requested = column(ws, "Requested at (UTC)")
    assert requested == [parse_iso(a["requested_at"]) for a in model["activations"]]
    assert ws["A2"].is_date and ws["A2"].number_format == workbook.DT_FORMAT
    assert all(isinstance(v, bool) for v in column(ws, "Global Administrator"))
    assert all(isinstance(v, datetime) for v in column(wb["Reviews"], "Reviewed at (UTC)") if v is not None)
    assert all(isinstance(v, bool) for v in column(wb["Population"], "Permanent"))
    assert set(column(wb["Reviews"], "Deny applied")) <= {True, False, None}
    expires = wb["Exceptions"]["E2"]
    assert expires.is_date and expires.number_format == workbook.DATE_FORMAT
    assert expires.value.date() == date.fromisoformat(model["exceptions"][0]["expires"])
    figures = {r[1]: r[2] for r in tables(wb["Summary"])[0][1]}
    assert figures["Start (UTC, inclusive)"] == datetime(2026, 7, 1)
    assert figures["Name"] == model["cover"]["tenant_name"]
    assert figures["fail"] == model["summary"]["counts"]["fail"]
    assert figures["Hash chain verified"] is True


def test_summary_has_standing_access_and_a_native_line_chart(written, model):
    _, _, wb = written
    ws = wb["Summary"]
    standing = {r[0]: r[1:] for r in tables(ws)[1][1]}
    opening, closing = model["summary"]["standing"]["opening"], model["summary"]["standing"]["closing"]
    assert list(standing["Permanent active privileged (standing)"][:2]) == [opening["standing_total"],
                                                                          closing["standing_total"]]
    assert len(ws._charts) == 1
    chart = ws._charts[0]
    assert type(chart).__name__ == "LineChart"
    tiers = {str(t) for p in model["series"]["points"] for t in p["standing_by_tier"]}
    assert len(chart.series) == 1 + len(tiers)
    head, rows = tables(ws)[2]
    first = next(i for i, row in enumerate(ws.iter_rows(values_only=True), 1) if row[0] == "Snapshot (UTC)")
    assert chart.series[0].val.numRef.f == f"'Summary'!$B${first + 1}:$B${first + len(rows)}"
    assert chart.series[0].cat.numRef.f == f"'Summary'!$A${first + 1}:$A${first + len(rows)}"
    assert [r[1] for r in rows] == [p["standing_total"] for p in model["series"]["points"]]
    assert chart.anchor._from.col >= len(tables(ws)[0][0]) + 1  # right of the figures, never over them


def tiny(model: dict) -> dict:
    """A few rows of every listing, with hostile text where the tenant's text goes."""
    m = copy.deepcopy(model)
    for key in ("population", "activations", "approvals", "policies", "exceptions", "controls"):
        m[key] = m[key][:2]  # a slice of a listing kept as Rows is a list of dicts, which can be changed
    for control in m["controls"]:
        control["findings"] = control["findings"][:]
    m["rollforward"] = {k: v[:2] for k, v in m["rollforward"].items()}
    m["reviews"]["decisions"] = m["reviews"]["decisions"][:2]
    m["completeness"]["coverage"] = m["completeness"]["coverage"][:2]
    m["cover"]["tenant_name"] = MALICIOUS[0]
    for i, text in enumerate(MALICIOUS):
        m["population"].append(dict(m["population"][0], principal=text, role=MALICIOUS[-1 - i]))
    m["activations"][0]["justification"] = MALICIOUS[0]
    m["controls"][0]["findings"][0]["message"] = MALICIOUS[1]
    m["exceptions"][0]["reason"] = "=cmd\x07 bell"
    return m


def test_tenant_text_that_looks_like_a_formula_stays_inert(model, tmp_path):
    path = tmp_path / "hostile.xlsx"
    workbook.write_workbook(tiny(model), path)
    with zipfile.ZipFile(path) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
    assert not any("<f>" in xml for xml in sheets)  # no formula anywhere in the workbook
    wb = load_workbook(path)
    ws = wb["Population"]
    head, rows = tables(ws)[0]
    cells = {c.value: c for row in ws.iter_rows(min_row=2) for c in row if isinstance(c.value, str)}
    for text in MALICIOUS:
        if text not in cells:  # without lxml the writer leaves a raw CR, which XML parsers read as LF
            text = text.replace("\r", "\n")
        assert text in cells, repr(text)
        assert cells[text].data_type == "s", repr(text)
    assert cells['=HYPERLINK("http://x","y")'].quotePrefix  # Excel keeps it text even when the cell is edited
    assert cells["<script>x</script>"].value == "<script>x</script>"
    figures = {r[1]: r[2] for r in tables(wb["Summary"])[0][1]}
    assert figures["Name"] == MALICIOUS[0] and wb["Summary"]["C2"].data_type == "s"
    assert column(wb["Activations"], "Justification")[0] == MALICIOUS[0]
    assert column(wb["Findings"], "Message")[0] == MALICIOUS[1]
    assert column(wb["Exceptions"], "Reason")[0] == "=cmd\ufffd bell"  # an illegal XML character is replaced


def test_text_cell_helper():
    assert xlsx_stream.text_cell("A1", "plain") == '<c r="A1" t="inlineStr"><is><t>plain</t></is></c>'
    assert f'<c r="B2" s="{xlsx_stream.S_TEXT}" t="inlineStr">' in xlsx_stream.text_cell("B2", "=1+2")  # quote prefix
    assert xlsx_stream.text_cell("A1", "a<b&c>d").endswith("<t>a&lt;b&amp;c&gt;d</t></is></c>")
    assert len(xlsx_stream.excel_text("a" * 40_000)) == workbook.MAX_TEXT
    assert xlsx_stream.excel_text("a\x00b\ud800c\uffff") == "a\ufffdb\ufffdc\ufffd"
    assert workbook.cell_xml("A1", float("nan")) == xlsx_stream.text_cell("A1", "nan")  # Excel has no NaN
    assert workbook.cell_xml("A1", "") is None and workbook.cell_xml("A1", None) is None
    assert workbook.cell_xml("A1", 1.5, "hours") == f'<c r="A1" s="{xlsx_stream.S_HOURS}"><v>1.5</v></c>'
    assert xlsx_stream.iso_serial("2026-07-01T06:00:00Z") == 46204.25
    assert xlsx_stream.iso_serial("2026-07-01") is None and xlsx_stream.iso_serial("2026-07-01T06:00:00+02:00") is None
    assert xlsx_stream.iso_serial("2026-07-01T06:00+01Z") is None and xlsx_stream.iso_serial("2026-13-01T06:00:00Z") is None


def test_a_sheet_past_the_row_limit_continues_on_numbered_sheets(model, tmp_path, monkeypatch):
    monkeypatch.setattr(workbook, "MAX_ROWS", 5)  # header + 4 data rows per sheet
    m = tiny(model)
    m["population"] = [dict(m["population"][0], principal=f"user{i:02}") for i in range(12)]
    m["rollforward"]["roles"] = (m["rollforward"]["roles"] * 3)[:3]
    m["rollforward"]["movements"] = (m["rollforward"]["movements"] * 5)[:5]
    path = tmp_path / "split.xlsx"
    counts = workbook.write_workbook(m, path)
    wb = load_workbook(path)
    names = wb.sheetnames
    at = names.index("Population")
    assert names[at:at + 4] == ["Population", "Population (2)", "Population (3)", "RollForward"]
    assert [counts[n] for n in names[at:at + 3]] == [4, 4, 4]
    principals = []
    for name in names[at:at + 3]:
        ws = wb[name]
        head, rows = tables(ws)[0]
        assert head == [c.header for c in workbook.cols(workbook.HOLDING)]
        assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:N{len(rows) + 1}" and ws.max_row <= 5
        principals += [r[0] for r in rows]
    assert principals == [f"user{i:02}" for i in range(12)]  # every row once, in order
    # two tables on one sheet: 3 roles fill the first part, the movements go on with their own header
    roll = [n for n in names if n.startswith("RollForward")]
    assert roll == ["RollForward", "RollForward (2)", "RollForward (3)"]
    assert sum(counts[n] for n in roll) == 8
    assert tables(wb["RollForward (2)"])[0][0][2] == "Change"
    assert all(wb[n].max_row <= 5 for n in names)
    assert all(n in counts for n in names) and len(counts) == len(names)


def test_sheet_writer_streams_a_generator_across_parts(monkeypatch, tmp_path):
    monkeypatch.setattr(workbook, "MAX_ROWS", 4)
    book = xlsx_stream.XlsxBook(tmp_path / "data.xlsx")
    rows = ({"n": i, "when": "2026-07-01T06:00:00Z"} for i in range(11))  # a generator: read once
    counts = workbook.SheetWriter(book, "Data", [workbook.Block(workbook.cols("N=n:int | When=when:dt"), rows)]).write()
    assert counts == {"Data": 3, "Data (2)": 3, "Data (3)": 3, "Data (4)": 2}
    book.save()
    wb = load_workbook(tmp_path / "data.xlsx")
    assert [[r[0] for r in tables(wb[name])[0][1]] for name in counts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10]]
    assert all(isinstance(r[1], datetime) for name in counts for r in tables(wb[name])[0][1])


HOSTILE = ["a & b", "<c>x</c>", 'say "hi" & \'bye\'', "]]><f>1+1</f><![CDATA[", "</t></is></c><c><f>SUM(1)</f></c>",
           "&amp; already", "&#13; literal", "_x0041_ not an A", "tab\there", "two\nlines", "  padded  ", "\ttab first",
           "emoji \U0001F600 and \u00e9", "bell\x07 nul\x00 esc\x1b", "lone \ud800 surrogate", "not \uffff a char",
           "x" * 40_000, "=SUM(A1:A2)", "-1", "+44 20 7946 0000", "@mention"]


def written_text(text: str) -> str:
    """What a hostile text must read back as: XML-illegal characters replaced, Excel's limit applied."""
    return xlsx_stream.excel_text(text)


def test_hostile_text_is_escaped_in_the_streamed_xml(tmp_path):
    """Every text, however hostile, is well-formed XML in an inline-string cell and reads back as written."""
    path = tmp_path / "hostile.xlsx"
    book = xlsx_stream.XlsxBook(path, title="a & <b> \x07")
    rows = [{"text": t, "when": t, "n": i} for i, t in enumerate(HOSTILE)]
    workbook.SheetWriter(book, "Data", [workbook.Block(workbook.cols("Text | When:dt | N:int"), rows)]).write()
    book.save()
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith((".xml", ".rels")):
                etree.fromstring(z.read(name))  # a strict parser: raises on anything malformed
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        assert all(not info.extra for info in z.infolist())  # no zip64 records for a small file
    assert "<f>" not in sheet.replace("&lt;f&gt;", "")  # no formula cell
    assert "_x005F_x0041_" in sheet  # Excel would otherwise decode _x0041_ to "A"
    wb = load_workbook(path)
    ws = wb["Data"]
    for i, text in enumerate(HOSTILE, 2):
        for cell in (ws.cell(i, 1), ws.cell(i, 2)):
            expected = written_text(text)
            if "_x0041_" in text:  # openpyxl, unlike Excel and LibreOffice, leaves Excel's escape as it is
                expected = expected.replace("_x0041_", "_x005F_x0041_")
            assert cell.value == expected and cell.data_type == "s", (i, text[:40])
            assert cell.quotePrefix == text.startswith(workbook.FORMULA_START), text
    assert len(ws.cell(18, 1).value) == workbook.MAX_TEXT and ws.cell(18, 1).value.endswith(" [truncated]")
    assert [ws.cell(i, 3).value for i in range(2, len(HOSTILE) + 2)] == list(range(len(HOSTILE)))


def test_dates_are_excel_serial_numbers_with_a_date_style(tmp_path):
    path = tmp_path / "dates.xlsx"
    book = xlsx_stream.XlsxBook(path)
    rows = [{"at": "2026-07-01T06:00:00Z", "day": "2026-12-31"}, {"at": "2026-07-01T06:00:00.1234567Z"},
            {"at": datetime(2026, 7, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))}, {"at": "not a time", "day": "soon"}]
    workbook.SheetWriter(book, "Dates", [workbook.Block(workbook.cols("At:dt | Day:date"), rows)]).write()
    book.save()
    with zipfile.ZipFile(path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        styles = z.read("xl/styles.xml").decode()
    assert f'<c r="A2" s="{xlsx_stream.S_DT}"><v>46204.25</v></c>' in sheet  # a number, not text
    assert f'<c r="B2" s="{xlsx_stream.S_DATE}"><v>46387</v></c>' in sheet
    assert f'formatCode="{workbook.DT_FORMAT}"' in styles and f'formatCode="{workbook.DATE_FORMAT}"' in styles
    ws = load_workbook(path)["Dates"]
    assert ws["A2"].is_date and ws["A2"].number_format == workbook.DT_FORMAT
    assert ws["A2"].value == datetime(2026, 7, 1, 6) and ws["B2"].value == datetime(2026, 12, 31)
    assert ws["B2"].is_date and ws["B2"].number_format == workbook.DATE_FORMAT
    assert ws["A3"].value == datetime(2026, 7, 1, 6, 0, 0, 123000)  # Excel keeps milliseconds
    assert ws["A4"].value == datetime(2026, 7, 1, 6, 30)  # an aware time in UTC
    assert (ws["A5"].value, ws["B5"].value) == ("not a time", "soon") and not ws["A5"].is_date


def test_a_failed_write_leaves_no_workbook(model, tmp_path):
    m = tiny(model)
    m["approvals"] = [{"time": "2026-07-01T06:00:00Z"}, None]  # not a row: the writer fails half-way
    path = tmp_path / "broken.xlsx"
    with pytest.raises(AttributeError):
        workbook.write_workbook(m, path)
    assert not path.exists()


@pytest.mark.slow
def test_the_workbook_opens_in_libreoffice(model, tmp_path):
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        pytest.skip("LibreOffice is not installed")
    path = tmp_path / "hostile.xlsx"
    counts = workbook.write_workbook(tiny(model), path)
    # CSV of every sheet (the last filter token -1), UTF-8 (76), as stored rather than as shown
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path}/lo", "--headless", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1", "--outdir",
                    str(tmp_path), str(path)], check=True, capture_output=True, timeout=300)
    sheets = {}
    for name in workbook.SHEETS:
        with open(tmp_path / f"hostile-{name}.csv", encoding="utf-8", newline="") as handle:
            sheets[name] = list(csv.reader(handle))
    population = sheets["Population"]
    assert population[0] == [c.header for c in workbook.cols(workbook.HOLDING)]
    assert len(population) - 1 == counts["Population"]
    principals = [r[0] for r in population[1:]]
    assert all(t.replace("\r", "\n") in principals or t in principals for t in MALICIOUS)
    assert sheets["Exceptions"][1][2] == "=cmd\ufffd bell"
    activations = sheets["Activations"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?", activations[1][0])  # a date cell, not text


@pytest.mark.slow
def test_a_large_population_streams_through(model, tmp_path):
    """~50,000 holdings: written row by row (the model's list is the only copy)."""
    m = tiny(model)
    base = m["population"][0]
    m["population"] = [dict(base, principal=f"user{i}@example.com", principal_id=f"id-{i}",
                            state="eligible" if i % 3 else "active") for i in range(50_000)]
    path = tmp_path / "large.xlsx"
    counts = workbook.write_workbook(m, path)
    assert counts["Population"] == 50_000
    assert counts["Eligible"] + counts["Active"] == 50_000
    with zipfile.ZipFile(path) as z:  # count the rows in the sheet's XML: reloading 50,000 rows is slow
        sheets = {n: z.read(n).decode().count("<row ") for n in z.namelist() if n.startswith("xl/worksheets/sheet")}
    assert sheets[f"xl/worksheets/sheet{workbook.SHEETS.index('Population') + 1}.xml"] == 50_001


@pytest.mark.slow
def test_a_50k_row_sheet_streams_in_constant_memory(tmp_path):
    """50,000 rows from a generator (never in memory at once): the writer's own allocations stay a small constant
    (a flush buffer and the rows measured for the widths) while the sheet's XML is tens of MB."""
    def rows():
        for i in range(50_000):
            yield {"principal": f"user{i}@example.com & <co>", "role": "Global Administrator", "tier": 0,
                   "permanent": i % 2 == 0, "start": "2026-07-01T06:00:00Z", "principal_id": f"{i:036}"}
    path = tmp_path / "stream.xlsx"
    book = xlsx_stream.XlsxBook(path)
    writer = workbook.SheetWriter(book, "Population", [workbook.Block(workbook.cols(workbook.HOLDING), rows())])
    tracemalloc.start()
    try:
        writer.fill()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert writer.close() == {"Population": 50_000}
    book.save()
    with zipfile.ZipFile(path) as z:
        size = z.getinfo("xl/worksheets/sheet1.xml").file_size
        assert z.read("xl/worksheets/sheet1.xml").count(b"<row ") == 50_001
    assert size > 10_000_000 and peak < 4_000_000, (size, peak)
