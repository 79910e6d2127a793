"""Which dataset (and parent object) a Graph request asks for, built from collectors/datasets.py.

Several datasets share a path and differ by API version or `$filter` (role and group policies,
role definitions and Microsoft's privileged flag), so a route is the version, the path pattern
and the filter pattern together. Like Graph, a missing required `$filter` is a 400; `$select`,
`$expand` and `$top` are accepted (only `$top` changes anything: the page size). A dataset asked for a
set of users (`Parent.USERS`, `$filter=id in ('a','b',...)`) matches with those ids as its parent, joined by
commas (the server answers the users of its one chain that have them). The audit log
also takes its filter in parentheses `and activityDateTime ge <time>` (the incremental window,
collectors/graph/window.py): the match then carries that time, and the server answers only the
events at or after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from pimtrail.collectors import datasets as ds

_ID = "([^/]+)"
_QUOTED_ID = "'([^']+)'"
_ID_LIST = r"('[^']*'(?:\s*,\s*'[^']*')*)"  # in (...): quoted ids, commas


@dataclass(frozen=True)
class Route:
    dataset: ds.Dataset
    path: re.Pattern[str]
    filter: re.Pattern[str] | None  # None: the dataset sends no $filter


@dataclass(frozen=True)
class Match:
    dataset: str
    parent: str
    params: dict[str, str]
    since: str | None = None  # `activityDateTime ge <since>`, as sent (time-filtered datasets only)


TIME_FILTERED = {"directory_audits"}  # Graph: activityDateTime supports $filter eq, ge, le
_SINCE = re.compile(r"\((.*)\) and activityDateTime ge (\S+)", re.I)


@dataclass(frozen=True)
class NoMatch:
    status: int
    code: str
    message: str


def _filter_of(query: str) -> str | None:
    for part in query.split("&"):
        if part.startswith("$filter="):
            return part[len("$filter="):]
    return None


def _pattern(template: str, slot: str) -> str:
    return re.escape(template).replace(re.escape("{id}"), slot)


def _normal(text: str) -> str:
    return " ".join(text.split())


def build_routes() -> list[Route]:
    routes = []
    for d in ds.DATASETS:
        flt = _filter_of(d.query)
        if flt and d.parent is ds.Parent.USERS:
            flt_pattern = re.compile(_pattern(_normal(flt), _ID_LIST), re.I)
        else:
            flt_pattern = re.compile(_pattern(_normal(flt).replace("'{id}'", "{id}"), _QUOTED_ID), re.I) if flt else None
        routes.append(Route(d, re.compile(f"/{re.escape(d.api)}{_pattern(d.path, _ID)}/?"), flt_pattern))
    return routes


ROUTES = build_routes()


def parse_query(raw_query: str) -> dict[str, str]:
    """Query parameters, decoded; Graph accepts both `$filter` and `%24filter`."""
    return {k: v for k, v in parse_qsl(raw_query, keep_blank_values=True)}


def resolve(path: str, raw_query: str) -> Match | NoMatch:
    params = parse_query(raw_query)
    candidates = []
    for route in ROUTES:
        found = route.path.fullmatch(path)
        if found:
            candidates.append((route, found.groups()))
    if not candidates:
        return NoMatch(404, "Request_ResourceNotFound", f"Resource not found for the segment '{path}'.")
    flt = params.get("$filter")
    if flt is not None:
        timed = _SINCE.fullmatch(_normal(flt))
        for route, path_ids in candidates:
            text, since = _normal(flt), None
            if timed and route.dataset.name in TIME_FILTERED:
                text, since = timed.group(1), timed.group(2)
            found = route.filter.fullmatch(text) if route.filter else None
            if found and route.dataset.parent is ds.Parent.USERS:
                return Match(route.dataset.name, ",".join(re.findall(r"'([^']*)'", found.group(1))), params)
            if found:
                return Match(route.dataset.name, "/".join(path_ids + found.groups()), params, since)
        return NoMatch(400, "BadRequest", f"Invalid filter clause: '{flt}' is not supported here.")
    for route, path_ids in candidates:
        if not route.dataset.filter_required:
            return Match(route.dataset.name, "/".join(path_ids), params)
    needed = " or ".join(sorted(_filter_of(r.dataset.query) or "" for r, _ in candidates))
    return NoMatch(400, "BadRequest", f"The request needs a $filter ({needed.replace('$filter=', '')}).")
