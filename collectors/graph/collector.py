"""Which requests a collection makes, in what order: every dataset of collectors/datasets.py.

Each dataset is a task; all start at once and the shared gate in `GraphHttp` (client.Gate)
bounds the requests in flight, a chain's later pages first. Each page goes to the export
(`Sink`) as soon as its place in its dataset is known, and only what other datasets read is
kept of it (`digest`). Per-parent datasets wait for the datasets that name their parents:
groups (role-assignable groups and PIM for Groups resources) -> members, group PIM instances and
policies; review definitions -> instances -> decisions; and FIDO2 keys and sign-in activity only
for users who hold or are eligible for a role, directly or through a group (one request per user
otherwise grows with the whole directory), sign-ins also for the configured break-glass accounts
(`break_glass`: ids, or UPNs found in the users list), 15 users a request (`$filter=id in (...)`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Protocol

from pimtrail.collectors.datasets import DATASETS, GUID, Dataset, Parent, users_per_request
from pimtrail.config import BreakGlass

from .client import GraphHttp
from .errors import GraphError, GraphRunError, explain
from .fetch import BATCH_LIMIT, IDS, PARSE, TEXT, FetchedPage, batched_firsts, chain, follow
from .pagetext import ids_of_upns
from .window import AUDIT_DATASET, incremental

USER_TYPE, GROUP_TYPE = "#microsoft.graph.user", "#microsoft.graph.group"
GROUP_SOURCES = ("role_assignable_groups", "pim_groups")
ROLE_SOURCES = ("role_assignment_instances", "role_eligibility_instances", "role_assignments")
GROUP_PRINCIPAL_SOURCES = ("group_members", "group_assignment_instances", "group_eligibility_instances")
# Datasets whose objects other datasets read (parents, tenant id): only their pages are parsed,
# and of each object only what is read here is kept (`_slim`). The other pages are never parsed
# (their nextLink is read from the text): 180,000 audit events are ~1 GB as Python objects and
# ~4 s of parsing, and the export is parsed when it is read back anyway.
NEEDED = {"organization", "users", "access_review_definitions", "access_review_instances",
          *GROUP_SOURCES, *ROLE_SOURCES, *GROUP_PRINCIPAL_SOURCES}
IDS_ONLY = {"users"}  # NEEDED for their ids alone: taken from the text, not parsed (61 MB of users)
_KEPT = ("id", "principalId", "@odata.type")  # of each object of a NEEDED dataset (and principal's type)
# $batch requests made ready beyond the `concurrency` in flight (fetch.batched_firsts): enough to
# keep every slot busy, few enough that building them does not hold the loop (261 at once did, 0.25 s)
READY_AHEAD = 2
FIRST = "organization"  # read alone first: one sign-in, and a refused token stops the run early


class Reporter(Protocol):
    def started(self, dataset: str) -> None: ...
    def page(self, dataset: str, rows: int | None) -> None: ...  # None: counted when read back
    def finished(self, outcome: "Outcome") -> None: ...


class _Silent:
    def started(self, dataset: str) -> None: ...
    def page(self, dataset: str, rows: int | None) -> None: ...
    def finished(self, outcome: "Outcome") -> None: ...


class Sink(Protocol):
    """Where each page's bytes go as soon as its place in the dataset is known (writer.ExportWriter)."""

    def page(self, dataset: Dataset, page: FetchedPage) -> None: ...  # appends it, empties page.raw
    def close(self, dataset: Dataset) -> None: ...  # the dataset is complete
    def discard(self, dataset: Dataset) -> None: ...  # the dataset failed: forget its pages


@dataclass
class Outcome:
    """What one dataset gave: its pages (their bytes are in the export), or the error that stopped it."""

    dataset: Dataset
    pages: list[FetchedPage] = field(default_factory=list)
    error: GraphError | None = None
    explanation: str = ""
    skipped_parents: list[str] = field(default_factory=list)  # vanished between two reads (404)
    counted: int | None = None  # the rows the export's read-back found (run.collect_graph)
    since: datetime | None = None  # an event dataset read from this time on (window.py); None: all of it

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rows(self) -> int | None:
        """The dataset's rows; None while some pages are not counted (pages that were not
        parsed are counted when the export is read back)."""
        if self.counted is not None:
            return self.counted
        counts = [p.rows for p in self.pages]
        return None if None in counts else sum(counts)  # type: ignore[arg-type]

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The objects of a NEEDED dataset, as `_slim` kept them (of IDS_ONLY ones: their ids)."""
        for page in self.pages:
            if page.body is None and page.ids is not None:
                for found in page.ids:
                    yield page.parent, {"id": found}
                continue
            for item in (page.body or {}).get("value", []):
                if isinstance(item, dict):
                    yield page.parent, item

    def ids(self) -> set[str]:
        """The ids of a NEEDED dataset's objects (100,000 users: a set, not 100,000 dicts)."""
        found: set[str] = set()
        for page in self.pages:
            if page.body is None and page.ids is not None:
                found.update(page.ids)
            else:
                found.update(str(item["id"]) for item in (page.body or {}).get("value", [])
                             if isinstance(item, dict) and item.get("id"))
        return found


def _slim(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    kept = {key: item[key] for key in _KEPT if key in item}
    principal = item.get("principal")
    if isinstance(principal, dict) and "@odata.type" in principal:
        kept["principal"] = {"@odata.type": principal["@odata.type"]}
    return kept


def digest(page: FetchedPage, needed: bool) -> None:
    """Keep of a parsed page only what the collection reads: for a NEEDED dataset its objects'
    ids, principals and types; for the others nothing (its rows are counted already)."""
    if page.body is None:
        return
    page.body = {"value": [_slim(item) for item in page.body.get("value", [])]} if needed else None


def default_datasets(also: tuple[str, ...] = ()) -> list[Dataset]:
    """Every dataset readable with read-only permissions, plus the ones asked for by name.
    (role_assignment_requests needs RoleManagement.ReadWrite.Directory: not by default.)"""
    return [d for d in DATASETS if "ReadWrite" not in d.permission or d.name in also]


AuditSince = Callable[[str | None], "datetime | None"]  # tenant id (None: unknown) -> window start


class Collection:
    def __init__(self, http: GraphHttp, datasets: list[Dataset], batch_size: int = BATCH_LIMIT,
                 reporter: Reporter | None = None, sink: Sink | None = None,
                 audit_since: AuditSince | None = None, tenant: str | None = None,
                 break_glass: tuple[str, ...] = ()):
        """`audit_since`: where the audit window starts for the tenant (window.py), asked once
        /organization has named it (else `tenant` is taken); None or None back: the full window.
        `break_glass`: the configured break-glass accounts (object ids or UPNs, pimtrail.toml), whose
        sign-in activity is read whether or not they hold a role."""
        self.http, self.datasets = http, datasets
        self.batch_size = min(batch_size, BATCH_LIMIT)
        self.reporter = reporter or _Silent()
        self.sink = sink
        self.audit_since, self.tenant = audit_since, tenant
        self._tasks: dict[str, asyncio.Task[Outcome]] = {}
        # per-parent requests made ready at once, across datasets (fetch.batched_firsts)
        self._ready = asyncio.Semaphore(http.settings.concurrency + READY_AHEAD)
        # ids, and UPNs resolved from the users list as it arrives (`_dataset`)
        self._glass_ids, self._glass_upns = BreakGlass(accounts=list(break_glass)).split()

    async def run(self) -> dict[str, Outcome]:
        """/organization alone first (one sign-in; a refused token or an unreachable Graph stops
        the run there), then every other dataset at once. The audit log - the longest request
        chain, the run's critical path - starts with /organization when its window does not
        depend on the tenant (no history to read it incrementally from)."""
        first = [d for d in self.datasets if d.name == FIRST]
        early = [d for d in self.datasets if d.name == AUDIT_DATASET and self.audit_since is None and first]
        try:
            self._start(early, None)
            for dataset in first:
                self._tasks[dataset.name] = task = asyncio.create_task(self._dataset(dataset), name=dataset.name)
                outcome = await task
                error = outcome.error
                if error is not None and error.code == "NetworkError":  # no point asking 25 more times
                    raise GraphRunError(f"cannot reach Graph at {self.http.settings.base_url}: {error.message}")
                self.tenant = tenant_of(outcome) or self.tenant
            since = self.audit_since(self.tenant) if self.audit_since is not None else None
            self._start([d for d in self.datasets if d not in first and d not in early], since)
            await asyncio.gather(*self._tasks.values())
        except BaseException:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            raise
        return {d.name: self._tasks[d.name].result() for d in self.datasets if d.name in self._tasks}

    def _start(self, datasets: list[Dataset], since: datetime | None) -> None:
        self._tasks.update({d.name: asyncio.create_task(self._dataset(d, since), name=d.name) for d in datasets})

    async def _outcome(self, name: str) -> Outcome | None:
        task = self._tasks.get(name)
        return await task if task is not None else None

    async def _dataset(self, dataset: Dataset, since: datetime | None = None) -> Outcome:
        self.reporter.started(dataset.name)
        if dataset.name != AUDIT_DATASET or since is None:
            since = None
        else:
            dataset = incremental(dataset, since)
        outcome = Outcome(dataset, since=since)
        needed = dataset.name in NEEDED
        how = IDS if dataset.name in IDS_ONLY else PARSE if needed else TEXT

        def arrived(page: FetchedPage) -> None:  # a chain's pages, in order, as they arrive
            if dataset.name == "users" and self._glass_upns:  # before the sink empties page.raw
                self._glass_ids.update(i.lower() for i in ids_of_upns(page.raw, self._glass_upns))
            digest(page, needed)
            self.reporter.page(dataset.name, page.rows)
            outcome.pages.append(page)
            if self.sink is not None:
                self.sink.page(dataset, page)

        try:
            if dataset.parent is Parent.NONE:
                await chain(self.http, dataset.request(), "", arrived, how)
            else:
                await self._per_parent(outcome, await self._parents(dataset), needed, how)
            if self.sink is not None:
                self.sink.close(dataset)
        except GraphError as exc:
            if exc.fatal:
                raise GraphRunError(f"Graph refused the token ({exc}); check the sign-in") from None
            outcome.pages, outcome.error, outcome.explanation = [], exc, explain(dataset, exc)
            if self.sink is not None:
                self.sink.discard(dataset)
        self.reporter.finished(outcome)
        return outcome

    async def _per_parent(self, outcome: Outcome, parents: list[str], needed: bool, how: str) -> None:
        """Every parent's chain; the pages go to the sink in parent order once all are read
        (per-parent datasets are small: their bytes wait in memory, their parsed bodies do not)."""
        dataset = outcome.dataset
        requests = [(parent, dataset.request(parent)) for parent in parents]
        received: dict[str, list[FetchedPage]] = {parent: [] for parent in parents}

        def arrived(page: FetchedPage) -> None:
            digest(page, needed)
            self.reporter.page(dataset.name, page.rows)
            received[page.parent].append(page)

        batchable = self.batch_size > 1 and len(requests) > 1 and \
            requests[0][1].startswith(self.http.version_prefix + "/")
        if batchable:
            firsts = await batched_firsts(self.http, requests, self.batch_size,
                                          digest=lambda page: digest(page, needed), how=how, limit=self._ready)
            jobs = [self._continue(firsts[parent], arrived, how) for parent, _ in requests]
        else:
            jobs = [self._limited(chain(self.http, request, parent, arrived, how)) for parent, request in requests]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for (parent, _), result in zip(requests, results):
            # a deleted parent object answers 404 (skipped); a set of users is a filter, which a deleted user
            # leaves out: its 404 is the dataset's own failure
            if isinstance(result, GraphError) and result.vanished and dataset.parent.named_in_pages:
                outcome.skipped_parents.append(parent)
            elif isinstance(result, BaseException):
                raise result
            else:
                for page in received.pop(parent):
                    if not dataset.parent.named_in_pages:
                        page.parent = ""  # the request names the users; the elements carry their ids
                    outcome.pages.append(page)
                    if self.sink is not None:
                        self.sink.page(dataset, page)

    async def _limited(self, job: Any) -> Any:
        async with self._ready:
            return await job

    async def _continue(self, first: FetchedPage | GraphError, arrived: Any, how: str) -> int:
        if isinstance(first, GraphError):
            raise first
        return await follow(self.http, first, arrived, how)

    # -- parents ------------------------------------------------------------------------------
    async def _parents(self, dataset: Dataset) -> list[str]:
        if dataset.parent is Parent.GROUP:
            return await self._groups(dataset)
        if dataset.parent is Parent.REVIEW_DEFINITION:
            source = await self._require(dataset, "access_review_definitions")
            return _unique(str(item["id"]) for _, item in source.items() if item.get("id"))
        if dataset.parent is Parent.REVIEW_INSTANCE:
            source = await self._require(dataset, "access_review_instances")
            return _unique(f"{parent}/{item['id']}" for parent, item in source.items() if item.get("id"))
        users = await self._privileged_users(dataset)
        if dataset.parent is Parent.USERS:
            return [",".join(part) for part in users_per_request(sorted(set(users) | await self._break_glass()))]
        return users

    async def _break_glass(self) -> set[str]:
        """The configured break-glass accounts' ids: with the users list read, those of its users given by id
        or UPN (an account it does not hold does not exist); without it, the ids as given, and the dataset fails
        (`GraphError`: not complete) when an account cannot be told that way - given by UPN, or not an id."""
        directory = await self._outcome("users")
        if directory is not None and directory.ok:
            return {i for i in directory.ids() if i.lower() in self._glass_ids}
        unresolved = sorted(self._glass_upns | {i for i in self._glass_ids if not GUID.match(i)})
        if unresolved:
            why = "not requested" if directory is None else f"{directory.error.status or '-'} {directory.error.code}"
            raise GraphError(None, "ParentUnavailable",
                             f"not complete: break-glass accounts {', '.join(unresolved)} are looked up in users, "
                             f"which could not be read ({why})")
        return set(self._glass_ids)

    async def _require(self, dataset: Dataset, name: str) -> Outcome:
        source = await self._outcome(name)
        if source is None or not source.ok:
            why = "not requested" if source is None else f"{source.error.status or '-'} {source.error.code}"
            raise GraphError(None, "ParentUnavailable",
                             f"not requested: {dataset.name} is read per object of {name}, "
                             f"which could not be read ({why})")
        return source

    async def _groups(self, dataset: Dataset) -> list[str]:
        sources = [await self._outcome(name) for name in GROUP_SOURCES]
        usable = [s for s in sources if s is not None and s.ok]
        if not usable:
            await self._require(dataset, GROUP_SOURCES[0])  # raises, naming why
        return _unique(str(item["id"]) for s in usable for _, item in s.items() if item.get("id"))

    async def _privileged_users(self, dataset: Dataset) -> list[str]:
        """Users who hold or are eligible for a role, directly or as members (or PIM for Groups
        members/owners, active or eligible) of a group that does."""
        roles = [o for o in [await self._outcome(n) for n in ROLE_SOURCES] if o is not None and o.ok]
        if not roles:
            await self._require(dataset, ROLE_SOURCES[0])
        group_sources = [await self._outcome(n) for n in GROUP_SOURCES]
        known_groups = {str(item.get("id")) for s in group_sources if s is not None and s.ok
                        for _, item in s.items()}
        principals: dict[str, str | None] = {}
        for outcome in roles:
            for _, item in outcome.items():
                pid = item.get("principalId")
                if pid:
                    kind = (item.get("principal") or {}).get("@odata.type")
                    principals[pid] = principals.get(pid) or kind
        role_groups = {p for p, kind in principals.items() if kind == GROUP_TYPE or p in known_groups}
        users = {p for p, kind in principals.items() if p not in role_groups and kind in (None, USER_TYPE)}
        for name in GROUP_PRINCIPAL_SOURCES:
            source = await self._outcome(name)
            for parent, item in source.items() if source is not None and source.ok else ():
                if parent not in role_groups:
                    continue
                member = item.get("id") if name == "group_members" else item.get("principalId")
                kind = item.get("@odata.type") if name == "group_members" else \
                    (item.get("principal") or {}).get("@odata.type")
                if member and kind in (None, USER_TYPE):
                    users.add(member)
        directory = await self._outcome("users")
        if directory is not None and directory.ok:  # drop service principals and other non-users
            users &= directory.ids()
        return sorted(users)


def tenant_of(organization: Outcome | None) -> str | None:
    """The tenant id /organization answered with (lower case), if it was read."""
    if organization is not None and organization.ok:
        for _, item in organization.items():
            if item.get("id"):
                return str(item["id"]).lower()
    return None


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(values))

