"""The two ways a request leaves (collectors/graph/client.py): a dataset's first request through the
SDK's request adapter, the rest (nextLinks, further $batch requests) straight through the same
httpx client - with the same token, the same retry and error handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from pimtrail.collectors.exportdir import read_export
from pimtrail.collectors.graph import GraphRunError, GraphSettings, HttpSettings, StaticTokenCredential, collect_graph
from pimtrail.collectors.graph.client import GraphHttp
from pimtrail.emulator import BATCH, Emulator, Fault, permission_missing, throttled
from test_graph_collect import SCALE, TOKEN, collect, coverage, events, facts, fill


@pytest.fixture
def tenant(export) -> Path:
    return export(change=fill)


@pytest.fixture
def paths(monkeypatch) -> dict[str, list[str]]:
    """The URLs sent through each path, as the collection sends them."""
    sent: dict[str, list[str]] = {"adapter": [], "direct": []}
    for name, method in (("adapter", "_adapted"), ("direct", "_direct")):
        original = getattr(GraphHttp, method)

        async def spy(self, http_method, url, payload, option, _original=original, _name=name):
            sent[_name].append(url)
            return await _original(self, http_method, url, payload, option)

        monkeypatch.setattr(GraphHttp, method, spy)
    return sent


def test_only_each_datasets_first_request_goes_through_the_request_adapter(tenant, paths):
    with Emulator(tenant, page_size=1) as graph:
        run = collect(graph)
        log = graph.requests()
    http = [r for r in log if r.batch is None]
    assert all(r.authorized and r.status == 200 for r in http)
    assert run.snapshot.status == "complete" and facts(run.snapshot) == facts(read_export(tenant))
    firsts = [r for r in http if r.page == 0 and r.dataset != BATCH]
    batches = [r for r in http if r.dataset == BATCH]
    assert len(paths["adapter"]) == len(firsts) + 1  # every chain's first request, and the first $batch
    assert len(paths["direct"]) == len(http) - len(paths["adapter"]) > 0
    assert all("$skiptoken=" in url or url.endswith("/$batch") for url in paths["direct"])
    print(f"\n{len(http)} requests: {len(paths['adapter'])} through the adapter, {len(paths['direct'])} "
          f"straight ({len(batches)} $batch in all)")


def test_a_throttled_next_link_is_retried_after_its_retry_after(tenant, paths):
    with Emulator(tenant, page_size=1) as graph:
        graph.inject("directory_audits", throttled(times=2, retry_after=4, page=1))
        graph.inject("users", Fault(503, retry_after=2, page=1))
        run = collect(graph)
        audits = graph.requests("directory_audits")
        users = graph.requests("users")
    assert [(r.page, r.status, r.retry_attempt) for r in audits] == \
        [(0, 200, 0), (1, 429, 0), (1, 429, 1), (1, 200, 2)]
    assert [(r.page, r.status, r.retry_attempt) for r in users] == [(0, 200, 0), (1, 503, 0), (1, 200, 1)]
    assert sum("$skiptoken=" in url for url in paths["direct"]) >= 2  # the nextLinks went straight
    waits = sorted((r.status, r.retry_after, round(r.wait / SCALE, 6)) for r in run.retries)
    assert waits == [(429, "4", 4.0), (429, "4", 4.0), (503, "2", 2.0)]
    assert run.snapshot.status == "complete" and events(run.snapshot) == events(read_export(tenant))


def test_a_refused_next_link_is_that_datasets_error_in_the_coverage(tenant):
    with Emulator(tenant, page_size=1) as graph:
        graph.inject("users", permission_missing(page=1))
        graph.inject("directory_audits", Fault(404, "Request_ResourceNotFound", times=None, page=1))
        run = collect(graph)
    cov = coverage(run.snapshot)
    assert (cov["users"].status, cov["users"].http_status, cov["users"].error_code) == \
        ("error", 403, "Authorization_RequestDenied")
    assert "grant the application permission User.Read.All" in cov["users"].error_message
    assert (cov["directory_audits"].status, cov["directory_audits"].http_status) == ("error", 404)
    assert run.snapshot.status == "partial" and cov["role_definitions"].status == "ok"


def test_a_401_on_a_next_link_is_asked_again_through_the_adapter_then_stops_the_run(tenant, paths):
    with Emulator(tenant, page_size=1) as graph:
        graph.inject("users", Fault(401, times=1, page=1))  # once: the adapter's try is answered
        run = collect(graph)
        users = graph.requests("users")
    assert [(r.page, r.status) for r in users] == [(0, 200), (1, 401), (1, 200)]
    assert any("$skiptoken=" in url for url in paths["adapter"])
    assert run.snapshot.status == "complete"
    with Emulator(tenant, page_size=1) as graph:
        graph.inject("users", Fault(401, times=None, page=1))  # always: the token is refused, as before
        with pytest.raises(GraphRunError, match="refused the token"):
            collect(graph)


def test_a_next_link_to_another_host_gets_no_token(tenant):
    """The access-token provider's allowed hosts hold for the straight path too: the emulator
    names itself `localhost` in its nextLinks while the collector was pointed at 127.0.0.1."""

    class Elsewhere(Emulator):
        @property
        def url(self) -> str:
            return super().url.replace("127.0.0.1", "localhost")

    with Elsewhere(tenant, page_size=1) as graph:
        settings = GraphSettings(http=HttpSettings(base_url=graph.base_url.replace("localhost", "127.0.0.1"),
                                                   time_scale=SCALE, timeout=10))
        with pytest.raises(GraphRunError, match="refused the token"):
            collect_graph(StaticTokenCredential(TOKEN), settings)
        log = graph.requests()
    later = [r for r in log if "$skiptoken=" in r.query]  # the nextLinks, to `localhost`
    assert later and not any(r.authorized for r in later) and {r.status for r in later} == {401}
    assert all(r.authorized for r in log if r not in later)
