"""The daily ingest's shortcuts store exactly what the plain way stores (docs/benchmarks.md, round 4)."""

from __future__ import annotations

import gc
import sqlite3

import pytest

from pimtrail.bulk import paused_gc
from pimtrail.collectors.exportdir import read_export
from pimtrail.model import Page
from pimtrail.store import HistoryStore
from pimtrail.store.receipts import _Cut, digest, strip
from pimtrail.synthetic import generate

# every stored column but those naming the run (ingest time) or the code (version, and the hashes over it)
_SKIP = {"snapshot": {"ingested_at", "tool_version", "content_hash", "chain_hash", "prev_hash"}}


def _tables(path: str) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as conn:
        out = {}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                     "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"):
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in _SKIP.get(table, ())]
            out[table] = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1").fetchall()
        return out


def test_a_history_ingested_with_the_shortcuts_stores_what_building_every_fact_stores(tmp_path, monkeypatch):
    """Three days at 5 % churn: with unchanged elements kept (their facts compared as key sets) and
    without (another pimtrail version wrote the previous snapshot: every fact built and compared),
    every table holds the same rows, row ids included."""
    from pimtrail.store import ingest as ingest_module

    roots = generate(tmp_path / "exports", "small", days=3, churn=0.05)
    snaps = [read_export(root) for root in roots]

    def history(name: str, other_version: bool) -> str:
        path = str(tmp_path / name)
        with HistoryStore.open(path, create=True) as store:
            for n, snap in enumerate(snaps):
                if other_version:
                    monkeypatch.setattr(ingest_module, "__version__", f"other-{n}")
                store.ingest(snap)
            assert store.verify().ok
        monkeypatch.undo()
        return path

    kept, built = _tables(history("kept.db", False)), _tables(history("built.db", True))
    assert kept.keys() == built.keys()
    for table in kept:
        assert kept[table] == built[table], table
    assert len(kept["fact"]) > len(snaps[0].facts)  # versions were closed and opened along the way


def _page(text: str, volatile: tuple[str, ...] = ()) -> Page:
    """A body with its elements' offsets found as the reader finds them."""
    import json

    start = text.index("[") + 1
    decoder, spans, i = json.JSONDecoder(), [], start
    while text[i] in " \n":
        i += 1
    while text[i] != "]":
        _, end = decoder.raw_decode(text, i)
        spans.append((i, end))
        i = end
        while text[i] in ", \n":
            i += 1
    return Page("registration_details", 0, "", "/x", text, tuple(spans), volatile)


@pytest.mark.parametrize("text, volatile", [
    ('{"value":[{"id":"a","t":"1"},{"id":"b","t":"2"}]}', ("t",)),  # plain values, commas
    ('{"value":[\n{"id":"a","t":"1"},\n{"id":"b"},\n{"id":"c","t":7}]}', ("t",)),  # absent, a number
    ('{"value":[{"id":"a","t":"x\\"y"},{"n":"\\"t\\":","t":"z"}]}', ("t",)),  # escapes, pattern in a value
    ('{"value":[{"id":"é","t":"1"},{"id":"b","t":"ü"}]}', ("t",)),  # not ASCII: offsets are not bytes
    ('{"value":[{"id":"a","t":"1","u":"2"},{"id":"b","u":"3","t":"4"}]}', ("t", "u")),  # two keys
    ('{"value":[{"id":"a"} , {"id":"b","x":[1,{"c":"}"}]}]}', ()),  # spaced separators, nesting
])
def test_a_page_is_cut_as_the_definition_says(text, volatile):
    """Elements are hashed in place in the page's bytes; digests, values cut out, gaps and stored
    texts must be those of `strip` and `digest` applied to each element's own text."""
    page = _page(text, volatile)
    cut = _Cut(page)
    elements = [text[s:e] for s, e in page.items]
    stripped = [strip(e, volatile) if volatile else (e, None) for e in elements]
    assert cut.digests == [digest(s) for s, _ in stripped]
    assert cut.volatile == ([v for _, v in stripped] if volatile else [])
    assert cut.texts(list(range(len(elements)))) == [s for s, _ in stripped]
    assert cut.texts([1]) == [stripped[1][0]]
    gaps = [text[a:b] for (_, a), (b, _) in zip(page.items, page.items[1:])]
    assert cut.gaps == (None if set(gaps) <= {","} else gaps)


def test_what_a_bulk_step_built_is_not_young_when_the_collector_is_back():
    """The collector's next pass would otherwise go over every object built meanwhile."""
    if not gc.isenabled():
        pytest.skip("the collector is off in this process")
    with paused_gc():
        assert not gc.isenabled()
        built = [{"n": [n]} for n in range(1000)]
    assert gc.isenabled()
    young = {id(o) for o in gc.get_objects(generation=0)}
    assert not any(id(o) in young for o in built)
    assert gc.is_tracked(built[0])


def test_the_same_fact_twice_must_say_the_same_whether_kept_or_built():
    """A kind and key met twice is encoded both times and compared, whichever of the two comes from
    an unchanged element; the later record is the one written."""
    from pimtrail.errors import InputError
    from pimtrail.model import FactRecord
    from pimtrail.store.ingest import Facts

    unchanged = {("users", 0, 0), ("users", 0, 1)}

    def fact(index: int, name: str, key: str = "u1") -> FactRecord:
        return FactRecord("principal", key, principal_id=key, element=("users", 0, index),
                          build=lambda: {"id": key, "name": name})

    for first, second in ((0, 2), (2, 0), (0, 1), (2, 3)):  # kept+built, built+kept, kept+kept, built+built
        facts = Facts([fact(9, "x", "other"), fact(first, "a"), fact(second, "a")], unchanged, set())
        assert len(facts) == 2
        assert "u1" in facts.built["principal"] and "u1" not in facts.kept["principal"]
        assert facts.built["principal"]["u1"][0].element == ("users", 0, second)
        with pytest.raises(InputError, match="two different records for principal 'u1'"):
            Facts([fact(first, "a"), fact(second, "b")], unchanged, set())
    facts = Facts([fact(0, "a"), fact(2, "b", "u2")], unchanged, set())
    assert list(facts.kept["principal"]) == ["u1"] and list(facts.built["principal"]) == ["u2"]
