"""Machine formats of a check: JSON (DESIGN.md §7), CSV, JUnit XML, SARIF 2.1.0, and a text table."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from pimtrail import __version__
from pimtrail.controls.engine import CheckReport, mappings
from pimtrail.controls.model import Status
from pimtrail.timeutil import iso

# Characters XML 1.0 cannot carry (C0 controls but tab, LF, CR; lone surrogates; U+FFFE/U+FFFF)
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What a terminal would act on in tenant text (escape sequences that retitle or rewrite it, new lines that fake rows)
_TERMINAL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# in a CSV cell also: the same after leading white space (a spreadsheet may trim it as it imports), and their
# full-width forms (an East Asian keyboard's; a spreadsheet may read them as the ASCII ones). Not known to be
# evaluated anywhere, and a doubt costs a quote: prefixed too
_CSV_START = FORMULA_START + ("\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: Any) -> Any:
    """Tenant text opened in a spreadsheet from a CSV file must not run as a formula: prefixed with a quote."""
    if isinstance(value, str) and (value.startswith(FORMULA_START) or value.lstrip().startswith(_CSV_START)):
        return "'" + value
    return value


def as_json(report: CheckReport) -> dict[str, Any]:
    view = report.view
    tenant = (view.facts.get("tenant") or [{}])[0]
    return {
        "tool": {"name": "pimtrail", "version": __version__},
        "tenant": {"id": view.snapshot.tenant_id, "name": tenant.get("name"),
                   "default_domain": tenant.get("default_domain")},
        "snapshot": {"id": view.snapshot.id, "seq": view.snapshot.seq,
                     "collected_at": iso(view.snapshot.collected_at), "status": view.snapshot.status,
                     "chain_hash": view.snapshot.chain_hash},
        "profile": view.profile.name,
        "period": {"from": iso(view.period_start), "to": iso(view.period_end)},
        "summary": report.counts(),
        "results": [r.as_dict() for r in report.results],
    }


def to_json(report: CheckReport) -> str:
    return json.dumps(as_json(report), indent=2, default=str)


CSV_COLUMNS = ["control_id", "title", "severity", "control_status", "finding_status", "message",
               "principal_id", "principal_name", "principal_type", "role", "group", "frameworks"]


def to_csv(report: CheckReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in report.results:
        frameworks = "; ".join(f"{k}:{','.join(v)}" for k, v in sorted(r.frameworks.items()))
        for f in r.findings:
            s = f.subject
            writer.writerow([safe_cell(v) for v in (
                r.control.id, r.control.title, r.control.severity.value, r.status.value, f.status.value,
                f.message, s.principal_id, s.principal_name, s.principal_type, s.role, s.group, frameworks)])
    return out.getvalue()


def to_junit(report: CheckReport) -> str:
    counts = report.counts()
    suite = ET.Element("testsuite", name=f"pimtrail {report.view.profile.name}",
                       tests=str(len(report.results)), failures=str(counts["fail"]),
                       errors=str(counts["not_assessable"]), skipped=str(counts["not_applicable"]),
                       timestamp=iso(report.view.snapshot.collected_at) or "")
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"pimtrail.{r.control.family}",
                             name=f"{r.control.id} {r.control.title}")
        lines = "\n".join(f"[{f.status.value}] {f.message}" for f in r.findings)
        if r.status is Status.FAIL:
            failing = [f for f in r.findings if f.status is Status.FAIL]
            ET.SubElement(case, "failure", message=failing[0].message if failing else r.control.title,
                          type=r.control.severity.value).text = lines
        elif r.status is Status.NOT_ASSESSABLE:
            ET.SubElement(case, "error", message=r.reason or "not assessable", type="not_assessable").text = lines
        elif r.status is Status.NOT_APPLICABLE:
            ET.SubElement(case, "skipped", message=r.reason or "not applicable")
        else:
            ET.SubElement(case, "system-out").text = lines
    # tenant text can hold characters XML cannot: U+FFFD in their place keeps the report well-formed
    return XML_ILLEGAL.sub("\ufffd", '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(_wrap(suite),
                                                                                              encoding="unicode"))


def _wrap(suite: ET.Element) -> ET.Element:
    root = ET.Element("testsuites")
    root.append(suite)
    return root


SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}


def to_sarif(report: CheckReport) -> str:
    catalogue = mappings().get("frameworks", {})
    rules, results = [], []
    for index, r in enumerate(report.results):
        c = r.control
        tags = [f"{fw}:{item}" for fw, items in sorted(r.frameworks.items()) for item in items]
        rules.append({
            "id": c.id, "name": c.title.replace(" ", ""),
            "shortDescription": {"text": c.title}, "fullDescription": {"text": c.rationale},
            "help": {"text": c.remediation},
            "defaultConfiguration": {"level": SARIF_LEVEL[c.severity.value]},
            "properties": {"tags": tags, "security-severity": {"critical": "9.5", "high": "8.0", "medium": "5.5",
                                                              "low": "3.0", "info": "1.0"}[c.severity.value],
                           "frameworks": {fw: [{"id": i, "title": catalogue.get(fw, {}).get("items", {}).get(i)}
                                               for i in items] for fw, items in r.frameworks.items()}},
        })
        for f in r.findings:
            if f.status in (Status.PASS, Status.NOT_APPLICABLE):
                continue
            kind = {"fail": "fail", "warn": "fail", "not_assessable": "review", "excepted": "informational"}[f.status.value]
            level = (SARIF_LEVEL[c.severity.value] if f.status is Status.FAIL
                     else "warning" if f.status is Status.WARN else "none")
            subject = f.subject
            name = subject.principal_name or subject.role or subject.group or report.view.snapshot.tenant_id
            results.append({
                "ruleId": c.id, "ruleIndex": index, "kind": kind, "level": level,
                "message": {"text": f.message},
                "locations": [{"logicalLocations": [{
                    "name": name, "kind": "resource",
                    "fullyQualifiedName": "/".join(p for p in (report.view.snapshot.tenant_id, subject.role,
                                                               subject.principal_id) if p)}]}],
                "properties": {"status": f.status.value, "subject": subject.as_dict(), "evidence": f.evidence},
            })
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "pimtrail", "version": __version__, "semanticVersion": __version__,
                                "informationUri": "https://github.com/pimtrail/pimtrail", "rules": rules}},
            "automationDetails": {"id": f"pimtrail/{report.view.profile.name}/{report.view.snapshot.tenant_id}/"
                                        f"{report.view.snapshot.seq}"},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2, default=str)


def to_table(report: CheckReport, max_findings: int = 5) -> str:
    view = report.view
    lines = [f"Tenant {view.snapshot.tenant_id}  snapshot #{view.snapshot.seq} ({iso(view.snapshot.collected_at)}, "
             f"{view.snapshot.status})  profile {view.profile.name}  period {iso(view.period_start)[:10]} .. "
             f"{iso(view.period_end)[:10]}", ""]
    for r in report.results:
        lines.append(f"{r.status.value.upper():<15} {r.control.severity.value:<8} {r.control.id:<13} {r.control.title}")
        shown = [f for f in r.findings if f.status is not Status.PASS] if r.status is not Status.PASS else []
        for f in shown[:max_findings]:
            lines.append(f"{'':<15} - [{f.status.value}] {_TERMINAL.sub(chr(0xFFFD), f.message)}")
        if len(shown) > max_findings:
            lines.append(f"{'':<15}   ... and {len(shown) - max_findings} more (--format json for all)")
    counts = report.counts()
    lines += ["", "  ".join(f"{k}: {v}" for k, v in counts.items() if v)]
    return "\n".join(lines)
