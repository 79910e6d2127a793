"""Elements decoded typed (collectors/normalize/typed.py: audit entries, users, registration rows) give the records
the dict path gives: the same events or facts (ids, times, data, columns), or the same error, for elements of Graph's
shape and for every way off it (an unknown property, a number, a value of another type, a moment off Graph's form, an
out-of-range number, escapes, duplicate keys, whitespace), with the same canonical text (a typed record holds no
number, so it is encoded without looking for floats: `hashing.encode`'s `textual`). And the typed path is the one
taken for Graph's shape."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from pimtrail.collectors import elementjson
from pimtrail.collectors.normalize import audit, authn, directory, reviews
from pimtrail.collectors.normalize.base import DatasetPages, RawPage
from pimtrail.collectors.rawjson import BODY_SPEC, load_with_raw
from pimtrail.errors import InputError
from pimtrail.store import hashing

BASE = {
    "id": "fb996e7d-23c1-4678-97b4-31cbbb1e43ac", "category": "RoleManagement",
    "correlationId": "8b5ea349-e7cb-49be-9d2a-38eb46941b50", "result": "success", "resultReason": "Activation expired",
    "activityDisplayName": "Add member to role completed (PIM activation)", "activityDateTime": "2026-07-01T05:58:00Z",
    "loggedByService": "PIM", "operationType": "Add",
    "initiatedBy": {"user": {"id": "ac0bba21-401e-461c-9ac7-0b0c675a9ab2", "displayName": "Jonas Ivanova",
                             "userPrincipalName": "jonas@contoso.example", "ipAddress": "203.0.113.219"},
                    "app": None},
    "targetResources": [
        {"id": "966707d0-3269-4727-9be2-8c3a10f19b9d", "displayName": "Password Administrator", "type": "Role",
         "userPrincipalName": None, "groupType": None, "modifiedProperties": []},
        {"id": "ac0bba21-401e-461c-9ac7-0b0c675a9ab2", "displayName": "Jonas Ivanova", "type": "User",
         "userPrincipalName": "jonas@contoso.example", "groupType": None,
         "modifiedProperties": [{"displayName": "Role.DisplayName", "oldValue": None, "newValue": "\"Password\""}]},
        {"id": "0c1e52a6-52c0-4f3d-9a54-0a4b7f3c1d2e", "displayName": "RG-Helpdesk", "type": "Group",
         "userPrincipalName": None, "groupType": "azureAD", "modifiedProperties": []},
    ],
    "additionalDetails": [{"key": "StartTime", "value": "2026-07-01T05:58:00Z"},
                          {"key": "ExpirationTime", "value": "2026-07-01T06:58:00Z"}],
}
USER = {"id": "ac0bba21-401e-461c-9ac7-0b0c675a9ab2", "userPrincipalName": "jonas@contoso.example",
        "displayName": "Jonas Ivanova", "userType": "Member", "accountEnabled": True, "onPremisesSyncEnabled": None,
        "createdDateTime": "2024-03-18T19:36:00Z"}
REGISTRATION = {"id": "ac0bba21-401e-461c-9ac7-0b0c675a9ab2", "userPrincipalName": "jonas@contoso.example",
                "userDisplayName": "Jonas Ivanova", "userType": "member", "isAdmin": True, "isSsprRegistered": False,
                "isSsprEnabled": True, "isSsprCapable": False, "isMfaRegistered": True, "isMfaCapable": True,
                "isPasswordlessCapable": False, "methodsRegistered": ["microsoftAuthenticatorPush", "fido2"],
                "isSystemPreferredAuthenticationMethodEnabled": True, "systemPreferredAuthenticationMethods": ["Fido2"],
                "userPreferredMethodForSecondaryAuthentication": "push", "lastUpdatedDateTime": "2026-07-01T02:00:00Z"}
DECISION = {"id": "037dc705-a44c-4084-9511-067651a7b74d", "accessReviewId": "fe331a19-1d9d-47ac-b37b-49ac376fadda",
            "decision": "Approve", "justification": "Still needed", "recommendation": "Approve",
            "applyResult": "AppliedSuccessfully", "appliedDateTime": "2026-02-16T08:00:00Z",
            "appliedBy": {"id": "00000000-0000-0000-0000-000000000000", "displayName": "", "userPrincipalName": ""},
            "reviewedDateTime": "2026-02-06T16:18:00Z",
            "reviewedBy": {"id": "7e6e41ad-68be-4ae4-a783-6d5af3ab9d85", "displayName": "Jonas Ivanova",
                           "userPrincipalName": "jonas@contoso.example"},
            "principalLink": "https://graph.microsoft.com/v1.0/users/a3cb130f-a894-49c4-a643-f375f0cb6ce2",
            "resourceLink": "https://graph.microsoft.com/beta/roleManagement/directory/roleDefinitions/9b895d92",
            "resource": {"id": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "displayName": "Application Administrator",
                         "type": "directoryRole"},
            "principal": {"@odata.type": "#microsoft.graph.userIdentity", "id": "a3cb130f-a894-49c4-a643-f375f0cb6ce2",
                          "displayName": "Grace Dubois", "userPrincipalName": "grace@contoso.example"}}
APP = {"appId": "01fc33a7-78ba-4d2f-a4b7-768e336e890e", "displayName": "MS-PIM",
       "servicePrincipalId": "5c0d847a-21c0-469f-931a-26a1f76b4dca", "servicePrincipalName": None}
ODD = [None, "", 0, 7, -1.5, True, False, [], [1], ["fido2", 2], ["x"], {}, {"id": "x"}, "text",
       "2026-07-01T05:58:00Z"]
MOMENTS = ["2026-07-01T05:58:00.1234567Z", "2026-07-01T05:58:00+02:00", "2026-02-30T05:58:00Z",
           "2026-07-01T25:00:00Z", "2026-07-01", "yesterday", "2026-07-01T05:58:00z"]
TEXTS = ["caf\u00e9", "\U0001f600", "a\"b", "back\\slash", "line\nbreak", "nul\u0000", "", " ", "=1+1", "Guest",
         "x#EXT#@contoso.example"]


def _paths(value: Any, at: tuple = ()) -> list[tuple]:
    """Every place in an entry: the keys and indexes leading to each value."""
    out = [at]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _paths(inner, at + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            out += _paths(inner, at + (index,))
    return out


def _set(entry: Any, at: tuple, value: Any) -> None:
    for step in at[:-1]:
        entry = entry[step]
    entry[at[-1]] = value


def _mutated(base: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    entry = copy.deepcopy(base)
    if base is BASE and rng.random() < 0.3:
        entry["initiatedBy"] = {"user": rng.choice([None, {}, {"id": None}]), "app": dict(APP)}
    if base is DECISION and rng.random() < 0.2:  # an identity empty, or with its properties null
        entry[rng.choice(["appliedBy", "reviewedBy", "principal"])] = rng.choice([{}, {"id": None}, None])
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        places = [p for p in _paths(entry) if p]
        at = rng.choice(places)
        roll = rng.random()
        if roll < 0.15:  # a property dropped
            parent = entry
            for step in at[:-1]:
                parent = parent[step]
            if isinstance(parent, dict):
                del parent[at[-1]]
        elif roll < 0.3:  # an unknown property beside it
            parent = entry
            for step in at[:-1]:
                parent = parent[step]
            if isinstance(parent, dict):
                parent[rng.choice(["userType", "extra", "@odata.type", "homeTenantId", "signInActivity",
                                   "defaultMfaMethod"])] = rng.choice(ODD + TEXTS)
        elif roll < 0.45:
            _set(entry, at, rng.choice(MOMENTS))
        elif roll < 0.7:
            _set(entry, at, rng.choice(TEXTS))
        else:
            _set(entry, at, copy.deepcopy(rng.choice(ODD)))
    return entry


def _text(entry: dict[str, Any], rng: random.Random) -> str:
    """The entry as one line of an export, written in one of the ways JSON allows."""
    text = json.dumps(entry, ensure_ascii=rng.random() < 0.5, separators=rng.choice([(",", ":"), (", ", ": ")]))
    roll = rng.random()
    if roll < 0.1:  # a property twice: the later one counts
        name = rng.choice(list(entry) or ["id"])
        text = text[:-1] + ", " + json.dumps({name: rng.choice(ODD + TEXTS)})[1:]
    elif roll < 0.14:  # numbers JSON has and a float cannot hold, where the entry is not read
        text = text[:-1] + rng.choice([', "extra": 1e400}', ', "extra": -1e400}', ', "extra": 12345678901234567890123}',
                                       ', "extra": [1.5e3, -0]}'])
    elif roll < 0.17:  # an escape of a lone surrogate, a solidus
        text = text.replace('"Jonas Ivanova"', rng.choice(['"\\ud800"', '"a\\/b"', '"\\u00e9\\ud83d\\ude00"']))
    return text


def _facts(facts) -> list:
    return [(f.kind, f.key, f.principal_id, f.role_id, f.group_id, f.element, f.data, _encoded(f)) for f in facts]


def _encoded(record: Any) -> tuple[str, str]:
    """The record's canonical text and digest as the ingest makes them: without looking for floats when it is
    `textual`, which only a record holding no number may be."""
    if record.textual:
        assert not _numbers(record.data), record.data
    return hashing.encode(record.data, record.textual)


def _numbers(value: Any) -> list:
    """The numbers in a record's data (true and false are not)."""
    if type(value) in (int, float):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


DATASETS = {  # dataset: (its element of Graph's shape, its normaliser's records as compared, its typed object)
    "directory_audits": (BASE, lambda pages: [(ev.kind, ev.source_id, ev.occurred_at, ev.columns(), _encoded(ev))
                                              for ev in pages.normalised(audit.directory_audits)], audit.Entry),
    "users": (USER, lambda pages: [_facts(part) for part in pages.normalised(directory.users)], directory.User),
    "registration_details": (REGISTRATION, lambda pages: _facts(pages.normalised(authn.registrations)),
                             authn.Registration),
    "access_review_decisions": (DECISION, lambda pages: _facts(pages.normalised(reviews.decisions)),
                                reviews.Decision),
}
PARENTS = {"access_review_decisions": "0c9d9b2e-def/fe331a19-inst"}  # a decision's page names its review instance


def _read(texts: list[str], typed: bool, dataset: str = "directory_audits", one_line: bool = False
          ) -> tuple[list, int]:
    """The records of a page of `dataset` holding `texts`, one a line (`one_line`: all on one, as Graph sends a page),
    as its normaliser makes them, or the error; and how many elements were decoded typed."""
    from pimtrail.collectors.exportdir import _TYPED

    _, records, kind = DATASETS[dataset]
    body = '{"value":[' + ",".join(texts) + "]}" if one_line else '{"value":[\n' + ",\n".join(texts) + "\n]}"
    try:
        value, raws = load_with_raw(body, BODY_SPEC, typed=_TYPED[dataset] if typed else None)
    except ValueError as exc:
        return [("not JSON", type(exc).__name__)], 0
    n_typed = sum(type(v) is kind for v in value["value"])
    pages = DatasetPages(dataset, f"{dataset}.json", [RawPage(PARENTS.get(dataset, ""), "req", value)])
    try:
        return records(pages), n_typed
    except InputError as exc:
        return [("error", str(exc))], n_typed


def test_graph_shape_is_taken_typed_and_gives_the_dict_paths_event():
    entries = [copy.deepcopy(BASE), dict(copy.deepcopy(BASE), initiatedBy={"user": None, "app": APP})]
    texts = [json.dumps(e) for e in entries]
    typed, n_typed = _read(texts, True)
    assert n_typed == 2
    assert typed == _read(texts, False)[0]
    data, principal, role, correlation = typed[0][3]
    assert (principal, role, correlation) == ("ac0bba21-401e-461c-9ac7-0b0c675a9ab2",
                                              "966707d0-3269-4727-9be2-8c3a10f19b9d", BASE["correlationId"])
    assert data["group_id"] == "0c1e52a6-52c0-4f3d-9a54-0a4b7f3c1d2e"
    assert typed[1][3][0]["initiated_by"] == {"type": "app", "id": APP["servicePrincipalId"],
                                              "app_id": APP["appId"], "name": "MS-PIM"}


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("seed", range(3))
def test_random_elements_give_the_same_records_or_errors_both_ways(dataset, seed):
    rng = random.Random(seed)
    n_typed = 0
    for _ in range(400):
        text = _text(_mutated(DATASETS[dataset][0], rng), rng)
        typed, taken = _read([text], True, dataset)
        assert typed == _read([text], False, dataset)[0], text
        n_typed += taken
    assert 40 < n_typed < 400  # both paths were exercised


def _cut(texts: list[str], dataset: str) -> list | None:
    """Where the elements of a page on one line holding `texts` lie, as the reader cuts it (None: not read)."""
    from pimtrail.collectors.exportdir import _TYPED
    from pimtrail.collectors.rawjson import ITEMS

    try:
        value, raws = load_with_raw('{"value":[' + ",".join(texts) + "]}", BODY_SPEC, typed=_TYPED[dataset])
    except ValueError:
        return None
    return raws[ITEMS + id(value)]


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("seed", range(2))
def test_a_page_on_one_line_decoded_at_once_gives_what_each_element_alone_gives(dataset, seed, monkeypatch):
    """A body on one line, ASCII, is offered to the typed decoder as a whole array first (`Elements.whole`): taken
    when every element is one it takes alone, else each element is offered alone. The records are the dict path's
    and the element-by-element path's either way."""
    rng = random.Random(seed)
    whole, taken = elementjson.Elements.whole, []
    monkeypatch.setattr(elementjson.Elements, "whole",
                        lambda self, at: (lambda made: (taken.append(made is not None), made)[1])(whole(self, at)))
    for _ in range(60):
        texts = []
        while len(texts) < rng.randint(1, 4):
            text = _text(_mutated(DATASETS[dataset][0], rng) if rng.random() < 0.3 else DATASETS[dataset][0], rng)
            if text.isascii():  # where offsets are the bytes': the file's bytes are decoded at once
                texts.append(text)
        at_once, cut = _read(texts, True, dataset, one_line=True), _cut(texts, dataset)
        assert at_once[0] == _read(texts, False, dataset)[0]
        with monkeypatch.context() as alone:
            alone.setattr(elementjson.Elements, "whole", lambda self, at: None)
            assert at_once == _read(texts, True, dataset, one_line=True) and cut == _cut(texts, dataset)
    assert True in taken and False in taken  # both ways were taken


@pytest.mark.parametrize("dataset", ["users", "registration_details", "access_review_decisions"])
def test_users_registration_rows_and_decisions_of_graphs_shape_are_taken_typed(dataset):
    base = DATASETS[dataset][0]
    texts = [json.dumps(base), json.dumps(dict(base, id="5c0d847a-21c0-469f-931a-26a1f76b4dca"))]
    typed, n_typed = _read(texts, True, dataset)
    assert n_typed == 2 and typed == _read(texts, False, dataset)[0]


def test_a_number_too_large_where_the_entry_is_not_read_is_refused_as_before():
    text = json.dumps(BASE)[:-1] + ', "extra": 1e400}'
    assert _read([text], True) == _read([text], False) == ([("not JSON", "NotJSON")], 0)


def test_fractions_of_a_second_are_dropped_as_the_dict_path_drops_them():
    text = json.dumps(dict(BASE, activityDateTime="2026-07-01T05:58:00.1234567Z"))
    typed, taken = _read([text], True)
    assert taken == 1 and typed == _read([text], False)[0]
    assert typed[0][3][0]["time"] == "2026-07-01T05:58:00Z"


@pytest.mark.parametrize("change, field", [
    ({"id": ""}, "value[0].id"), ({"id": 7}, "value[0].id"),
    ({"activityDateTime": "2026-02-30T05:58:00Z"}, "value[0].activityDateTime"),
    ({"targetResources": [{"type": 5}]}, "value[0]"), ({"initiatedBy": {"user": {"id": 5}}}, "value[0].initiatedBy"),
])
def test_entries_off_graphs_shape_are_refused_naming_the_element(change, field):
    (kind, message), = _read([json.dumps(dict(BASE, **change))], True)[0]
    assert kind == "error" and f"directory_audits.json: {field}" in message


def test_a_long_run_of_digits_in_a_text_is_read_typed_and_as_the_dict_path_reads_it():
    """The typed decoders read no number, so they are offered elements the dict path gives the stdlib's scanner
    (a run of 19 digits could be an integer orjson reads as a float): the same text either way."""
    text = json.dumps(dict(BASE, resultReason="ticket 12345678901234567890123456"))
    typed, taken = _read([text], True)
    assert taken == 1 and typed == _read([text], False)[0]
    assert typed[0][3][0]["result_reason"] == "ticket 12345678901234567890123456"


@pytest.mark.parametrize("dataset, texts", [
    ("users", ['{"id":"a","createdDateTime":"9999-12-31T23:59:59-01:00"}', '{"id":""}']),
    ("directory_audits", ['{"id":""}', '{"id":"a","activityDateTime":"0001-01-01T00:00:00+01:00"}']),
    ("access_review_decisions", ['{"id":"a","reviewedDateTime":"9999-12-31T23:59:59-01:00"}', '{"id":7}']),
    ("access_review_decisions", ['{"id":"a","appliedDateTime":"0001-01-01T00:00:00+01:00"}']),
])
def test_a_moment_out_of_range_in_utc_is_refused_alike_both_ways(dataset, texts):
    """A moment real in its zone and out of range in UTC: the typed path does not vouch for it, and the dict path
    names it, whichever element of the page comes first (found by a review: an OverflowError escaped the reading)."""
    typed = _read(texts, True, dataset)[0]
    assert typed == _read(texts, False, dataset)[0]
    assert typed[0][0] == "error"


@pytest.mark.parametrize("dataset", DATASETS)
def test_records_decoded_typed_are_textual_and_others_are_not(dataset):
    """Only a record built from a typed element skips the search for floats: one read as a dict may hold numbers."""
    from pimtrail.collectors.exportdir import _TYPED

    _, records, kind = DATASETS[dataset]
    texts = [json.dumps(DATASETS[dataset][0]), json.dumps(dict(DATASETS[dataset][0], extra=1.5e-7))]
    for typed in (True, False):
        value, _ = load_with_raw('{"value":[\n' + ",\n".join(texts) + "\n]}", BODY_SPEC,
                                 typed=_TYPED[dataset] if typed else None)
        pages = DatasetPages(dataset, f"{dataset}.json", [RawPage(PARENTS.get(dataset, ""), "req", value)])
        made = pages.normalised({"directory_audits": audit.directory_audits, "users": lambda p: directory.users(p)[0],
                                 "registration_details": authn.registrations,
                                 "access_review_decisions": reviews.decisions}[dataset])
        assert [r.textual for r in made] == [typed, False]


def test_a_float_in_data_is_written_as_the_stdlib_writes_it_unless_the_record_is_textual():
    """What `textual` skips: orjson writes 1.5e-07 as 1.5e-7, the canonical form is the stdlib's."""
    data = {"id": "x", "ratio": 1.5e-7}
    assert hashing.encode(data)[0] == '{"id":"x","ratio":1.5e-07}'
    for textual in (False, True):  # a lone surrogate (which the reader never gives) is refused either way
        with pytest.raises(UnicodeEncodeError):
            hashing.encode({"id": "x", "name": "\ud800"}, textual)
