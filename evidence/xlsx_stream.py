"""A streaming .xlsx writer: the package is generated here, each worksheet's rows stream as plain XML.

openpyxl's write-only mode costs ~20 µs a cell (a `WriteOnlyCell` and an lxml element each); the evidence
pack has millions of cells. Here a cell is one formatted string: text as an inline string (`t="inlineStr"`,
no shared-strings table to hold in memory), numbers and booleans as values, dates and times as Excel serial
numbers with a date style. A sheet's rows go to a temporary file as they come (memory does not grow with
the rows) and are copied into the zip when the sheet is finished, behind a head that then knows the sheet's
dimension and after which come the autofilter, the conditional formats and the drawing.

Only the chart and its drawing are serialised by openpyxl (small, and its chart model is what the
workbook module builds); `styles.xml` is a fixed table: `S_*` are its cell formats, `DXF_*` its
conditional formats.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from datetime import date, datetime, timezone
from typing import BinaryIO

from openpyxl.chart._chart import ChartBase
from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing
from openpyxl.packaging.core import DocumentProperties
from openpyxl.utils import get_column_letter as letter
from openpyxl.writer.theme import theme_xml
from openpyxl.xml.functions import tostring

from pimtrail.evidence.machine import FORMULA_START, XML_ILLEGAL

MAX_TEXT = 32_767  # Excel's limit per cell
DT_FORMAT, DATE_FORMAT, HOURS_FORMAT = "yyyy-mm-dd hh:mm", "yyyy-mm-dd", "0.00"
S_DT, S_DATE, S_HOURS, S_TEXT, S_HEADER, S_TITLE = 1, 2, 3, 4, 5, 6  # cell formats (xf ids) of styles.xml
HEADER_FILL, HEADER_FONT = "FF1F3864", "FFFFFFFF"
DXF = {"fail": "FFF8CBAD", "warn": "FFFFE699", "pass": "FFC6EFCE", "not_assessable": "FFD9D9D9",
       "excepted": "FFDDEBF7", "highlight": "FFFCE4D6"}  # conditional fills, in their dxf order
FLUSH_ROWS = 512

# Text that needs more than copying: markup, CR (an XML parser would read it as LF) and illegal characters;
# so does text with "_x", in case it holds what Excel would decode as one of its `_xHHHH_` escapes.
UNSAFE = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_EXCEL_ESCAPE = re.compile("_(x[0-9A-Fa-f]{4}_)")
_SPACE = " \t\n\r"
EPOCH = datetime(1899, 12, 30)

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def excel_text(text: str) -> str:
    """The text as the workbook stores it: characters XML cannot carry replaced by U+FFFD, and cut to Excel's
    limit per cell (with a visible mark)."""
    text = XML_ILLEGAL.sub("\ufffd", text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT - 12] + " [truncated]"
    return text


def escape(text: str) -> str:
    """Text for an XML element or attribute value (quotes escaped as well)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\r", "&#13;"))


def text_cell(ref: str, text: str, style: int = 0) -> str:
    """An inline-string cell. Formula-looking text gets a quote-prefix style: a string cell is never evaluated,
    and Excel keeps it text when a user edits it."""
    if len(text) > MAX_TEXT or "_x" in text or UNSAFE.search(text):
        text = excel_text(text)
        body = (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;"))
        if "_x" in body:
            body = _EXCEL_ESCAPE.sub(r"_x005F_\1", body)
    else:
        body = text
    if not style and text.startswith(FORMULA_START):
        style = S_TEXT
    space = ' xml:space="preserve"' if text[0] in _SPACE or text[-1] in _SPACE else ""
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t{space}>{body}</t></is></c>'


def serial(value: date) -> float | int:
    """A date or datetime as Excel's serial number (days since 1899-12-30; openpyxl's convention, so a value
    reads back the same); an aware datetime is taken in UTC."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    elif value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    days = (value - EPOCH).days
    if 0 < days <= 60:  # Excel's phantom 1900-02-29
        days -= 1
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    if not seconds and not value.microsecond:
        return days
    return days + (seconds + value.microsecond / 1e6) / 86400


def iso_serial(value: str) -> float | None:
    """Graph's `2026-07-01T06:00:00Z` (the common form) as Excel's serial number; None for any other text."""
    if len(value) != 20 or value[19] != "Z" or value[10] != "T":
        return None
    try:
        moment = datetime.fromisoformat(value[:19])
    except ValueError:
        return None
    if moment.tzinfo is not None:  # e.g. 2026-07-01T06:00+01Z: not Graph's form (nor a valid time)
        return None
    days = moment - EPOCH
    return days.days + days.seconds / 86400 if days.days > 60 else None  # Excel's odd 1900: `serial`


def date_cell(ref: str, value: date, plain: bool = False) -> str:
    return f'<c r="{ref}" s="{S_DATE if plain else S_DT}"><v>{serial(value)!r}</v></c>'


def number_cell(ref: str, value: int | float, style: int = 0) -> str:
    """A number cell; a float that is not finite (Excel has no such number) as its text."""
    if type(value) is float and not math.isfinite(value):
        return text_cell(ref, repr(value))
    text = repr(value) if type(value) is int or type(value) is float else (
        repr(float(value)) if isinstance(value, float) else str(int(value)))  # subclasses (IntEnum...) as numbers
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s}><v>{text}</v></c>'


def bool_cell(ref: str, value: bool) -> str:
    return f'<c r="{ref}" t="b"><v>{1 if value else 0}</v></c>'


class Part:
    """One worksheet, rows streamed to a temporary file; `close()` hands it to the book."""

    def __init__(self, book: "XlsxBook", title: str, widths: dict[int, float]):
        self.book, self.title, self.widths = book, title, dict(widths)
        self.file: BinaryIO = tempfile.TemporaryFile(prefix="pimtrail-sheet-")
        self.buffer: list[str] = []
        self.rows = 0  # the last row number used
        self.max_col = 1
        self.autofilter: str | None = None
        self.rules: list[tuple[str, str]] = []  # (sqref, cfRule XML without priority)
        self.charts: list[tuple[ChartBase, str]] = []

    def row(self, cells: list[str], max_col: int, height: float | None = None) -> int:
        """Append a row of cell XML (each cell carries its own reference); returns its number."""
        self.rows += 1
        ht = f' ht="{height:g}" customHeight="1"' if height else ""
        self.buffer.append(f'<row r="{self.rows}"{ht}>{"".join(cells)}</row>')
        if max_col > self.max_col:
            self.max_col = max_col
        if len(self.buffer) >= FLUSH_ROWS:
            self.flush()
        return self.rows

    def raw_row(self, xml: str, max_col: int) -> None:
        """Append a row already formatted (its number must be `self.rows + 1`)."""
        self.rows += 1
        self.buffer.append(xml)
        if max_col > self.max_col:
            self.max_col = max_col
        if len(self.buffer) >= FLUSH_ROWS:
            self.flush()

    def skip(self) -> None:
        """An empty row."""
        self.rows += 1

    def flush(self) -> None:
        if self.buffer:
            self.file.write("".join(self.buffer).encode("utf-8"))
            self.buffer.clear()

    def cell_is(self, sqref: str, value: str, dxf: str) -> None:
        formula = escape('"' + value.replace('"', '""') + '"')
        self.rules.append((sqref, f'type="cellIs" dxfId="{list(DXF).index(dxf)}" operator="equal"><formula>'
                                  f"{formula}</formula>"))

    def expression(self, sqref: str, formula: str, dxf: str) -> None:
        self.rules.append((sqref, f'type="expression" dxfId="{list(DXF).index(dxf)}"><formula>{escape(formula)}'
                                  "</formula>"))

    def add_chart(self, chart: ChartBase, anchor: str) -> None:
        self.charts.append((chart, anchor))

    def close(self) -> None:
        self.flush()
        self.book._add_part(self)


class XlsxBook:
    """A workbook written as its sheets are closed; `save()` writes the workbook parts around them."""

    def __init__(self, path, title: str = "", creator: str = "pimtrail"):
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)  # zlib's level 6: level 1 saves ~1 s in 8, +20 %
        self.title, self.creator = excel_text(title), excel_text(creator)
        self.sheets: list[Part] = []
        self.names: set[str] = set()
        self.charts = 0

    def sheet(self, title: str, widths: dict[int, float]) -> Part:
        if title.lower() in self.names or len(title) > 31 or re.search(r"[][:*?/\\]", title):
            raise ValueError(f"bad or duplicate sheet name {title!r}")
        self.names.add(title.lower())
        return Part(self, title, widths)

    def _add_part(self, part: Part) -> None:
        self.sheets.append(part)
        number = len(self.sheets)
        rels = []
        if part.charts:
            drawing = SpreadsheetDrawing()
            drawing._id = number
            for chart, anchor in part.charts:
                self.charts += 1
                chart._id, chart.anchor = self.charts, anchor
                drawing.charts.append(chart)
                self.zip.writestr(chart.path[1:], tostring(chart._write()))
            self.zip.writestr(drawing.path[1:], tostring(drawing._write()))
            self.zip.writestr(f"xl/drawings/_rels/drawing{number}.xml.rels", tostring(drawing._write_rels()))
            rels.append(f'<Relationship Id="rId1" Type="{NS_REL}/drawing" Target="/{drawing.path[1:]}"/>')
        if rels:
            self.zip.writestr(f"xl/worksheets/_rels/sheet{number}.xml.rels", XML_DECL + f'<Relationships '
                              f'xmlns="{NS_PKG_REL}">{"".join(rels)}</Relationships>')
        head, tail = self._head(part, number == 1).encode(), self._tail(part).encode()
        size = part.file.tell()
        info = zipfile.ZipInfo(f"xl/worksheets/sheet{number}.xml", time.localtime()[:6])
        info.compress_type, info.file_size = zipfile.ZIP_DEFLATED, len(head) + size + len(tail)
        part.file.seek(0)
        with self.zip.open(info, "w") as out:  # zip64 only when the declared size needs it
            out.write(head)
            shutil.copyfileobj(part.file, out, 1 << 20)
            out.write(tail)
        part.file.close()

    def _head(self, part: Part, first: bool) -> str:
        dim = f"A1:{letter(part.max_col)}{part.rows}" if part.rows else "A1"
        cols = "".join(f'<col min="{i}" max="{i}" width="{w:g}" customWidth="1"/>' for i, w in sorted(part.widths.items()))
        selected = ' tabSelected="1"' if first else ""
        return (f'{XML_DECL}<worksheet xmlns="{NS_MAIN}" xmlns:r="{NS_REL}"><sheetPr><pageSetUpPr fitToPage="1"/>'
                f'</sheetPr><dimension ref="{dim}"/><sheetViews><sheetView{selected} '
                'workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
                '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
                f'<sheetFormatPr defaultRowHeight="15"/>{f"<cols>{cols}</cols>" if cols else ""}<sheetData>')

    def _tail(self, part: Part) -> str:
        out = ["</sheetData>"]
        if part.autofilter:
            out.append(f'<autoFilter ref="{part.autofilter}"/>')
        for priority, (sqref, rule) in enumerate(part.rules, 1):
            out.append(f'<conditionalFormatting sqref="{sqref}"><cfRule priority="{priority}" {rule}</cfRule>'
                       "</conditionalFormatting>")
        out.append('<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/>'
                   '<pageSetup orientation="landscape" fitToWidth="1" fitToHeight="0"/>')
        if part.charts:
            out.append('<drawing r:id="rId1"/>')
        return "".join(out) + "</worksheet>"

    def save(self) -> None:
        z, n = self.zip, len(self.sheets)
        sheets = "".join(f'<sheet name="{escape(p.title)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, p in enumerate(self.sheets, 1))
        names = []
        for i, p in enumerate(self.sheets):
            quoted = "'" + p.title.replace("'", "''") + "'"
            if p.autofilter:
                ref = "$" + "$".join(re.fullmatch(r"([A-Z]+)(\d+):([A-Z]+)(\d+)", p.autofilter).group(1, 2))
                ref += ":$" + "$".join(re.fullmatch(r"([A-Z]+)(\d+):([A-Z]+)(\d+)", p.autofilter).group(3, 4))
                names.append(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
                             f"{escape(quoted)}!{ref}</definedName>")
            names.append(f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">{escape(quoted)}!$1:$1'
                         "</definedName>")
        z.writestr("xl/workbook.xml", f'{XML_DECL}<workbook xmlns="{NS_MAIN}" xmlns:r="{NS_REL}"><workbookPr/>'
                   f'<bookViews><workbookView activeTab="0"/></bookViews><sheets>{sheets}</sheets>'
                   f'<definedNames>{"".join(names)}</definedNames><calcPr calcId="124519" fullCalcOnLoad="1"/>'
                   "</workbook>")
        rels = [f'<Relationship Id="rId{i}" Type="{NS_REL}/worksheet" Target="/xl/worksheets/sheet{i}.xml"/>'
                for i in range(1, n + 1)]
        rels += [f'<Relationship Id="rId{n + 1}" Type="{NS_REL}/styles" Target="/xl/styles.xml"/>',
                 f'<Relationship Id="rId{n + 2}" Type="{NS_REL}/theme" Target="/xl/theme/theme1.xml"/>']
        z.writestr("xl/_rels/workbook.xml.rels", f'{XML_DECL}<Relationships xmlns="{NS_PKG_REL}">{"".join(rels)}'
                   "</Relationships>")
        z.writestr("xl/styles.xml", STYLES)
        z.writestr("xl/theme/theme1.xml", theme_xml)
        z.writestr("docProps/core.xml", tostring(DocumentProperties(creator=self.creator, title=self.title).to_tree()))
        z.writestr("docProps/app.xml", f'{XML_DECL}<Properties xmlns="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/extended-properties"><Application>pimtrail</Application></Properties>')
        z.writestr("_rels/.rels", f'{XML_DECL}<Relationships xmlns="{NS_PKG_REL}">'
                   f'<Relationship Id="rId1" Type="{NS_REL}/officeDocument" Target="xl/workbook.xml"/>'
                   f'<Relationship Id="rId2" Type="{NS_PKG_REL}/metadata/core-properties" Target="docProps/core.xml"/>'
                   f'<Relationship Id="rId3" Type="{NS_REL}/extended-properties" Target="docProps/app.xml"/>'
                   "</Relationships>")
        z.writestr("[Content_Types].xml", self._content_types())
        z.close()

    def abort(self) -> None:
        """After a failure: no half-written workbook left behind."""
        self.zip.close()
        Path(self.zip.filename).unlink(missing_ok=True)

    def _content_types(self) -> str:
        ct = "application/vnd.openxmlformats-officedocument."
        parts = [("/xl/workbook.xml", ct + "spreadsheetml.sheet.main+xml"),
                 ("/xl/styles.xml", ct + "spreadsheetml.styles+xml"), ("/xl/theme/theme1.xml", ct + "theme+xml"),
                 ("/docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"),
                 ("/docProps/app.xml", ct + "extended-properties+xml")]
        parts += [(f"/xl/worksheets/sheet{i}.xml", ct + "spreadsheetml.worksheet+xml")
                  for i in range(1, len(self.sheets) + 1)]
        for i, p in enumerate(self.sheets, 1):
            if p.charts:
                parts.append((f"/xl/drawings/drawing{i}.xml", ct + "drawing+xml"))
        parts += [(f"/xl/charts/chart{i}.xml", ct + "drawingml.chart+xml") for i in range(1, self.charts + 1)]
        return (f'{XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                + "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in parts) + "</Types>")


def _font(extra: str = "", size: int = 11, colour: str = '<color theme="1"/>') -> str:
    return f'<font>{extra}<sz val="{size}"/>{colour}<name val="Calibri"/><family val="2"/><scheme val="minor"/></font>'


WHITE = f'<color rgb="{HEADER_FONT}"/>'
STYLES = (
    f'{XML_DECL}<styleSheet xmlns="{NS_MAIN}">'
    f'<numFmts count="2"><numFmt numFmtId="164" formatCode="{DT_FORMAT}"/>'
    f'<numFmt numFmtId="165" formatCode="{DATE_FORMAT}"/></numFmts>'
    f'<fonts count="3">{_font()}{_font("<b/>", 11, WHITE)}{_font("<b/>", 12)}</fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    f'<fill><patternFill patternType="solid"><fgColor rgb="{HEADER_FILL}"/><bgColor indexed="64"/></patternFill>'
    '</fill></fills><borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '<border><left/><right/><top/><bottom style="thin"><color indexed="64"/></bottom><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="7"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1" '
    'applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    f'<dxfs count="{len(DXF)}">'
    + "".join(f'<dxf><fill><patternFill patternType="solid"><bgColor rgb="{c}"/></patternFill></fill></dxf>'
              for c in DXF.values())
    + '</dxfs><tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>'
    "</styleSheet>")
