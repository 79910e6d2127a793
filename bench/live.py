"""Live collection through the Graph emulator, each side in its own process.

    python bench/live.py emulator EXPORT_DIR PAGE_SIZE LATENCY   (serves; prints its URL, then on
                                                                  "stop" on stdin its request counts)
    python bench/live.py collector URL EXPORT_OUT CONCURRENCY     (collects; prints timings and RSS:
                                                                  when the export is written, and at the end)

`measure()` runs both and compares with the minimum: every chain at the emulator's page size, and
per-parent requests (groups, reviews, FIDO2 keys of privileged users, their sign-in activity fifteen
users to a request) twenty to a `$batch`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Row, median, say, vm_hwm_mb  # noqa: E402

BATCH = 20
TOKEN = "bench-token"
DEADLINE = os.environ.get("PIMTRAIL_BENCH_LATENCY", "deadline") == "deadline"  # else "added" (round 1-2)


# ----------------------------------------------------------------------------------- emulator side
def minimum(tenant: Any, page_size: int) -> dict[str, Any]:
    """The fewest requests a collector can make for this tenant, and its longest nextLink chain."""
    from pimtrail.collectors.datasets import Parent, users_per_request
    from pimtrail.collectors.graph.collector import default_datasets

    def pages(items: int) -> int:
        return max(1, math.ceil(items / page_size))

    def ids(name: str) -> list[str]:
        chain = tenant.chain(name, "")
        return [str(i["id"]) for i in (chain.items if chain else []) if i.get("id")]

    groups = list(dict.fromkeys(ids("role_assignable_groups") + ids("pim_groups")))
    definitions = ids("access_review_definitions")
    instances = [f"{parent}/{i['id']}" for parent, chain in tenant.chains.get("access_review_instances", {}).items()
                 for i in chain.items]
    users = privileged_users(tenant, groups)  # no break-glass accounts are configured here
    parents = {Parent.GROUP: groups, Parent.REVIEW_DEFINITION: definitions, Parent.REVIEW_INSTANCE: instances,
               Parent.USER: users, Parent.USERS: [",".join(part) for part in users_per_request(users)]}
    longest, per_dataset = 0, {}

    def add(key: str, count: int) -> None:
        if count:
            per_dataset[key] = per_dataset.get(key, 0) + count

    for d in default_datasets():
        if d.parent is Parent.NONE:
            chain = tenant.chain(d.name, "")
            chain_pages = pages(len(chain.items) if chain else 0)
            add(d.name, chain_pages)
        else:
            wanted = parents[d.parent]
            if d.parent is Parent.USERS:  # ids in (...): one page each (15 users, under any page size)
                lengths = [1 for _ in wanted]
            else:
                lengths = [pages(len((tenant.chain(d.name, p) or _Empty()).items)) for p in wanted]
            if len(wanted) > 1:  # first pages travel twenty to a $batch, the rest as plain GETs
                add("$batch", math.ceil(len(wanted) / BATCH))
                add(d.name, sum(n - 1 for n in lengths))
            else:
                add(d.name, sum(lengths))
            chain_pages = max(lengths, default=0)
        longest = max(longest, chain_pages)
    total = sum(per_dataset.values())
    return {"requests": total, "longest_chain": longest, "per_dataset": per_dataset,
            "parents": {p.value: ids for p, ids in parents.items()}}


class _Empty:
    items: list = []


def privileged_users(tenant: Any, groups: list[str]) -> list[str]:
    """Who the collector reads FIDO2 keys for (mirrors collectors/graph/collector.py)."""
    holders: dict[str, str | None] = {}
    for name in ("role_assignment_instances", "role_eligibility_instances", "role_assignments"):
        chain = tenant.chain(name, "")
        for item in chain.items if chain else []:
            if item.get("principalId"):
                kind = (item.get("principal") or {}).get("@odata.type")
                holders[item["principalId"]] = holders.get(item["principalId"]) or kind
    known = set(groups)
    role_groups = {p for p, kind in holders.items() if kind == "#microsoft.graph.group" or p in known}
    users = {p for p, kind in holders.items() if p not in role_groups and kind in (None, "#microsoft.graph.user")}
    for name in ("group_members", "group_assignment_instances", "group_eligibility_instances"):
        for parent, chain in tenant.chains.get(name, {}).items():
            if parent in role_groups:
                for item in chain.items:
                    member = item.get("id") if name == "group_members" else item.get("principalId")
                    kind = item.get("@odata.type") if name == "group_members" else None
                    if member and kind in (None, "#microsoft.graph.user"):
                        users.add(member)
    directory = tenant.chain("users", "")
    if directory is not None:
        users &= {str(i.get("id")) for i in directory.items}
    return sorted(users)


def serve(export: Path, page_size: int, latency: float) -> None:
    from pimtrail.emulator import Emulator

    class Timed(Emulator):
        """Every HTTP request (a `$batch` counts once) takes `latency` seconds, like a round trip; the
        answers are serialised ahead (`warm`), so the emulator's own work - Graph's server time, which
        the latency stands for - does not slow the collector down: its JSON encoding (of pages, and of
        `$batch` envelopes, spliced from the pages' ready bytes) and its request log's body hashes.
        The latency is counted from the request's arrival (`DEADLINE`): the answer is made, then sent
        when `latency` has passed, so the emulator's own work (routing, logging, a `$batch`'s parts,
        waiting for its GIL behind the other connections' threads) does not add to it. (Before
        round 3 it slept `latency` first and did that work after: ~2 ms more per request.)"""

        ready: dict[tuple, Any] = {}
        sent: dict[int, bytes] = {}  # id(a ready answer's body) -> its bytes
        arrived = threading.local()

        def _counted(self, method, target, headers, body=b""):  # noqa: D102
            self.arrived.at = time.monotonic()
            return super()._counted(method, target, headers, body)

        def answer(self, method, target, headers, body=b"", batch=None, in_batch=None):  # noqa: D102
            if batch is not None or not latency:
                return super().answer(method, target, headers, body, batch, in_batch)
            if not DEADLINE:
                time.sleep(latency)
                return super().answer(method, target, headers, body, batch, in_batch)
            made = super().answer(method, target, headers, body, batch, in_batch)
            wait = getattr(self.arrived, "at", time.monotonic()) + latency - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            return made

        def _data(self, match, page, offset, path, raw_query):  # noqa: D102
            key = (match.dataset, match.parent, page, offset, path, raw_query)
            found = self.ready.get(key)
            if found is None:
                found = super()._data(match, page, offset, path, raw_query)
                if found.status == 200:
                    self.sent[id(found.body)] = found.data  # serialised once
                    self.ready[key] = found
            return found

        def _batch(self, raw, headers):  # noqa: D102
            answer = super()._batch(raw, headers)
            responses = answer.body.get("responses") if answer.status == 200 else None
            if isinstance(responses, list):  # the bytes Answer.data would make, from the ready pages
                parts = [_dumps({k: v for k, v in r.items() if k != "body"})[:-1] + b',"body":'
                         + (self.sent.get(id(r["body"])) or _dumps(r["body"])) + b"}" for r in responses]
                answer.__dict__["data"] = b'{"responses":[' + b",".join(parts) + b"]}"
            return answer

        def _record(self, method, path, query, match, page, answer, headers, batch, in_batch=None):  # noqa: D102
            super()._record(method, path, query, match, page, _Unhashed(answer.status, answer.headers),
                            headers, batch, in_batch)

    began = time.perf_counter()
    graph = Timed(export, page_size=page_size)
    least = minimum(graph.tenant, page_size)
    graph.start()
    warm(graph, least["parents"])
    warmed = len(graph.ready)
    loaded = time.perf_counter() - began
    print(graph.base_url, flush=True)
    sys.stdin.readline()  # "stop"
    graph.stop()
    log = graph.requests()
    http = [r for r in log if r.batch is None]
    per_dataset: dict[str, int] = {}
    for r in http:
        per_dataset[r.dataset or "?"] = per_dataset.get(r.dataset or "?", 0) + 1
    least.pop("parents")
    print(json.dumps({"requests": len(http), "sub_requests": len(log) - len(http), "audit_steps": steps(http),
                      "errors": sum(1 for r in log if r.status >= 400), "max_in_flight": graph.max_in_flight,
                      "per_dataset": per_dataset, "minimum": least, "load_s": round(loaded, 2),
                      "answers_ready": warmed, "answers_made_during_the_run": len(graph.ready) - warmed}), flush=True)


def steps(log: list[Any], dataset: str = "directory_audits") -> dict[str, float] | None:
    """How far apart the requests of the longest chain (the audit log's) arrived: the latency
    plus the collector's turn-around for each nextLink; and when the chain started and ended,
    counted from the run's first request."""
    times = [r.at for r in log if r.dataset == dataset and r.status == 200]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    if not gaps:
        return None
    first = min(r.at for r in log)
    return {"pages": len(times), "median_ms": round(1000 * gaps[len(gaps) // 2], 1),
            "p90_ms": round(1000 * gaps[int(len(gaps) * 0.9)], 1), "max_ms": round(1000 * gaps[-1], 1),
            "start_s": round(times[0] - first, 3), "end_s": round(times[-1] - first, 3)}


class _Unhashed:
    """An answer as the request log sees it, without the body it would hash (the bench reads the
    log's counts, never its receipts)."""

    data = b""

    def __init__(self, status: int, headers: dict[str, str]):
        self.status, self.headers = status, headers


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def warm(graph: Any, parents: dict[str, list[str]]) -> None:
    """Ask every request chain once, as the collector will (same URL encoding), so that its answers
    are serialised before the measured run; then forget those requests."""
    from urllib.parse import quote, urlsplit

    from pimtrail.collectors.datasets import Parent
    from pimtrail.collectors.graph.collector import default_datasets

    headers = {"Authorization": f"Bearer {TOKEN}"}
    for d in default_datasets():
        for parent in parents[d.parent.value] if d.parent is not Parent.NONE else [""]:
            target = quote(d.request(parent), safe="/?&=$,()'@:*-._~!")
            for _ in range(100_000):
                answer = graph.answer("GET", target, headers, batch="warm")
                link = answer.body.get("@odata.nextLink") if answer.status == 200 else None
                if not link:
                    break
                parts = urlsplit(link)
                target = parts.path + "?" + parts.query
    with graph._lock:
        graph.log.clear()


# ----------------------------------------------------------------------------------- collector side
def collect(url: str, out: Path, concurrency: int) -> None:
    from pimtrail.collectors.graph import GraphSettings, HttpSettings, StaticTokenCredential, collect_graph
    from pimtrail.collectors.graph import run as graph_run

    class Clock:
        first = last = None
        rss_network = 0.0

        def started(self, dataset: str) -> None:
            self.first = self.first or time.perf_counter()

        def page(self, dataset: str, rows: int | None) -> None: ...

        def finished(self, outcome: Any) -> None: ...

        def close(self) -> None:
            self.last = time.perf_counter()
            self.rss_network = vm_hwm_mb()

    clock = Clock()
    written: dict[str, float] = {}
    read_back = graph_run.read_export

    def read_export(root: Path, **kw: Any) -> Any:
        """collect_graph reads the export back once it is complete (manifest written): the peak so
        far is the collection's own (requests and export), the rest is the read-back's."""
        written.update(at=time.perf_counter(), rss=vm_hwm_mb())
        return read_back(root, **kw)

    graph_run.read_export = read_export
    began = time.perf_counter()
    run = collect_graph(StaticTokenCredential(TOKEN), GraphSettings(http=HttpSettings(
        base_url=url, concurrency=concurrency, timeout=120)), export=out, progress=clock)
    total = time.perf_counter() - began
    failed = {n: o.explanation for n, o in run.outcomes.items() if not o.ok}
    print(json.dumps({"network_s": round(clock.last - clock.first, 3), "total_s": round(total, 3),
                      "export_s": round(written["at"] - began, 3), "read_back_s": round(began + total - written["at"], 3),
                      "rss_network_mb": round(clock.rss_network, 1), "rss_export_mb": round(written["rss"], 1),
                      "rss_mb": round(vm_hwm_mb(), 1),
                      "facts": len(run.snapshot.facts), "events": len(run.snapshot.events),
                      "status": run.snapshot.status, "failed": failed}), flush=True)


# ----------------------------------------------------------------------------------- parent side
def measure(export: Path, work: Path, *, page_size: int, latency: float, concurrency: int,
            runs: int) -> list[Row]:
    reports, served = [], []
    for n in range(runs):
        emulator = subprocess.Popen([sys.executable, str(Path(__file__)), "emulator", str(export), str(page_size),
                                     str(latency)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            url = emulator.stdout.readline().strip()
            if not url.startswith("http"):
                raise RuntimeError(f"the emulator did not start: {url!r}")
            out = work / f"live-{n}"
            done = subprocess.run([sys.executable, str(Path(__file__)), "collector", url, str(out), str(concurrency)],
                                  capture_output=True, text=True, cwd=ROOT, timeout=3600)
            if done.returncode:
                raise RuntimeError(f"live collection failed:\n{done.stderr[-3000:]}")
            reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
        finally:
            if emulator.poll() is None:
                emulator.stdin.write("stop\n")
                emulator.stdin.flush()
            served_line = emulator.stdout.readline()
            emulator.wait(timeout=120)
        served.append(json.loads(served_line))
        say(f"  live collection run {n + 1}: {reports[-1]}; emulator: {served[-1]['requests']} requests, "
            f"{served[-1]['answers_ready']} answers ready, {served[-1]['answers_made_during_the_run']} made during the run; "
            f"audit chain steps {served[-1]['audit_steps']}")
    least = served[0]["minimum"]
    floor = max(least["longest_chain"] * latency, least["requests"] * latency / concurrency)
    requests = median([s["requests"] for s in served])
    network = median([r["network_s"] for r in reports])
    made, least_made = served[0]["per_dataset"], least["per_dataset"]
    extra = {k: made.get(k, 0) - least_made.get(k, 0) for k in sorted(set(made) | set(least_made))
             if made.get(k, 0) != least_made.get(k, 0)}
    note = (f"latency {latency * 1000:g} ms/request, page size {page_size}, concurrency {concurrency}; "
            f"{reports[0]['status']} snapshot, {reports[0]['facts']:,} facts, {reports[0]['events']:,} events")
    failed = reports[0]["failed"]
    return [
        Row("live collection: requests made", requests, "requests", f"<= 1.05 x minimum ({least['requests']:,})",
            round(1.05 * least["requests"], 1), runs, f"minimum {least['requests']:,}; over it per dataset: "
            f"{extra or 'none'}" + (f"; failed datasets {failed}" if failed else ""),
            [s["requests"] for s in served]),
        Row("live collection: wall time of the requests", network, "s",
            f"<= 1.5 x floor ({floor:.2f} s)", round(1.5 * floor, 3), runs,
            f"floor = max(longest chain {least['longest_chain']} x {latency * 1000:g} ms, "
            f"{least['requests']:,} x {latency * 1000:g} ms / {concurrency}); {note}",
            [r["network_s"] for r in reports]),
        Row("live collection: whole run (requests + export + read-back)", median([r["total_s"] for r in reports]),
            "s", "", None, runs, "collect_graph end to end, as `pimtrail collect --source graph` before ingest: "
            f"export complete after {median([r['export_s'] for r in reports]):.1f} s, read-back "
            f"{median([r['read_back_s'] for r in reports]):.1f} s", [r["total_s"] for r in reports]),
        Row("live collection: peak RSS of the collector (requests + export)",
            median([r["rss_export_mb"] for r in reports]), "MB", "<= 500 MB", 500, runs,
            f"VmHWM when the export is complete (manifest written), before it is read back; "
            f"{median([r['rss_network_mb'] for r in reports]):.0f} MB when the last request ended",
            [r["rss_export_mb"] for r in reports]),
        Row("live collection: peak RSS at the end (with the read-back)", median([r["rss_mb"] for r in reports]),
            "MB", "", None, runs, "VmHWM when collect_graph returns: the export read back into one snapshot "
            "(collectors/exportdir.py read_export)", [r["rss_mb"] for r in reports]),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "emulator":
        serve(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "collector":
        collect(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
