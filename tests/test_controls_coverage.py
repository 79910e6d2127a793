"""Never fail open, through what controls read indirectly: a holding that comes through a group (its members, its
PIM for Groups memberships, the group's own role) is found by the control on the baseline plus the smallest
change; without the dataset it comes from, the control is not assessable rather than passing without it."""

from __future__ import annotations

import pytest

import tenant as t
from pimtrail.controls.model import Status
from pimtrail.timeutil import parse_iso
from test_controls import NOW, check, find

OPS_ELIGIBLE = "group_eligibility_instances"


def _ops_eligibility(data):  # Dan is eligible, through PIM for Groups, for membership of the Exchange Ops group
    return data[OPS_ELIGIBLE]["pages"][0]["body"]["value"][0]


def ops_group_holds(role):
    def change(data):
        data["role_assignment_instances"]["value"].append(
            t.instance(f"ra-ops-{role[:4]}", t.OPS_GROUP, role, parse_iso(NOW), start_days=-300, kind="group"))
    return change


def dan_is_a_guest(data):
    find(data, "users", "id", t.DAN)["userType"] = "Guest"


def dan_eligible_since_january(data):
    _ops_eligibility(data)["startDateTime"] = "2026-01-01T00:00:00Z"


def erin_member_who_never_signs_in(data):
    data["group_members"]["pages"][0]["body"]["value"].append(
        {"@odata.type": "#microsoft.graph.user", "id": t.ERIN, "displayName": "erin",
         "userPrincipalName": t.upn(t.ERIN)})
    entries = data["sign_in_activity"]["pages"][0]["body"]["value"]
    entries.append({"id": t.ERIN, "signInActivity": {"lastSignInDateTime": "2026-03-01T00:00:00Z"}})


def frank_denied_but_eligible_through_the_group(data):
    data[OPS_ELIGIBLE]["pages"][0]["body"]["value"].append(dict(_ops_eligibility(data), id="ge-frank",
                                                                  principalId=t.FRANK))


CASES = [  # control, the change it finds through a group, the dataset that change lives in (or depends on)
    ("PIM-GA-005", ops_group_holds(t.GA), Status.FAIL, OPS_ELIGIBLE),
    ("PIM-AUTH-007", ops_group_holds(t.SECURITY_ADMIN), Status.FAIL, OPS_ELIGIBLE),
    ("PIM-ACCT-010", dan_is_a_guest, Status.FAIL, OPS_ELIGIBLE),
    ("PIM-ACT-017", dan_eligible_since_january, Status.WARN, "role_assignment_instances"),  # the group's own role
    ("PIM-ACT-018", erin_member_who_never_signs_in, Status.WARN, "group_members"),
    ("PIM-REV-020", frank_denied_but_eligible_through_the_group, Status.FAIL, OPS_ELIGIBLE),
]


@pytest.mark.parametrize("control_id, change, found, dataset", CASES, ids=[c[0] for c in CASES])
def test_a_holding_through_a_group_is_not_passed_over_when_its_data_is_missing(tmp_path, control_id, change, found,
                                                                               dataset):
    result = check(tmp_path / "all", change)[control_id]
    assert result.status is found, [f.message for f in result.findings]

    def without(data):
        change(data)
        data.pop(dataset)
        data["_manifest"]["datasets"][dataset] = {"error": {"http_status": 403, "code": "Authorization_RequestDenied",
                                                            "message": "denied"}}

    result = check(tmp_path / "without", without)[control_id]
    assert result.status is Status.NOT_ASSESSABLE and dataset in result.reason, [f.message for f in result.findings]


CUSTOM = "c5000000-0000-4000-8000-00000000c0de"


def bob_holds_a_custom_role(flagged: set[str] | None):
    """Bob holds, permanently, a role no profile names; `flagged`: the roles Microsoft's isPrivileged marks
    (privileged_role_definitions), None: that optional dataset not collected (the baseline's case)."""
    def change(data):
        data["role_definitions"]["value"].append({"id": CUSTOM, "templateId": CUSTOM,
                                                  "displayName": "Custom Tenant Admin", "isBuiltIn": False,
                                                  "isEnabled": True, "rolePermissions": []})
        data["role_assignment_instances"]["value"].append(
            t.instance("ra-bob-custom", t.BOB, CUSTOM, parse_iso(NOW), start_days=-300))
        if flagged is not None:
            data["privileged_role_definitions"] = {"value": [{"id": r, "displayName": r, "isPrivileged": True}
                                                             for r in sorted(flagged)]}
            data["_manifest"]["datasets"]["privileged_role_definitions"] = {"file": "privileged_role_definitions.json"}
    return change


def test_a_role_no_profile_names_takes_its_tier_from_the_flag_or_is_not_assessed(tmp_path):
    flagged = check(tmp_path / "flagged", bob_holds_a_custom_role({t.GA, CUSTOM}))["PIM-STD-002"]
    assert flagged.status is Status.FAIL and "Custom Tenant Admin (tier 1)" in flagged.findings[0].message
    plain = check(tmp_path / "plain", bob_holds_a_custom_role({t.GA}))["PIM-STD-002"]
    assert plain.status is Status.PASS  # Microsoft does not call it privileged, and no profile does
    unknown = check(tmp_path / "unknown", bob_holds_a_custom_role(None))
    for control_id in ("PIM-STD-002", "PIM-POL-011", "PIM-GA-005"):
        assert unknown[control_id].status is Status.NOT_ASSESSABLE, control_id
        assert "privileged_role_definitions, for the tier of Custom Tenant Admin (not collected)" in \
            unknown[control_id].reason
    assert unknown["PIM-GA-001"].status is Status.PASS  # Global Administrator's own control needs no tier


def group_activation_at_night(group_tier_0: bool):
    """Dan activates his PIM for Groups membership of the Exchange Ops group at 01:27; the group holds Exchange
    Administrator (tier 1), and Security Administrator (tier 0) too when `group_tier_0`."""
    def change(data):
        start = parse_iso("2026-09-24T01:27:00Z")
        for event in t.activation(9, t.DAN, t.EXCHANGE_ADMIN, start, None):
            event["category"] = "GroupManagement"
            # as Entra logs a PIM for Groups activation: the access as the "role", the member, the group last
            event["targetResources"] = [{"id": "member", "type": "Role", "displayName": "Member"},
                                        {"id": t.DAN, "type": "User", "userPrincipalName": t.upn(t.DAN)},
                                        {"id": t.OPS_GROUP, "type": "Group", "displayName": "Exchange Ops"}]
            data["directory_audits"]["value"].append(event)
        if group_tier_0:
            ops_group_holds(t.SECURITY_ADMIN)(data)
    return change


def test_a_pim_for_groups_activation_is_as_sensitive_as_the_roles_the_group_holds(tmp_path):
    tier_1 = check(tmp_path / "tier-1", group_activation_at_night(False))["PIM-ACT-015"]
    assert tier_1.status is Status.PASS, [f.message for f in tier_1.findings]
    tier_0 = check(tmp_path / "tier-0", group_activation_at_night(True))["PIM-ACT-015"]
    assert tier_0.status is Status.WARN
    assert "dan@contoso-test.example activated Member of Exchange Ops outside business hours" in \
        tier_0.findings[0].message, tier_0.findings[0].message


def test_a_group_only_eligible_for_tier_0_does_not_make_its_activation_tier_0(tmp_path):
    def eligible_only(data):
        group_activation_at_night(False)(data)
        data["role_eligibility_instances"]["value"].append(
            t.instance("re-ops-sec", t.OPS_GROUP, t.SECURITY_ADMIN, parse_iso(NOW), end_days=150, kind="group"))
    assert check(tmp_path / "e", eligible_only)["PIM-ACT-015"].status is Status.PASS


def test_a_group_activation_without_the_group_s_roles_is_not_assessed(tmp_path):
    def without_roles(data):
        group_activation_at_night(True)(data)
        data.pop("role_assignment_instances")
        data["_manifest"]["datasets"]["role_assignment_instances"] = {"error": {
            "http_status": 403, "code": "Authorization_RequestDenied", "message": "denied"}}
    result = check(tmp_path / "w", without_roles)["PIM-ACT-015"]
    assert result.status is Status.NOT_ASSESSABLE and "role_assignment_instances" in result.reason
