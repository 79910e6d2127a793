"""Event data kept as zstd frames (pimtrail/store/eventdata.py): what goes in comes out, frames name their
dictionary, a frame that cannot be read is an error (never other text), and `contains` finds what it did."""

from __future__ import annotations

import json

import pytest

from pimtrail.store import hashing
from pimtrail.store.eventdata import DICT_MIN, Codec, EventDataError, holds, train


def texts(n: int) -> list[str]:
    return [hashing.encode({"activity": f"Add member to role completed (PIM activation) {i % 7}",
                            "id": f"{i:08d}-aaaa-4bbb-8ccc-{i * 7919 % 10**12:012d}", "time": "2026-07-01T06:00:00Z",
                            "principal": {"upn": f"user{i}@contoso.example", "name": "Ünïcode Ñame"}})[0]
            for i in range(n)]


def test_frames_give_back_the_exact_text_with_and_without_a_dictionary():
    sample = texts(DICT_MIN)
    dict_id, data = train(sample)
    with_dict, without = Codec({dict_id: data}), Codec({})
    for text in sample[:50]:
        assert with_dict.decompress(with_dict.compress(text)) == text
        assert without.decompress(without.compress(text)) == text
        assert with_dict.decompress(without.compress(text)) == text  # frames made before the dictionary
    assert sum(len(with_dict.compress(t)) for t in sample) < sum(len(without.compress(t)) for t in sample)


def test_a_frame_that_cannot_be_read_is_an_error():
    sample = texts(DICT_MIN)
    dict_id, data = train(sample)
    frame = Codec({dict_id: data}).compress(sample[0])
    with pytest.raises(EventDataError):
        Codec({}).decompress(frame)  # its dictionary is not in the history
    with pytest.raises(EventDataError):
        Codec({dict_id: data}).decompress(b"\0" * 10)
    with pytest.raises(EventDataError):
        Codec({dict_id: data}).decompress(frame[:-3])


def test_contains_ignores_letter_case_and_skips_texts_json_would_escape():
    text = hashing.encode({"activity": "Add member to role completed (PIM activation)", "who": "Ünïcode"})[0]
    assert holds(["(pim ACTIVATION)"])(text)
    assert holds(["nothing", "ÜNÏCODE"])(text)
    assert holds(["outside of PIM", "(PIM activation)"])(text)
    assert not holds(["outside of PIM", "elsewhere"])(text)
    assert not holds(["outside of PIM"])(text)
    assert not holds([])(text)
    assert holds(None) is None and holds(['say "hi"']) is None and holds(["back\\slash"]) is None
    assert json.loads(text)["who"] == "Ünïcode"
