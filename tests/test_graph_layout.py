"""Exports whose bodies are written as Graph sends them, each on one line (what the live collector writes): read as
fast as exports written one element a line, and to the same snapshot (`collectors.compact`)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from first_ingest import results, workers  # noqa: F401 -- fixtures

from pimtrail import collect
from pimtrail.collectors import compact, elementjson, unparsed
from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore, appending
from pimtrail.synthetic import generate


def _ends(text: str, ascii_: bool = True) -> dict[int, int]:
    at = text.index("[")
    return compact.ends(text, memoryview(text.encode()) if ascii_ else None, at)


def _elements(text: str, found: dict[int, int]) -> list:
    return [json.loads(text[s:e]) for s, e in found.items()]


@pytest.mark.parametrize("ascii_", [True, False])
def test_each_elements_end_is_found_past_what_looks_like_one(ascii_):
    items = [{"s": "},{", "t": ["]", "[", {"u": "\"}"}]}, {"n": [1, [2, [3]]], "é": "中😀" if not ascii_ else "e"},
             {}, {"x": "\\"}]
    text = '{"value":[' + ",".join(json.dumps(i, ensure_ascii=ascii_, separators=(",", ":")) for i in items) + \
           '],"@odata.nextLink":"https://g/?]"}'
    found = _ends(text, ascii_)
    assert _elements(text, found) == items
    spaced = '{"value":[ ' + " ,\t".join(json.dumps(i, ensure_ascii=ascii_) for i in items) + " ]}"
    assert _elements(spaced, _ends(spaced, ascii_)) == items


@pytest.mark.parametrize("text", ['{"value":[{"n":NaN},{"a":1}]}', '{"value":[{"a":1},{"a":"\\ud800"}]}',
                                  '{"value":[{"a":1}{"b":2}]}', '{"value":[{"a":1},]}', '{"value":[{"a":1}'])
def test_an_array_msgspec_does_not_read_gives_no_ends(text):
    assert _ends(text) == {}


def test_a_later_element_ends_where_msgspec_says_it_is_followed_by_more():
    text = '{"value":[{"a":"},{"} ,\t{"b":[{"c":"]"}]},{"d":1}]}\n'
    second = text.index('{"b"')
    assert text[second:compact.one(text, memoryview(text.encode()), second)] == '{"b":[{"c":"]"}]}'
    assert text[second:compact.one(text, None, second)] == '{"b":[{"c":"]"}]}'
    assert compact.one('{"value":[{"a":1},{"n":NaN}]}', None, 18) == -1


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """Two days of the small tenant, written one element a line and as Graph sends them."""
    base = tmp_path_factory.mktemp("layouts")
    return {layout: generate(base / layout, "small", days=2, churn=0.05, layout=layout)
            for layout in ("lines", "graph")}


def test_a_graph_layout_export_is_one_body_a_line(layouts):
    text = (layouts["graph"][0] / "users.json").read_text()
    bodies = [line for line in text.split("\n") if line.startswith('{"@odata.context"')]
    assert len(bodies) == text.count('"value":[') > 1 and all('"value":[{"id"' in body for body in bodies)


def _facts(snap):
    return sorted((f.kind, f.key, json.dumps(f.data, sort_keys=True)) for f in snap.facts)


def _events(snap):
    return sorted((e.kind, e.source_id, json.dumps(e.data, sort_keys=True)) for e in snap.events)


def test_both_layouts_read_to_the_same_facts_and_events_every_element_by_the_fast_reader(layouts, monkeypatch):
    slow: list[int] = []
    parse = elementjson.Elements.parse

    def counted(self, i):
        out = parse(self, i)
        if out is None:
            slow.append(i)
        return out

    monkeypatch.setattr(elementjson.Elements, "parse", counted)
    for lines, graph in zip(layouts["lines"], layouts["graph"]):
        a, b = read_export(lines), read_export(graph)
        assert _facts(a) == _facts(b) and _events(a) == _events(b)
        assert len(b.facts) > 500 and len(b.events) > 100
    assert slow == []  # before collectors.compact, every element after the first of a page went to the stdlib


def test_a_deferred_graph_layout_audit_log_is_cut_as_its_full_parse_cuts_it(layouts):
    root = layouts["graph"][0]
    full, deferred = read_export(root), read_export(root, defer=True)
    assert deferred.deferred is not None
    assert [(p.text, p.items) for p in deferred.pages] == [(p.text, p.items) for p in full.pages]
    assert deferred.undefer() is True
    assert _events(deferred) == _events(full)


def test_a_deferred_body_on_one_line_is_cut_at_once_and_one_element_a_line_element_by_element(layouts, monkeypatch):
    calls = {"whole": 0, "end": 0}
    whole, end = unparsed.LineCut.whole, unparsed.LineCut.end

    def counted(name, fn):
        def call(self, *args):
            calls[name] += 1
            return fn(self, *args)
        return call

    monkeypatch.setattr(unparsed.LineCut, "whole", counted("whole", whole))
    monkeypatch.setattr(unparsed.LineCut, "end", counted("end", end))
    graph = read_export(layouts["graph"][0], defer=True)
    pages = [p for p in graph.pages if p.dataset == "directory_audits"]
    assert calls == {"whole": len(pages), "end": 0}  # no call per element
    calls.update(whole=0)
    read_export(layouts["lines"][0], defer=True)
    assert calls["end"] == sum(len(p.items) for p in pages)  # the same elements, one call each


@pytest.mark.parametrize("body", ['{"value":[{"a":1},2]}', '{"value":[1,{"a":1}]}', '{"value":[{"a":1},{"b":NaN}]}'])
def test_an_array_that_is_not_all_objects_msgspec_reads_is_not_cut_at_once(body):
    assert unparsed.LineCut().whole(body, body.index("[")) is None


def test_a_graph_layout_history_holds_the_same_facts_and_verifies(layouts, tmp_path, workers, results, monkeypatch):
    """The first snapshot with the worker (its events and cut taken), the second read against the first (elements
    read unparsed where they did not change): the same facts and events as from the other layout."""
    monkeypatch.setattr(appending, "FIRST_WORKER_MIN", 1)
    states = {}
    for layout, roots in layouts.items():
        results.clear()
        db = tmp_path / f"{layout}.db"
        with HistoryStore.open(str(db), create=True) as store:
            for root in roots:
                store.ingest(collect.read_against(store, root))
            assert store.verify().ok
        with sqlite3.connect(db) as conn:
            states[layout] = conn.execute("SELECT seq, fact_count, event_count, state_digest FROM snapshot "
                                          "ORDER BY seq").fetchall()
        assert results[0] is not None  # the worker's rows were taken
    assert states["graph"] == states["lines"] and len(states["graph"]) == 2


def test_a_later_element_of_a_long_line_not_ascii_is_read_as_long_as_it_is(monkeypatch):
    """`compact.one` encodes a window of the line past the element, not the rest of the line each time (a page whose
    array msgspec refuses, or a daily read's changed elements: quadratic in the page before)."""
    items = ['{"id":"%d","name":"Zoë"}' % n for n in range(3000)]
    text = '{"value":[' + ",".join(items) + "]}\n"
    read, sizes = compact._RAW, []
    monkeypatch.setattr(compact, "_RAW", lambda part: (sizes.append(len(part)), read(part))[1])
    at = text.index('{"id":"2999"')
    assert text[at:compact.one(text, None, at)] == items[-1]
    first = text.index('{"id":"1"')
    assert text[first:compact.one(text, None, first)] == items[1]
    assert max(sizes) < 5000 < len(text)


def test_elements_of_text_not_ascii_are_parsed_from_the_texts_msgspec_made():
    """Not sliced out of the text and encoded again (~0.7 s of a large audit log's worker, names not in ASCII)."""
    import msgspec

    from pimtrail.collectors.rawjson import _FILE_SPEC, ITEMS, load_with_raw

    offered = []

    def typed(raw):
        offered.append((type(raw), bytes(raw)))
        return None  # the dict path then reads it: the value is the stdlib's

    items = [{"id": str(n), "name": "Zoë 中"} for n in range(5)]
    text = '[\n{"value":[' + ",".join(json.dumps(i, ensure_ascii=False) for i in items) + "]}\n]\n"
    value, raws = load_with_raw(text, _FILE_SPEC, text.encode(), typed)
    assert value[0]["value"] == items
    spans = raws[ITEMS + id(value[0])]
    assert [kind for kind, _ in offered] == [msgspec.Raw] * 5
    start = text.index("{", 2)
    assert [raw for _, raw in offered] == [text[start + s:start + e].encode() for s, e in spans]
