"""The export reader's elements parsed by orjson are what the stdlib scanner gives (collectors/elementjson.py):
the same values (types, key order, float bits), the same element offsets, the same refusals."""

from __future__ import annotations

import json
import random
import re
import struct

import orjson
import pytest

from pimtrail.collectors import elementjson
from pimtrail.collectors.rawjson import _DECODER, _FILE_SPEC, ITEMS, NotJSON, load_with_raw


def same(a, b) -> bool:
    """Equal, of the same types all the way down, dict keys in the same order, floats bit for bit."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(map(same, a, b))
    if type(a) is float:
        return struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


def read(text: str, stdlib: bool, monkeypatch) -> tuple:
    """load_with_raw of a file's text: its value and each body's text and element offsets, or the error."""
    with monkeypatch.context() as patch:
        taken: list[int] = []
        parse = elementjson.Elements.parse

        def counted(self, i):
            out = None if stdlib else parse(self, i)
            if out is not None:
                taken.append(i)
            return out

        patch.setattr(elementjson.Elements, "parse", counted)
        try:
            value, raws = load_with_raw(text, _FILE_SPEC)
        except (ValueError, IndexError, RecursionError) as exc:
            return ("error", type(exc).__name__), taken
    bodies = value if isinstance(value, list) else [value]
    return (value, [(raws[id(b)], raws.get(ITEMS + id(b))) for b in bodies]), taken


def file_of(elements: list[str], sep: str = ",\n") -> str:
    return '[\n{"@odata.context":"x","value":[\n' + sep.join(elements) + '\n]}\n]\n'


def check(elements: list[str], monkeypatch, sep: str = ",\n", layout=file_of) -> list[int]:
    text = layout(elements, sep)
    fast, taken = read(text, False, monkeypatch)
    slow, _ = read(text, True, monkeypatch)
    assert same(fast, slow) if fast[0] != "error" else fast == slow, text[:300]
    if fast[0] != "error":
        assert same(fast[0], fffd(json.loads(text, parse_constant=lambda n: 1 / 0, parse_float=float)))
    return taken


def fffd(value):
    """The stdlib's value with each lone surrogate in its texts and keys made U+FFFD, as the reader gives it."""
    if type(value) is str:
        return re.sub("[\ud800-\udfff]", "\ufffd", value)
    if type(value) is list:
        return [fffd(v) for v in value]
    if type(value) is dict:
        return {fffd(k): fffd(v) for k, v in value.items()}
    return value


EDGE = [
    '{"a":1,"b":2,"a":3}',  # duplicate keys: the last value at the first place
    '{"a":{"x":1,"y":2,"x":[3]},"b":[{"k":1,"k":2}]}',
    '{"n":12345678901234567890}',  # past 64 bits: orjson would give a float
    '{"n":-9223372036854775809}',
    '{"n":123456789012345678901234567890}',
    '{"s":"12345678901234567890123"}',  # a long digit run in a string: read by the stdlib, same value
    '{"n":9223372036854775807,"m":-9223372036854775808,"u":18446744073709551615}',
    '{"f":0.1,"g":-0.0,"h":1E5,"i":1e-400,"j":2.2250738585072014e-308,"k":4.9e-324,"l":1.7976931348623157e308}',
    '{"f":0.30000000000000004,"g":123456789.123456789123456789,"h":-0,"i":0e0,"j":1.0}',
    '{"s":"\\ud83d\\ude00 \\u00e9 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0000"}',
    '{"s":"é ü 中文 😀","é":"key"}',
    '{"t":true,"f":false,"n":null,"e":{},"l":[],"d":[[[[{}]]]]}',
    '{ "spaced" : [ 1 , 2 ] , "x" : { } }',
    '{"a":1}  ',  # blanks before the comma
]
REFUSED = [
    '{"n":NaN}', '{"n":Infinity}', '{"n":-Infinity}', '{"n":1e400}', '{"n":-1e999}',
    '{"s":"\\ud800"}', '{"s":"\\udc00\\ud800"}', '{"s":"\\ud800\\u0041"}',  # lone surrogates: U+FFFD
    '{"\\udc00":"\\ud83d\\ude00\\ud83d","k":["\\\\ud800","\\uDBFF"]}',  # in a key; a pair; no escape; upper case
    '{"s":"a\x01b"}', '{"a":1,}', '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a" 1}', '{"a":tru}',
    '{"n":' + "1" * 5000 + "}",  # more digits than Python converts
    '{"d":' + "[" * 1100 + "]" * 1100 + "}",  # deeper than orjson reads
]


@pytest.mark.parametrize("element", EDGE + REFUSED)
def test_an_edge_element_reads_as_the_stdlib_reads_it(element, monkeypatch):
    check(['{"id":"before"}', element, '{"id":"after"}'], monkeypatch)


def test_orjson_takes_the_plain_elements_and_leaves_long_numbers_to_the_stdlib(monkeypatch):
    elements = ['{"id":"a","n":1}', '{"id":"b","n":12345678901234567890}', '{"id":"c"}']
    text = file_of(elements)
    taken = check(elements, monkeypatch)
    assert [text[i:i + 8] for i in taken] == ['{"id":"a', '{"id":"c']


def graph_file_of(elements: list[str], sep: str = ",") -> str:
    """Bodies as Graph sends them and the live collector writes them: each on one line, `value` right after its `[`
    (`collectors.compact`), here with a nextLink after it that holds brackets."""
    body = '{"@odata.context":"x","value":[' + sep.join(elements) + '],"@odata.nextLink":"https://g/?a=[1]&b=]"}'
    return "[\n" + body + ",\n" + '{"value":[' + sep.join(elements) + ']}' + "\n]\n"


def test_a_body_on_one_line_is_read_by_orjson_too(monkeypatch):
    """Element by element after a line break (`compact.one`), or at once after its `[` (`compact.ends`)."""
    elements = ['{"id":"%d","s":"},{\\"]}"}' % n for n in range(50)]
    assert len(check(elements, monkeypatch, sep=",")) == 50
    assert len(check(elements, monkeypatch, sep=",\r\n  ")) == 50
    assert len(check(elements, monkeypatch, sep=" , ", layout=graph_file_of)) == 100
    assert len(check(elements, monkeypatch, layout=graph_file_of)) == 100


@pytest.mark.parametrize("element", EDGE + REFUSED)
def test_an_edge_element_of_a_body_on_one_line_reads_as_the_stdlib_reads_it(element, monkeypatch):
    check(['{"id":"before"}', element, '{"id":"after"}'], monkeypatch, layout=graph_file_of)
    check([element, '{"id":"after"}'], monkeypatch, sep=",", layout=file_of)


@pytest.mark.parametrize("number", ["1e400", "NaN", "-Infinity"])
def test_what_json_has_no_value_for_is_still_refused(number):
    with pytest.raises(NotJSON):
        load_with_raw(file_of(['{"id":"a"}', '{"n":%s}' % number]), _FILE_SPEC)


def test_a_long_digit_run_anywhere_leaves_the_element_to_the_stdlib(monkeypatch):
    elements = ['{"id":"é","n":%s}' % n for n in ("1" * 18, "1" * 19, '"x%sx"' % ("2" * 19), "-" + "3" * 30)]
    text = file_of(elements)
    assert [text[i:i + 20] for i in check(elements, monkeypatch)] == ['{"id":"é","n":111111']


def _number(rng: random.Random) -> str:
    sign = rng.choice(["", "", "-"])
    digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 2, 5, 15, 16, 17, 18, 19, 20, 25, 40])))
    digits = digits.lstrip("0") or "0"
    kind = rng.random()
    if kind < 0.3:
        return sign + digits
    frac = "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 3, 17, 20, 30])))
    exp = rng.choice(["", "e", "E"])
    if exp:
        exp += rng.choice(["", "+", "-"]) + str(rng.choice([0, 1, 5, 22, 23, 300, 307, 308, 309, 320, 324, 330]))
    return sign + digits + ("." + frac if kind < 0.8 or not exp else "") + exp


def _string(rng: random.Random) -> str:
    pool = ["a", "Z", "0", " ", "é", "中", "😀", '\\"', "\\\\", "\\/", "\\n", "\\u00e9", "\\ud83d\\ude00",
            "\\u0000", "\\u001f", ":", ",", "[", "{", "}", "]", "1234567890"]
    return '"' + "".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) + '"'


def _value(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.45:
        return rng.choice([_string(rng), _string(rng), _number(rng), "true", "false", "null"])
    if roll < 0.75:
        keys = [_string(rng) for _ in range(rng.randint(0, 5))]
        if keys and rng.random() < 0.2:
            keys.append(rng.choice(keys))  # a duplicate key
        return "{" + ",".join(f"{k}:{_value(rng, depth + 1)}" for k in keys) + "}"
    return "[" + ",".join(_value(rng, depth + 1) for _ in range(rng.randint(0, 5))) + "]"


@pytest.mark.parametrize("layout", [file_of, graph_file_of])
def test_random_elements_read_as_the_stdlib_reads_them(layout, monkeypatch):
    rng = random.Random(7)
    taken = 0
    for _ in range(300):
        elements = ['{"id":%s,"v":%s}' % (_string(rng), _value(rng, 0)) for _ in range(rng.randint(1, 8))]
        taken += len(check(elements, monkeypatch, sep=rng.choice([",", ",\n", " ,\t"]) if layout is graph_file_of
                           else ",\n", layout=layout))
    assert taken > 300  # most were orjson's: the comparison is not of the stdlib with itself


def test_floats_round_as_python_rounds_them():
    rng = random.Random(11)
    for _ in range(200_000):
        text = _number(rng)
        try:
            mine = orjson.loads(text)
        except orjson.JSONDecodeError:  # only where the stdlib path refuses too (infinite)
            with pytest.raises(NotJSON):
                _DECODER.decode(text)
            continue
        integer = text.lstrip("-").split(".")[0].split("e")[0].split("E")[0]
        if len(integer) >= 19 and not any(c in text for c in ".eE"):
            continue  # a long integer: never offered to orjson
        assert same(mine, _DECODER.decode(text)), text


def test_a_text_with_a_lone_surrogate_is_read_by_the_stdlib():
    text = '{"value":[\n{"a":"\ud800"},\n{"b":1}\n]}'  # a str no file gives (files are decoded strictly)
    assert same(load_with_raw(text, _FILE_SPEC)[0], {"value": [{"a": "\ufffd"}, {"b": 1}]})


def test_a_lone_surrogates_escape_is_read_as_u_fffd_where_it_lies():
    """JSON lets a text escape a surrogate alone; no Unicode text holds one, so it could be neither hashed nor
    stored: the reader makes it U+FFFD, in texts and keys, and leaves a pair, and an escaped backslash, as they are.
    The element's offsets, which its raw receipt keeps, are the stdlib's."""
    element = '{"s":"a\\ud800b","\\uDC00":["\\ud83d\\ude00","\\\\ud800"],"n":1}'
    value, raws = load_with_raw(file_of(['{"id":"x"}', element]), _FILE_SPEC)
    body = value[0]
    assert same(body["value"][1], {"s": "a\ufffdb", "\ufffd": ["\U0001f600", "\\ud800"], "n": 1})
    text = file_of(['{"id":"x"}', element])
    start = text.index('{"@odata')
    assert [text[start + a:start + b] for a, b in raws[ITEMS + id(body)]] == ['{"id":"x"}', element]


@pytest.mark.parametrize("chunk", [1, 7, 19, 64, 1 << 16])
def test_an_ascii_files_long_digit_runs_are_found_across_its_chunks(chunk, monkeypatch):
    """An ASCII file is searched `_CHUNK` bytes at a time for every place a run of 19 digits starts (a run across
    two chunks too), and an element holding one is left to the stdlib; the others are taken by orjson."""
    monkeypatch.setattr(elementjson, "_CHUNK", chunk)
    rng = random.Random(chunk)
    data = bytes(rng.choice(b"0123456789x") for _ in range(3000))
    chunks = range((len(data) + chunk - 1) // chunk)
    assert [at for n in chunks for at in elementjson._chunk_runs(data, n)] == \
        [i for i in range(len(data) - 18) if data[i:i + 19].isdigit()]
    elements = ['{"id":"%d","n":%s}' % (k, rng.choice(["1" * 18, "7" * 19, "12345", '"x%sx"' % ("9" * 25)]))
                for k in range(80)]
    taken = check(elements, monkeypatch)
    assert len(taken) == sum(1 for e in elements if "7" * 19 not in e and "9" * 19 not in e) > 10
