"""Receipts keep each body's exact text, in every form of dataset file (docs/export-format.md)."""

from __future__ import annotations

import json

import pytest

from pimtrail.collectors.exportdir import BODY_SPEC, load_with_raw, read_export
from pimtrail.errors import InputError

BODY_A = '{ "value" : [ {"id": "a", "name": "é"} ],\n  "@odata.nextLink": "https://graph/x?$skiptoken=1" }'
BODY_B = '{"value":[]}'


@pytest.mark.parametrize("text, bodies", [
    (f"\n{BODY_A}\n", [BODY_A]),  # one body
    (f"[ {BODY_A} ,\n {BODY_B} ]", [BODY_A, BODY_B]),  # pages
    (f'{{"pages": [{{"request": "/v1.0/users", "parent": "", "body": {BODY_A}}},'
     f' {{"parent": "", "body": {BODY_B}, "request": "/v1.0/users?2"}}]}}', [BODY_A, BODY_B]),
])
def test_page_payload_is_the_body_text_as_in_the_file(export, text, bodies):
    root = export()
    (root / "users.json").write_text(text, encoding="utf-8")
    snap = read_export(root)
    payloads = [p.payload for p in snap.pages if p.dataset == "users"]
    assert payloads == [b.encode() for b in bodies]


def test_load_with_raw_parses_like_json_loads():
    text = '{"responses": [{"id": "1", "status": 200, "body": {"value": [1, 2.5, null, true]}}], "x": [1]}'
    value, raws = load_with_raw(text, {"object": {"responses": {"array": {"object": {"body": BODY_SPEC}}}}})
    assert value == json.loads(text)
    assert raws[id(value["responses"][0]["body"])] == '{"value": [1, 2.5, null, true]}'


def test_malformed_files_are_still_reported_by_line_and_column(export):
    root = export()
    (root / "users.json").write_text('{"value": [\n  {"id": "a"},\n]}', encoding="utf-8")
    with pytest.raises(InputError, match="malformed JSON at line 3"):
        read_export(root)
