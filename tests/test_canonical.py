"""The canonical JSON that facts and events are hashed as (`pimtrail.store.hashing.canonical`) is the stdlib
encoder's, byte for byte, whichever encoder writes it: a history written before orjson was used verifies, and
an unchanged fact keeps its digest."""

from __future__ import annotations

import enum
import json
import random
import struct
from datetime import datetime

import pytest

from pimtrail import collect
from pimtrail.store import hashing

STDLIB = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode  # `hashing.compact`: keys in order


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


def _float(rng: random.Random) -> float:
    while True:
        x = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        if x == x and abs(x) != float("inf"):
            return x


def _value(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "float", "small", "none", "bool", "big"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(rng.choice('aé日\x00\x1f\x7f"\\\n\t\u2028𝄞:0.0000e-1,[') for _ in range(rng.randint(0, 12)))
    if kind == "int":
        return rng.randint(-2**63, 2**63 - 1)
    if kind == "big":
        return rng.choice([2**64, -2**70, 10**30])
    if kind == "float":
        return _float(rng)
    if kind == "small":
        return rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "list":
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {"".join(rng.choice("abé日\x01Z") for _ in range(rng.randint(0, 4))): _value(rng, depth + 1)
            for _ in range(rng.randint(0, 5))}


def test_random_documents_encode_as_the_stdlib_does():
    rng = random.Random(7)
    for _ in range(20_000):
        doc = {"v": _value(rng), "w": [_value(rng)]}
        assert hashing.canonical(doc) == STDLIB(doc).encode()
        assert hashing.compact(doc) == COMPACT(doc)


@pytest.mark.parametrize("doc", [
    {"f": 1e-05}, {"f": [2.5e-09]}, {"f": 1e16}, {"f": -0.0}, {"f": 1e300}, {"f": 0.0001},  # floats orjson writes otherwise
    {1: "int key"}, {"n": 10**30},  # what orjson refuses
    {"e": Level.HIGH, "s": Name("x"), "t": (1, 2)},  # subclasses and tuples
    {"k": "0.0000", "t": "06:00:00.0000000Z", "g": "bbbbbbbe-0000-4000"},  # strings that look like numbers
    [], {}, [{}], {"": ""},
])
def test_edge_cases_encode_as_the_stdlib_does(doc):
    assert hashing.canonical(doc) == STDLIB(doc).encode()
    assert hashing.compact(doc) == COMPACT(doc)
    assert hashing.compact([doc, {"z": 1, "a": 2}]) == COMPACT([doc, {"z": 1, "a": 2}])  # keys as they came


@pytest.mark.parametrize("doc", [{"d": datetime(2026, 7, 1)}, {"s": "\ud800"}, {"x": object()}])
def test_what_the_stdlib_refuses_is_refused(doc):
    with pytest.raises((TypeError, UnicodeEncodeError)):
        STDLIB(doc).encode()
    with pytest.raises((TypeError, UnicodeEncodeError)):
        hashing.canonical(doc)


def test_the_sample_quarter_encodes_as_the_stdlib_does():
    snaps = collect.sample_snapshots()
    docs = [f.data for snap in snaps for f in snap.facts] + [e.data for snap in snaps for e in snap.events]
    assert len(docs) > 1000
    assert [hashing.canonical(d) for d in docs] == [STDLIB(d).encode() for d in docs]


def test_activation_joins_encode_as_the_stdlib_does():
    """`joined.encode` (what `activation.joined` holds, which `verify` compares): the sample quarter's joins."""
    from pimtrail.activations import join_activations
    from pimtrail.store.joined import FIELDS, encode

    snaps = collect.sample_snapshots()
    joins = list(join_activations(e.data for snap in snaps for e in snap.events if e.kind == "audit"))
    assert len(joins) > 20 and any(a.approvers for a in joins) and any(a.duration_hours for a in joins)
    assert [encode(a) for a in joins] == [COMPACT([getattr(a, n) for n in FIELDS]) for a in joins]


@pytest.mark.parametrize("twice", [False, True], ids=["unique", "a-pair-twice"])
def test_the_events_digest_sorts_as_the_triples_sort(twice):
    """`events_digest` sorts each kind's triples by their source ids (`_sorted_triples`): the order `sorted` gives the
    triples, NUL and non-ASCII source ids included; with a (kind, source id) there twice, by the whole triple."""
    rng = random.Random(7)
    alphabet = ["a", "b", "\0", "é", "Z", "0", "-", "\U0001f600"]
    items = [(rng.choice(["audit", "request", "aud"]), "".join(rng.choices(alphabet, k=rng.randint(0, 6))),
              f"{rng.getrandbits(64):016x}") for _ in range(3000)]
    items = list({item[:2]: item for item in items}.values())  # unique by (kind, source id)
    if twice:
        items.append((items[5][0], items[5][1], "0" * 16))
    assert hashing._sorted_triples(list(items)) == sorted(items)
    assert hashing.events_digest(items) == hashing.sha256_hex(STDLIB([list(t) for t in sorted(items)]).encode())
