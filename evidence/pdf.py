"""The evidence pack as PDF: the pack model laid out by templates/pack.html.j2, printed by WeasyPrint.

The PDF summarises and samples (long listings show their first rows and name the workbook sheet
holding all of them), so its length stays bounded whatever the tenant's size.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from pathlib import Path
from typing import Any

from pimtrail.evidence.render import environment, read_asset

LIMITS = {"population": 120, "movements": 80, "decisions": 120, "findings": 12}
SECTIONS = [("summary", "Executive summary"), ("scope", "Scope and method"),
            ("population", "Privileged population at period end"), ("rollforward", "Roll-forward of privileged access"),
            ("policies", "Activation policies against their tier"), ("activations", "Activations in the period"),
            ("reviews", "Access reviews"), ("breakglass", "Break-glass accounts"), ("exceptions", "Exceptions register"),
            ("findings", "Findings and remediation"), ("completeness", "Completeness and accuracy")]


def summary_charts(model: dict[str, Any]) -> list[str]:
    """Inline SVG charts shared with the trend dashboard (evidence/charts.py)."""
    from pimtrail.evidence import charts

    series = model["_series"]
    if len(series.points) < 2:
        return []
    return [charts.standing_by_tier(series), charts.eligible_active_activated(series)]


def pdf_view(model: dict[str, Any]) -> dict[str, Any]:
    movements = model["rollforward"]["movements"]
    by_id = {a["correlation_id"]: a for a in model["activations"]}
    findings = []
    for r in model["controls"]:
        open_findings = [f for f in r["findings"] if f["status"] in ("fail", "warn", "excepted", "not_assessable")]
        r["open_findings"] = len(open_findings)
        if r["status"] in ("fail", "warn", "not_assessable", "excepted"):
            findings.append(dict(r, shown=open_findings[:LIMITS["findings"]], total=len(open_findings)))
    per_snapshot: dict[int, dict[str, Any]] = defaultdict(lambda: {"ok": 0, "bad": 0, "optional": 0, "rows": 0, "pages": 0})
    for c in model["completeness"]["coverage"]:
        s = per_snapshot[c["seq"]]
        s.update(seq=c["seq"], collected_at=c["collected_at"])
        s["ok" if c["status"] == "ok" else "optional" if c["optional"] else "bad"] += 1
        s["rows"] += c["rows"]
        s["pages"] += c["pages"]
    return dict(model, sections=SECTIONS, limits=LIMITS, findings=findings,
                explained=[m for m in movements if m["explained"]],
                unexplained=[m for m in movements if not m["explained"]],
                ga_activations=[a for a in model["activations"] if a["global_admin"]],
                sample=model["activation_sample"],
                sampled=[by_id[c] for c in model["activation_sample"]["rows"]],
                coverage_by_snapshot=[per_snapshot[k] for k in sorted(per_snapshot)],
                charts={"summary": summary_charts(model)})


def render_html(model: dict[str, Any], template_dir: Path | None = None) -> str:
    env = environment(template_dir)
    return env.get_template("pack.html.j2").render(css=read_asset("pack.css", template_dir), **pdf_view(model))


def write_pdf(model: dict[str, Any], path: Path, template_dir: Path | None = None) -> int:
    """Write the PDF; returns its page count."""
    from weasyprint import HTML

    html = render_html(model, template_dir)
    gc.disable()  # WeasyPrint's cost on long documents is mostly the garbage collector (STACK_NOTES)
    try:
        document = HTML(string=html, base_url=str(path.parent)).render()
        document.write_pdf(path)
    finally:
        gc.enable()
    return len(document.pages)
