"""What a person watching `pimtrail collect --source graph` sees.

On a terminal: one line per dataset, its pages and rows counting up as they arrive (rich's Live
display, redrawn in place; the rows of datasets whose pages are not parsed while collecting, such
as the audit log, show as "-" until the export is read back). Not on a terminal (cron, CI logs): nothing while it runs. Either
way, a summary table at the end — dataset, rows, pages, status — and one line per failed
dataset saying what is missing.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import IO, Any

from pimtrail.timeutil import iso

from .collector import Outcome


@dataclass
class _Line:
    pages: int = 0
    rows: int | None = 0  # None: pages that are not parsed while collecting (counted when read back)
    status: str = "waiting"


def _rows(count: int | None) -> str:
    return "-" if count is None else str(count)


def status_of(outcome: Outcome) -> str:
    if outcome.ok:
        skipped = f" ({len(outcome.skipped_parents)} vanished)" if outcome.skipped_parents else ""
        since = f" (since {iso(outcome.since)}: the previous collection)" if outcome.since else ""
        return f"ok{skipped}{since}"
    error = outcome.error
    assert error is not None
    return f"error {error.status or '-'} {error.code}"


class Progress:
    """Implements the collector's Reporter; `summary` prints the closing table."""

    def __init__(self, live: bool | None = None, out: IO[str] | None = None, err: IO[str] | None = None):
        self._out, self._err = out, err
        stream = err or sys.stderr
        self.live = stream.isatty() if live is None else live
        self.lines: dict[str, _Line] = {}
        self._display: Any = None
        self._started = time.monotonic()

    # -- Reporter -------------------------------------------------------------------------------
    def started(self, dataset: str) -> None:
        self.lines[dataset] = _Line(status="reading")
        if self.live and self._display is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self._err or sys.stderr)
            self._display = Live(self, console=console, refresh_per_second=8, transient=False)
            self._display.start()

    def page(self, dataset: str, rows: int | None) -> None:
        line = self.lines.setdefault(dataset, _Line(status="reading"))
        line.pages += 1
        line.rows = None if rows is None or line.rows is None else line.rows + rows

    def finished(self, outcome: Outcome) -> None:
        line = self.lines.setdefault(outcome.dataset.name, _Line())
        line.pages, line.rows, line.status = len(outcome.pages), outcome.rows, status_of(outcome)

    def __rich__(self) -> Any:
        from rich.text import Text

        text = Text()
        for name, line in self.lines.items():
            style = "red" if line.status.startswith("error") else ("green" if line.status.startswith("ok") else "")
            text.append(f"{name:<30} {line.pages:>5} pages {_rows(line.rows):>8} rows  ")
            text.append(f"{line.status}\n", style=style)
        return text

    def close(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    # -- the end -------------------------------------------------------------------------------
    def summary(self, outcomes: dict[str, Outcome]) -> None:
        self.close()
        out = self._out or sys.stdout
        took = time.monotonic() - self._started
        rows = [(name, o.rows, len(o.pages), status_of(o)) for name, o in outcomes.items()]
        if self.live:
            from rich.console import Console
            from rich.table import Table

            table = Table(title=f"Graph collection ({took:.1f} s)", title_justify="left")
            for header, justify in (("dataset", "left"), ("rows", "right"), ("pages", "right"),
                                    ("status", "left")):
                table.add_column(header, justify=justify)  # type: ignore[arg-type]
            for name, count, pages, status in rows:
                table.add_row(name, _rows(count), str(pages), status,
                              style="red" if status.startswith("error") else None)
            Console(file=out).print(table)
        else:
            out.write(f"{'dataset':<30} {'rows':>8} {'pages':>6}  status\n")
            for name, count, pages, status in rows:
                out.write(f"{name:<30} {_rows(count):>8} {pages:>6}  {status}\n")
            out.write(f"({len(rows)} datasets in {took:.1f} s)\n")
        for name, outcome in outcomes.items():
            if not outcome.ok:
                out.write(f"  {name}: {outcome.explanation}\n")
        out.flush()
