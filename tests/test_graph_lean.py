"""A lean live collection: pages that nothing reads are not parsed, they go to the export as they
arrive (byte for byte), the garbage collector is left as it was found, and the longest chain
gets the free request slots first."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import pytest

import exports
from pimtrail.collectors.datasets import get
from pimtrail.collectors.exportdir import read_export
from pimtrail.collectors.graph import GraphSettings, HttpSettings, StaticTokenCredential, collect_graph
from pimtrail.collectors.graph import fetch
from pimtrail.collectors.graph.client import Gate, HttpSettings as Settings
from pimtrail.collectors.graph.collector import Collection
from pimtrail.collectors.graph.errors import GraphError
from pimtrail.collectors.graph.pagetext import Unclear, ids, next_link
from pimtrail.collectors.graph.writer import ExportWriter
from pimtrail.emulator import Emulator, Fault
from test_graph_collect import fill

LINK = "https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$skiptoken=abc%3D%3D"


# -- the nextLink from a page's text ---------------------------------------------------------------
@pytest.mark.parametrize("text, link", [
    # before `value`, as Graph and the emulator write it
    ('{"@odata.context":"https://x/$metadata#a","@odata.nextLink":"%s","value":[{"id":"1"}]}' % LINK, LINK),
    # after `value`, with whitespace, and a later annotation
    ('{ "value" : [ {"id": "1", "x": {"y": [1, 2]}} ] ,\n "@odata.nextLink" : "%s" , "@odata.count": 7 }\n'
     % LINK, LINK),
    # no nextLink: the last page
    ('{"@odata.context":"https://x/$metadata#a","value":[{"id":"1"}]}', None),
    ('{"value":[]}', None),
    ('{"@odata.nextLink":null,"value":[]}', None),
    # the key inside an item (a nested object, or text in a string) is not the page's nextLink
    ('{"value":[{"id":"1","note":"a \\"@odata.nextLink\\": \\"https://evil\\""}]}', None),
    ('{"value":[{"id":"1","members":{"@odata.nextLink":"https://inner"}}]}', "parse"),
    ('{"value":[{"id":"1","members":{"@odata.nextLink":"https://inner"}}],"@odata.nextLink":"%s"}' % LINK, LINK),
    # escapes in the link are decoded as json.loads would
    ('{"@odata.nextLink":"https:\\/\\/graph\\/x?a=\\u00e9","value":[]}', "https://graph/x?a=\u00e9"),
])
def test_next_link_is_read_from_the_text_before_or_after_value(text, link):
    raw = text.encode()
    assert json.loads(raw).get("@odata.nextLink") == (None if link == "parse" else link)
    if link == "parse":  # not clear from the text: the page is parsed instead
        with pytest.raises(Unclear):
            next_link(raw)
        page = fetch.read_page(raw, "/v1.0/x", "", fetch.TEXT)
        assert page.next_link is None and page.rows == 1 and page.body is None
        return
    assert next_link(raw) == link


@pytest.mark.parametrize("text", ['\ufeff{"value":[]}', "{}", '{"value":{}}', '{"value":[', "[1]", ""])
def test_text_that_is_not_a_graph_page_is_parsed_and_refused(text):
    raw = text.encode()
    with pytest.raises((Unclear, ValueError)):
        next_link(raw)
    if text.startswith("\ufeff"):  # json.loads reads a BOM: the page is fine, just not laid out as usual
        assert fetch.read_page(raw, "/v1.0/x", "", fetch.TEXT).rows == 0
        return
    with pytest.raises(GraphError, match="UnexpectedBody|not JSON|no 'value'"):
        fetch.read_page(raw, "/v1.0/x", "", fetch.TEXT)


def test_a_text_page_is_not_parsed(monkeypatch):
    def refuse(raw, request):
        raise AssertionError("parsed")

    monkeypatch.setattr(fetch, "_parse", refuse)
    raw = ('{"value":[{"id":"a"},{"id":"b","signInActivity":{"lastSignInDateTime":null}}],'
           '"@odata.nextLink":"%s"}' % LINK).encode()
    page = fetch.read_page(raw, "/v1.0/users", "", fetch.TEXT)
    assert (page.body, page.rows, page.next_link, page.raw) == (None, None, LINK, raw)
    assert fetch.read_page(raw, "/v1.0/users", "", fetch.IDS).ids == ["a", "b"] == ids(raw)


# -- the export, written as pages arrive --------------------------------------------------------------
class FakeHttp:
    """GraphHttp's interface, answering from a dict of URL -> body bytes."""

    version_prefix = "/v1.0"
    root = "https://graph.microsoft.com"

    def __init__(self, answers: dict[str, bytes]):
        self.answers, self.asked = answers, []
        self.settings = Settings()

    def url(self, request: str) -> str:
        return self.root + request

    async def get(self, url: str, priority: int = 0, on_next_link=None, via_adapter: bool = False,
                  baton=None) -> bytes:
        self.asked.append(url)
        answer = self.answers[url]
        if isinstance(answer, GraphError):
            raise answer
        return answer


def test_pages_of_a_dataset_nothing_reads_go_to_the_export_byte_exact_and_unparsed(tmp_path, monkeypatch):
    audits = get("directory_audits")
    first = ('{"@odata.context":"x","@odata.nextLink":"%s",\n "value": [ {"id":"1", "é": "\\u00e9"} ]}'
             % LINK).encode()
    second = b'{ "value" : [ {"id" : "2"} ] }'
    http = FakeHttp({http_url(audits): first, LINK: second})
    parsed = []
    monkeypatch.setattr(fetch, "_parse", lambda raw, request: parsed.append(request))
    writer = ExportWriter(tmp_path / "out")
    outcome = asyncio.run(Collection(http, [audits], sink=writer).run())["directory_audits"]
    writer.flush()  # the writes happen in a background thread
    assert parsed == [] and outcome.ok and outcome.rows is None  # counted when read back
    assert [p.raw for p in outcome.pages] == [b"", b""]  # dropped once written
    text = (tmp_path / "out" / "directory_audits.json").read_bytes()
    assert first in text and second in text
    assert json.loads(text)["pages"][1] == {"request": "/v1.0/auditLogs/directoryAudits?$skiptoken=abc%3D%3D",
                                             "parent": "", "body": {"value": [{"id": "2"}]}}


def http_url(dataset) -> str:
    return FakeHttp.root + dataset.request()


def test_a_dataset_that_fails_midway_leaves_no_file(tmp_path):
    audits = get("directory_audits")
    http = FakeHttp({http_url(audits): ('{"@odata.nextLink":"%s","value":[]}' % LINK).encode(),
                     LINK: GraphError(403, "Authorization_RequestDenied", "no")})
    writer = ExportWriter(tmp_path / "out")
    outcome = asyncio.run(Collection(http, [audits], sink=writer).run())["directory_audits"]
    assert outcome.error is not None and outcome.pages == []
    assert not (tmp_path / "out" / "directory_audits.json").exists()


def test_a_collection_that_fails_removes_what_it_wrote_and_restores_the_gc(tmp_path, export):
    from pimtrail.collectors.graph import GraphRunError

    root = export(change=fill)
    out = tmp_path / "kept"
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    with Emulator(root) as graph:
        graph.inject("organization", Fault(401, times=None))
        with pytest.raises(GraphRunError):
            collect_graph(StaticTokenCredential("t"), GraphSettings(http=HttpSettings(base_url=graph.base_url)),
                          export=out)
    assert not out.exists()
    assert (gc.isenabled(), gc.get_freeze_count()) == (enabled, frozen)


def test_a_collection_leaves_the_gc_as_it_found_it(tmp_path, export):
    root = export(change=fill)
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            with Emulator(root, page_size=1) as graph:
                run = collect_graph(StaticTokenCredential("t"),
                                    GraphSettings(http=HttpSettings(base_url=graph.base_url)),
                                    export=tmp_path / f"out-{enabled}")
            assert (gc.isenabled(), gc.get_freeze_count()) == (enabled, 0)
        finally:
            gc.enable()
        # rows of pages that were not parsed come from the read-back
        assert run.outcomes["directory_audits"].rows == 2 and run.outcomes["users"].rows == 2
        assert run.snapshot.facts and read_export(tmp_path / f"out-{enabled}").facts


def test_an_existing_export_is_refused_before_any_request(tmp_path, export):
    from pimtrail.errors import InputError

    root = export(change=fill)
    with Emulator(root) as graph:
        with pytest.raises(InputError, match="already holds an export"):
            collect_graph(StaticTokenCredential("t"), GraphSettings(http=HttpSettings(base_url=graph.base_url)),
                          export=root)
        assert graph.requests() == []


# -- scheduling ------------------------------------------------------------------------------------
def test_the_gate_gives_a_free_slot_to_the_deepest_chain_first():
    async def scenario() -> list[str]:
        gate, order = Gate(1), []

        async def request(name: str, priority: int) -> None:
            async with gate.slot(priority):
                order.append(name)
                await asyncio.sleep(0.001)

        holder = asyncio.create_task(request("holder", 0))
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(request(n, p)) for n, p in
                   (("batch", 0), ("page 3", -3), ("cancelled", -9), ("page 7", -7), ("batch 2", 0))]
        await asyncio.sleep(0)
        waiting[2].cancel()
        await asyncio.gather(holder, *waiting, return_exceptions=True)
        async with gate.slot():  # every slot came back
            pass
        return order

    assert asyncio.run(scenario()) == ["holder", "page 7", "page 3", "batch", "batch 2"]


def test_the_next_request_of_a_chain_leaves_when_the_head_names_it(export):
    """The emulator writes the nextLink before `value`: the second page is asked for while the
    first answer's body is still being read, and the chain makes no extra request."""
    root = export(change=fill)

    async def scenario(url: str) -> tuple[list[str], int]:
        from pimtrail.collectors.graph.client import GraphHttp

        http = GraphHttp(StaticTokenCredential("t"), Settings(base_url=url))
        heard: list[str] = []
        try:
            body = await http.get(http.url(get("users").request()),
                                  on_next_link=lambda link, slot: (heard.append(link), slot.drop()))
            pages = await fetch.chain(http, get("users").request(), "", lambda page: None, fetch.IDS)
        finally:
            await http.close()
        assert json.loads(body)["@odata.nextLink"] == heard[0]
        return heard, pages

    with Emulator(root, page_size=1) as graph:
        heard, pages = asyncio.run(scenario(graph.base_url))
        users = graph.requests("users")
    assert len(heard) == 1 and pages == 2
    assert [r.page for r in users] == [0, 0, 1]  # the lone GET, then the chain: no request twice


def test_a_chain_keeps_its_slot_from_page_to_page_and_gives_it_back_at_the_end(export):
    """One slot; while the users chain runs, three other requests wait with a higher priority.
    Each page's answer hands its slot to the next page's request, so the chain is not broken up
    by them; when it ends (or its pages asked for ahead are cancelled) the slot is free again."""
    root = export(change=fill)

    async def scenario(url: str) -> tuple[int, int]:
        from pimtrail.collectors.graph.client import GraphHttp

        http = GraphHttp(StaticTokenCredential("t"), Settings(base_url=url, concurrency=1))
        organization = http.url(get("organization").request())
        try:
            await http.get(organization, via_adapter=True)  # signed in: the chain's first request waits for nothing
            users = asyncio.ensure_future(fetch.chain(http, get("users").request(), "", lambda page: None, fetch.IDS))
            while not http._gate._free == 0:
                await asyncio.sleep(0)
            others = [asyncio.ensure_future(http.get(organization, priority=-1000)) for _ in range(3)]
            pages = await users
            await asyncio.gather(*others)
            broken = fetch.chain(http, get("users").request(), "", lambda page: 1 / 0, fetch.IDS)
            with pytest.raises(ZeroDivisionError):  # fails on its first page, the second on its way
                await broken
            return pages, http._gate._free
        finally:
            await http.close()

    with Emulator(root, page_size=1) as graph:
        pages, free = asyncio.run(scenario(graph.base_url))
        order = [r.dataset for r in graph.log][1:]
    assert pages >= 2 and free == 1
    first = order.index("users")
    assert order[first:first + pages] == ["users"] * pages  # page after page, no other request between


def test_the_export_is_written_in_the_background_in_order_and_a_failed_write_is_raised(tmp_path, monkeypatch):
    from pimtrail.collectors.graph import writer as writer_module

    audits, users = get("directory_audits"), get("users")
    monkeypatch.setattr(writer_module._Writes, "BUNDLE", 10)  # a bundle per page or two
    writer = ExportWriter(tmp_path / "out")
    sent = []
    for n in range(40):
        dataset = (audits, users)[n % 2]
        body = json.dumps({"value": [{"id": str(n)}]}).encode()
        sent.append((dataset.name, body))
        writer.page(dataset, fetch.FetchedPage("", f"/v1.0/x?{n}", body))
    writer.close(audits)
    writer.close(users)
    writer.flush()
    for dataset in (audits, users):
        text = (tmp_path / "out" / dataset.file_name).read_bytes()
        assert [json.dumps(p["body"]).encode() for p in json.loads(text)["pages"]] == \
            [body for name, body in sent if name == dataset.name]

    def refuse(out, *parts):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer_module, "_write_all", refuse)
    failing = ExportWriter(tmp_path / "full")
    failing.page(audits, fetch.FetchedPage("", "/v1.0/x", b'{"value":[]}'))
    with pytest.raises(OSError, match="No space left"):
        for _ in range(100):  # raised by a later call, once the thread has tried
            failing.page(audits, fetch.FetchedPage("", "/v1.0/x", b'{"value":[]}'))
            failing.flush()
    failing.abort()
    assert not (tmp_path / "full").exists()


def test_a_batch_answer_is_read_one_sub_response_at_a_time_with_each_body_byte_exact():
    text = (' { "responses" : [ {"id":"1","status":200,"headers":{"Content-Type":"application/json"},'
            '"body": {"@odata.nextLink":"%s", "value" : [1, {"x":"} ]\\""}]} } ,\n'
            '{"id":"0","body":{"error":{"code":"TooManyRequests"}},"status":429,"headers":{"Retry-After":"3"}} ]'
            ' , "@odata.context": "x" } ' % LINK)
    parts = list(fetch._sub_responses(text))
    assert [(sub["id"], sub["status"]) for sub, _ in parts] == [("1", 200), ("0", 429)]
    assert parts[0][1] == '{"@odata.nextLink":"%s", "value" : [1, {"x":"} ]\\""}]}' % LINK
    assert json.loads(parts[0][1]) == parts[0][0]["body"] and parts[1][1] == '{"error":{"code":"TooManyRequests"}}'
    assert next_link(parts[0][1].encode()) == LINK
    for bad in ('{"responses": [}', '{"value": []}', '{"responses": []} trailing', '[1]', '{"responses": [{"id":"1"'):
        with pytest.raises((ValueError, IndexError)):
            list(fetch._sub_responses(bad))


def test_a_batch_answer_is_cut_into_byte_exact_bodies_without_parsing_them():
    body = b'{"@odata.nextLink":"%s", "value" : [1, {"x":"} ]\\"}, {\\"id\\":\\"m-0\\"}"}]}' % LINK.encode()
    error = b'{"error":{"code":"TooManyRequests","message":"slow down"}}'
    raw = (b'{"responses":[ {"id":"m-1","status":200,"headers":{"Content-Type":"application/json"},"body":' + body
           + b'} ,\n{"id" : "m-0","status":429,"headers":{"Retry-After":"3"},"body":' + error + b'} ]}\n')
    subs = fetch._cut(raw, "m")
    assert subs is not None and set(subs) == {"m-0", "m-1"}
    (sub, text), (other, error_text) = subs["m-1"], subs["m-0"]
    assert text == body and json.loads(text)["value"][1]["x"] == '} ]"}, {"id":"m-0"}'
    assert (sub["status"], other["status"], other["headers"]) == (200, 429, {"Retry-After": "3"})
    assert error_text == error
    # laid out otherwise (body before status; or no body): not cut, the caller parses the answer instead
    assert fetch._cut(b'{"responses":[{"id":"m-0","body":{"value":[]},"status":200,"headers":{}}]}', "m") is None
    assert fetch._cut(b'{"responses":[{"id":"m-0","status":204,"headers":{}}]}', "m") is None
    assert fetch._cut(raw, "other") is None
    # an object of a page whose id looks like another batch's sub-request: part of the body, not cut there
    nested = raw.replace(b'"value" : [1,', b'"value" : [{"id":"n-7"}, {"id" : "m2-0"}, 1,')
    cut = fetch._cut(nested, "m")
    assert cut is not None and set(cut) == {"m-0", "m-1"} and json.loads(cut["m-1"][1])["value"][:2] == [
        {"id": "n-7"}, {"id": "m2-0"}]


def test_the_http_stack_is_tuned_once_for_the_whole_process():
    import asyncio.selector_events

    from httpcore import _synchronization
    from httpcore._async.http11 import AsyncHTTP11Connection

    from pimtrail.collectors.graph import tuning

    tuning.tune()
    tuning.tune()  # once is enough; twice changes nothing
    assert AsyncHTTP11Connection.READ_NUM_BYTES == tuning.READ_SIZE
    assert asyncio.selector_events._SelectorSocketTransport.max_size == tuning.READ_SIZE

    async def a_lock() -> object:
        lock = _synchronization.AsyncLock()
        async with lock:
            return lock._anyio_lock

    assert asyncio.run(a_lock())._fast_acquire is True  # no turn of the loop when the lock is free
