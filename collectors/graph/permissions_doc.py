"""docs/permissions.md and export-format.md's table of datasets, generated from collectors/datasets.py (the
declarations the collector uses).

    .venv/bin/python -m pimtrail.collectors.graph.permissions_doc --write   # regenerate
    .venv/bin/python -m pimtrail.collectors.graph.permissions_doc --check   # exit 1 when stale

The table is exactly `pimtrail permissions --format markdown`; tests/test_graph_docs.py fails
when the checked-in file differs from what this renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pimtrail.collectors.datasets import DATASETS, USERS_PER_REQUEST

from .collector import default_datasets

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
LICENCES = {"P1": "Microsoft Entra ID P1 (P2 includes it)", "P2": "Microsoft Entra ID P2 (or Entra ID Governance)"}


def permission_table() -> list[str]:
    """The same rows, in the same layout, as `pimtrail permissions --format markdown`."""
    from pimtrail.views import permission_rows

    lines = ["| dataset | request | application permission | licence | optional |", "|---|---|---|---|---|"]
    for r in permission_rows():
        lines.append(f"| {r['dataset']} | `{r['request']}` | {r['permission']} | {r['licence']} | "
                     f"{'yes' if r['optional'] else ''} |")
    return lines


def granted_permissions() -> tuple[list[str], list[str]]:
    """(required, optional) read permissions: what the app registration should be granted."""
    read = default_datasets()
    required = sorted({p for d in read if not d.optional for p in d.permissions})
    optional = sorted({p for d in read if d.optional for p in d.permissions} - set(required))
    return required, optional


def render() -> str:
    required, optional = granted_permissions()
    by_permission: dict[str, list[str]] = {}
    for d in default_datasets():
        for permission in d.permissions:
            by_permission.setdefault(permission, []).append(d.name)
    off = [d for d in DATASETS if d not in default_datasets()]
    out = [
        "# Graph permissions pimtrail needs",
        "",
        "<!-- Generated from collectors/datasets.py by "
        "`python -m pimtrail.collectors.graph.permissions_doc --write`. Do not edit by hand. -->",
        "",
        "pimtrail only reads. Each dataset is one Graph request (per parent object where the table "
        "says `{id}`), and each needs one **application** permission — the least one Graph "
        "documents for that request. `pimtrail permissions` prints the same list from the same code.",
        "",
        f"## Grant these {len(required)} application permissions",
        "",
    ]
    out += [f"- `{p}` — {', '.join(by_permission[p])}" for p in required]
    out += ["", f"## Recommended ({len(optional)} more, for optional datasets)", ""]
    out += [f"- `{p}` — {', '.join(by_permission[p])}" for p in optional]
    out += ["",
            "Without a recommended permission the optional dataset is recorded as an error in the "
            "snapshot's coverage and the snapshot stays `complete`. Without a required one the "
            "dataset is recorded with Graph's `Authorization_RequestDenied`, the snapshot is "
            "`partial`, `pimtrail collect` names the permission and exits 3.", ""]
    if off:
        out += ["## Not read unless asked", ""]
        out += [f"- `{d.name}` needs `{'`, `'.join(d.permissions)}` — {d.note}. Read it with "
                f"`pimtrail collect --source graph --also {d.name}` only if you accept that permission."
                for d in off]
        out.append("")
    out += ["## Licences", "",
            "Graph refuses some datasets without a licence; pimtrail records which and keeps the rest:", ""]
    for level, name in LICENCES.items():
        names = [d.name for d in DATASETS if d.licence == level]
        code = "400 `AadPremiumLicenseRequired`" if level == "P2" else \
            "403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant`"
        out.append(f"- **{name}** ({code} without it): {', '.join(names)}")
    out += ["", "## Sign-in activity", "",
            "`sign_in_activity` asks `GET /users?$filter=id in (...)&$select=id,signInActivity` for the users "
            "whose FIDO2 keys are read (those holding or eligible for a role, directly or through a group) and "
            "the break-glass accounts of `pimtrail.toml`, 15 users a request (Graph takes at most 15 values in "
            "`in`), twenty requests to a `$batch`. Microsoft's List users page: details of **signInActivity** "
            "\"require a Microsoft Entra ID P1 or P2 license and the AuditLog.Read.All permission\", and "
            "\"when `signInActivity` is selected or filtered on, the maximum page size is 500\" (microsoft-graph-"
            "docs-contrib PR #9591, July 2025; it was 120, then 999). The request is `GET /users`, so it needs "
            "`User.Read.All` (List users) as well as `AuditLog.Read.All`. The users list itself no longer selects "
            "signInActivity, so it needs `User.Read.All` alone: selected for all users, a value that moves daily for most of them changed "
            "every user's record every day (docs/benchmarks.md, \"Sign-in activity at real churn\").", ""]
    out += ["## Every request", ""]
    out += permission_table()
    out += ["", "Beta requests (`/beta/...`) are sent through the same client as v1.0 ones; they "
            "are all optional, because beta endpoints may change.", ""]
    return "\n".join(out)


EXPORT_DOC = DOC.with_name("export-format.md")
_PARENTS = {"none": "", "review_definition": "review definition", "review_instance": "review instance",
            "users": f"users, {USERS_PER_REQUEST} a request"}


def dataset_table() -> list[str]:
    """docs/export-format.md's table of datasets: each one's request (as `pimtrail permissions` gives it), the
    parent object it is asked for per, and whether it is optional."""
    from pimtrail.views import permission_rows

    lines = ["| dataset | request | parent | optional |", "|---|---|---|---|"]
    for d, r in zip(DATASETS, permission_rows()):
        lines.append(f"| {d.name} | `{r['request']}` | {_PARENTS.get(d.parent.value, d.parent.value)} | "
                     f"{'yes' if d.optional else ''} |")
    return lines


def export_doc(current: str) -> str:
    """docs/export-format.md with its table of datasets made anew (the lines from its header row to the next
    blank line)."""
    lines = current.split("\n")
    start = lines.index(dataset_table()[0])
    end = lines.index("", start)
    return "\n".join(lines[:start] + dataset_table() + lines[end:])


def main(argv: list[str]) -> int:
    docs = {DOC: render(), EXPORT_DOC: export_doc(EXPORT_DOC.read_text(encoding="utf-8"))}
    if "--write" in argv:
        for path, text in docs.items():
            path.write_text(text, encoding="utf-8")
        return 0
    if "--check" in argv:
        stale = [path for path, text in docs.items() if not path.exists() or path.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path} is stale: run python -m pimtrail.collectors.graph.permissions_doc --write",
                  file=sys.stderr)
        return 1 if stale else 0
    sys.stdout.write(docs[DOC])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
