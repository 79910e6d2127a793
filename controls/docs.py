"""The control catalogue as data and as the generated docs/controls.md."""

from __future__ import annotations

from typing import Any

from .engine import frameworks_for, mappings
from .profiles import available_profiles, load_profile
from .registry import all_controls


def catalogue_json() -> list[dict[str, Any]]:
    return [{"id": c.id, "title": c.title, "severity": c.severity.value, "family": c.family,
             "rationale": c.rationale, "remediation": c.remediation, "datasets": list(c.datasets),
             "params": list(c.params), "frameworks": frameworks_for(c.id)} for c in all_controls()]


def catalogue_markdown() -> str:
    titles = mappings().get("frameworks", {})
    profiles = {name: load_profile(name) for name in available_profiles()}
    lines = ["# Control catalogue", "",
             "Generated from the control registry by `pimtrail controls --format markdown`; CI fails when this",
             "file is stale. Statuses: `pass`, `fail`, `warn`, `not_assessable` (a dataset the control needs was not",
             "collected — never read as a pass), `not_applicable`, `excepted` (an unexpired exception from",
             "`pimtrail.toml` matched).", "",
             "What a control reads through role holdings (groups' members, PIM for Groups memberships, the",
             "groups' own roles) it names among what it needs. `privileged_role_definitions` (Microsoft's",
             "isPrivileged flag, optional) gives the tier of a role no profile names: without it such a control is",
             "not assessable only when someone holds a role like that. `directory_audits` must cover the period",
             "(its windows: an export must give `datasets.directory_audits.window`): between collections, and at its",
             "ends beyond the profile's `history_gap_max_days` (a 31-day period before a first collection, whose log",
             "reaches back 30 days, is assessed; a 90-day one is not). PIM-TEN-023, which reports how far the",
             "collections reach, needs the log collected, not covering.", "",
             "| id | severity | title |", "|---|---|---|"]
    controls = all_controls()
    lines += [f"| [{c.id}](#{c.id.lower()}) | {c.severity.value} | {c.title} |" for c in controls]
    for c in controls:
        lines += ["", f"## {c.id}", "", f"**{c.title}** — severity {c.severity.value}", "",
                  f"*Why:* {c.rationale}", "", f"*Fix:* {c.remediation}", "",
                  f"*Needs:* {', '.join(f'`{d}`' for d in c.datasets) or 'the snapshot history'}"]
        if c.params:
            values = "; ".join(f"`{p}` = " + ", ".join(f"{n}: {profiles[n].params.get(p)!r}" for n in profiles)
                               for p in c.params)
            lines += ["", f"*Parameters:* {values}"]
        maps = frameworks_for(c.id)
        if maps:
            lines += ["", "| framework | requirement |", "|---|---|"]
            for fw, items in sorted(maps.items()):
                for item in items:
                    lines.append(f"| {titles.get(fw, {}).get('title', fw)} | {item} "
                                 f"{titles.get(fw, {}).get('items', {}).get(item, '')} |")
    return "\n".join(lines) + "\n"
