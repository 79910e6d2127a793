"""The Graph emulator behaves like Graph where pimtrail depends on it (plain HTTP, no SDK)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from urllib.parse import quote

import pytest

import exports
from pimtrail.emulator import (BATCH, Emulator, licence_missing, permission_missing, premium_missing,
                               throttled)

AUTH = {"Authorization": "Bearer test-token"}


def call(url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={**AUTH, **(headers or {}),
                                                              **({"Content-Type": "application/json"} if data else {})})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def pages(url: str) -> list[dict]:
    out = []
    while url:
        status, _, body = call(url)
        assert status == 200, body
        out.append(body)
        url = body.get("@odata.nextLink")
    return out


@pytest.fixture
def graph(export):
    with Emulator(export(), page_size=1, absent_empty=True) as emulator:
        yield emulator


def test_a_dataset_the_export_lacks_is_a_404_unless_asked_for_empty(export):
    with Emulator(export()) as strict:
        status, _, body = call(f"{strict.base_url}/identity/conditionalAccess/policies")
    assert status == 404 and "no ca_policies" in body["error"]["message"]


def test_pages_are_cut_by_the_server_with_absolute_next_links(graph):
    got = pages(f"{graph.base_url}/users?$select=id,displayName")
    assert [len(p["value"]) for p in got] == [1, 1]
    link = got[0]["@odata.nextLink"]
    assert link.startswith(graph.base_url + "/users?") and "$select=id,displayName" in link
    assert [p["value"][0]["id"] for p in got] == [exports.ALICE, exports.BOB]
    assert got[0]["@odata.context"] == f"{graph.url}/v1.0/$metadata#users"  # Graph always sends one


def test_empty_pages_still_carry_a_next_link(graph):
    graph.behaviour("role_definitions").empty_pages = (0, 2, 4)
    got = pages(f"{graph.base_url}/roleManagement/directory/roleDefinitions")
    assert [len(p["value"]) for p in got] == [0, 1, 0, 1, 0]
    assert all("@odata.nextLink" in p for p in got[:-1]) and "@odata.nextLink" not in got[-1]
    assert [r.page for r in graph.requests("role_definitions")] == [0, 1, 2, 3, 4]


def test_page_size_per_dataset_and_top(graph):
    graph.behaviour("users").page_size = 10
    assert [len(p["value"]) for p in pages(f"{graph.base_url}/users")] == [2]
    assert [len(p["value"]) for p in pages(f"{graph.base_url}/users?$top=1")] == [1, 1]


def test_required_filter_missing_is_a_400_and_filters_pick_the_dataset(graph):
    status, _, body = call(f"{graph.url}/v1.0/policies/roleManagementPolicyAssignments")
    assert status == 400 and body["error"]["code"] == "BadRequest" and "$filter" in body["error"]["message"]
    flt = quote("scopeId eq 'g1' and scopeType eq 'Group'")
    assert call(f"{graph.url}/v1.0/policies/roleManagementPolicyAssignments?$filter={flt}")[0] == 200
    assert graph.requests()[-1].dataset == "group_policy_assignments"
    assert graph.requests()[-1].parent == "g1"
    flt = quote("groupId eq 'g2'")
    call(f"{graph.url}/v1.0/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances?$filter={flt}")
    assert (graph.requests()[-1].dataset, graph.requests()[-1].parent) == ("group_eligibility_instances", "g2")
    status, _, _ = call(f"{graph.url}/v1.0/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances")
    assert status == 400


def test_per_parent_routes_and_beta(graph):
    status, _, body = call(f"{graph.base_url}/users/{exports.ALICE}/authentication/fido2Methods")
    assert status == 200 and body["value"][0]["model"] == "YubiKey 5"
    assert call(f"{graph.base_url}/users/{exports.BOB}/authentication/fido2Methods")[2]["value"] == []
    call(f"{graph.base_url}/identityGovernance/accessReviews/definitions/d1/instances/i1/decisions")
    assert (graph.requests()[-1].dataset, graph.requests()[-1].parent) == ("access_review_decisions", "d1/i1")
    call(f"{graph.url}/beta/roleManagement/directory/roleDefinitions?$filter={quote('isPrivileged eq true')}")
    assert graph.requests()[-1].dataset == "privileged_role_definitions"


def test_no_token_is_a_401(graph):
    request = urllib.request.Request(f"{graph.base_url}/organization")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 401
    assert graph.requests()[-1].authorized is False


def test_faults_use_graph_error_bodies_and_are_counted(graph):
    graph.inject("users", throttled(times=2, retry_after=7))
    graph.inject("role_eligibility_instances", licence_missing())
    graph.inject("ca_policies", premium_missing())
    graph.inject("organization", permission_missing())
    for _ in range(2):
        status, headers, body = call(f"{graph.base_url}/users")
        assert (status, headers["Retry-After"], body["error"]["code"]) == (429, "7", "TooManyRequests")
    assert call(f"{graph.base_url}/users")[0] == 200  # `times` used up
    codes = {name: call(f"{graph.base_url}{path}")[:3:2]
             for name, path in (("elig", "/roleManagement/directory/roleEligibilityScheduleInstances"),
                                ("ca", "/identity/conditionalAccess/policies"), ("org", "/organization"))}
    assert codes["elig"][0] == 400 and codes["elig"][1]["error"]["code"] == "AadPremiumLicenseRequired"
    assert codes["ca"][0] == 403 and codes["ca"][1]["error"]["code"] == \
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert codes["org"][0] == 403 and codes["org"][1]["error"]["code"] == "Authorization_RequestDenied"
    assert [(r.status, r.retry_after) for r in graph.requests("users")] == [(429, 7), (429, 7), (200, None)]


def test_batch_answers_each_request_with_its_own_status(graph):
    graph.inject("fido2_methods", throttled(times=1, retry_after=3, parent=exports.BOB))
    requests = [{"id": str(n), "method": "GET", "url": f"/users/{uid}/authentication/fido2Methods"}
                for n, uid in enumerate((exports.ALICE, exports.BOB))]
    status, _, body = call(f"{graph.base_url}/$batch", {"requests": requests})
    assert status == 200
    by_id = {r["id"]: r for r in body["responses"]}
    assert by_id["0"]["status"] == 200 and len(by_id["0"]["body"]["value"]) == 1
    assert by_id["1"]["status"] == 429 and by_id["1"]["headers"]["Retry-After"] == "3"
    logged = graph.requests("fido2_methods")
    assert [(r.batch, r.status) for r in logged] == [("0", 200), ("1", 429)]
    assert graph.requests(BATCH)[0].status == 200
    too_many = [dict(requests[0], id=str(n)) for n in range(21)]
    assert call(f"{graph.base_url}/$batch", {"requests": too_many})[0] == 400


def test_a_dataset_exported_with_an_error_replays_it(export):
    def refused(data):
        data["_manifest"]["datasets"]["registration_details"] = {"error": {
            "http_status": 403, "code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "message": "no P1"}}

    with Emulator(export(change=refused)) as graph:
        status, _, body = call(f"{graph.base_url}/reports/authenticationMethods/userRegistrationDetails")
    assert status == 403 and body["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


def test_runs_on_its_own(export):
    import subprocess
    import sys

    root = export()
    process = subprocess.Popen([sys.executable, "-m", "pimtrail.emulator", str(root), "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # printed once it listens
        url = line.split(" at ")[1].split()[0]
        status, _, body = call(f"{url}/organization")
        assert status == 200 and body["value"][0]["id"] == exports.TENANT
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_the_audit_log_answers_only_events_at_or_after_activity_date_time_ge(export):
    """The incremental audit window (collectors/graph/window.py): `(categories) and activityDateTime
    ge <time>`, as Graph takes it (activityDateTime supports $filter eq, ge, le)."""
    def audits(data):
        data["directory_audits"] = {"value": [
            exports._audit(f"a{n}", f"2026-06-{10 + n:02d}T12:00:00{'.1234567' if n == 2 else ''}Z",
                           "Add member to role completed (PIM activation)", f"c{n}", exports.ALICE, exports.BOB)
            for n in range(5)]}

    categories = "category eq 'RoleManagement' or category eq 'GroupManagement'"
    with Emulator(export(change=audits), page_size=2) as graph:
        url = f"{graph.base_url}/auditLogs/directoryAudits?$filter="
        since = pages(url + quote(f"({categories}) and activityDateTime ge 2026-06-12T12:00:00Z"))
        assert [i["id"] for p in since for i in p["value"]] == ["a2", "a3", "a4"]  # ge: 12:00:00.1234567 too
        assert len(since) == 2 and "activityDateTime ge 2026-06-12T12:00:00Z" in \
            urllib.parse.unquote(since[0]["@odata.nextLink"])  # the nextLink keeps the filter
        assert [r.dataset for r in graph.requests()] == ["directory_audits"] * 2
        whole = pages(url + quote(categories))
        assert [i["id"] for p in whole for i in p["value"]] == ["a0", "a1", "a2", "a3", "a4"]
        later = pages(url + quote(f"({categories}) and activityDateTime ge 2026-07-01T00:00:00Z"))
        assert later == [{"@odata.context": later[0]["@odata.context"], "value": []}]
        for bad in (f"({categories}) and activityDateTime ge yesterday",  # not a DateTimeOffset
                    f"{categories} and activityDateTime ge 2026-06-12T12:00:00Z"):  # `and` binds first
            status, _, body = call(url + quote(bad))
            assert status == 400 and body["error"]["code"] == "BadRequest", bad
        roles = quote("(isPrivileged eq true) and activityDateTime ge 2026-06-12T12:00:00Z")
        assert call(f"{graph.url}/beta/roleManagement/directory/roleDefinitions?$filter={roles}")[0] == 400
