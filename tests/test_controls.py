"""Every control: the compliant baseline passes; the smallest change fails it; a missing dataset
makes it not assessable. Exceptions, profiles and the registry are checked here too."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import exports
import tenant as t
from pimtrail.check import run_check
from pimtrail.collectors.exportdir import read_export
from pimtrail.config import parse_config
from pimtrail.controls.engine import frameworks_for
from pimtrail.controls.model import Status
from pimtrail.controls.profiles import available_profiles, load_profile
from pimtrail.controls.registry import all_controls
from pimtrail.store import HistoryStore
from pimtrail.timeutil import iso, parse_iso

NOW = "2026-09-30T06:00:00Z"


def check(tmp_path: Path, change=None, *, weeks: int = 1, profile: str | None = None, config_change=None):
    """Collect `weeks` weekly snapshots of the baseline (the last one changed) and check the last."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = str(tmp_path / "history.db")
    data = None
    with HistoryStore.open(db, create=True) as store:
        for week in range(weeks - 1, -1, -1):
            data = t.compliant(iso(parse_iso(NOW) - timedelta(weeks=week)))
            if week == 0 and change:
                change(data)
            store.ingest(read_export(exports.write(tmp_path / f"export-{week}", data)))
        config = data["_config"]
        if config_change:
            config_change(config)
        report = run_check(store, parse_config(config), profile=profile, save=False)
    return {r.control.id: r for r in report.results}


def find(data, name, key, value):
    body = data[name]
    items = body["value"] if "value" in body else [v for p in body["pages"] for v in p["body"]["value"]]
    return next(i for i in items if i.get(key) == value)


def policy_rule(data, role, rule_id):
    return next(r for r in find(data, "role_policy_assignments", "roleDefinitionId", role)["policy"]["rules"]
                if r["id"] == rule_id)


def add_eligible_ga(data):
    data["role_eligibility_instances"]["value"].append(t.instance("re-carol-ga", t.CAROL, t.GA, parse_iso(NOW), end_days=30))


def outside_pim_event(data):
    data["directory_audits"]["value"].append(t.audit("out-1", "2026-09-20T12:00:00Z",
                                                     "Add member to role outside of PIM (permanent)",
                                                     "corr-out", t.ERIN, t.BOB, t.EXCHANGE_ADMIN))


def many_activations(data):
    for n in range(6):
        data["directory_audits"]["value"] += t.activation(
            100 + n, t.BOB, t.EXCHANGE_ADMIN, parse_iso(NOW) - timedelta(days=6) + timedelta(hours=n), None)


# control id -> (the smallest change that breaks it, the status it must then have)
FAILS = {
    "PIM-GA-001": (lambda d: d["_config"]["break_glass"]["accounts"].remove(t.BG2), Status.FAIL),
    "PIM-STD-002": (lambda d: d["role_assignment_instances"]["value"].append(
        t.instance("ra-bob", t.BOB, t.EXCHANGE_ADMIN, parse_iso(NOW))), Status.FAIL),
    "PIM-STD-003": (outside_pim_event, Status.FAIL),
    "PIM-STD-004": (lambda d: find(d, "role_eligibility_instances", "id", "re-alice").update(endDateTime=None), Status.FAIL),
    "PIM-GA-005": (add_eligible_ga, Status.FAIL),
    "PIM-BG-006": (lambda d: d["_config"]["break_glass"]["accounts"].append(t.upn(t.CAROL)), Status.FAIL),
    "PIM-AUTH-007": (lambda d: [find(d, "registration_details", "id", t.ALICE).update(methodsRegistered=["sms"]),
                                d["fido2_methods"]["pages"].pop(2)], Status.FAIL),
    "PIM-AUTH-008": (lambda d: policy_rule(d, t.SECURITY_ADMIN, "AuthenticationContext_EndUser_Assignment")
                     .update(isEnabled=False), Status.FAIL),
    "PIM-AUTH-009": (lambda d: find(d, "ca_policies", "id", "ca-admins").update(
        state="enabledForReportingButNotEnforced"), Status.FAIL),
    "PIM-ACCT-010": (lambda d: find(d, "users", "id", t.BOB).update(userType="Guest"), Status.FAIL),
    "PIM-POL-011": (lambda d: policy_rule(d, t.SECURITY_ADMIN, "Expiration_EndUser_Assignment")
                    .update(maximumDuration="PT8H"), Status.FAIL),
    "PIM-POL-012": (lambda d: policy_rule(d, t.GA, "Notification_Admin_EndUser_Assignment")
                    .update(notificationRecipients=[]), Status.FAIL),
    "PIM-ACT-013": (lambda d: find(d, "directory_audits", "id", "a1-ok")["initiatedBy"]["user"].update(id=t.ALICE),
                    Status.FAIL),
    "PIM-ACT-014": (lambda d: [e.update(resultReason="test") for e in d["directory_audits"]["value"]
                               if e["correlationId"] == "corr-1"], Status.WARN),
    "PIM-ACT-015": (lambda d: d["directory_audits"]["value"].extend(
        t.activation(9, t.ALICE, t.SECURITY_ADMIN, parse_iso("2026-09-24T01:27:00Z"), t.ERIN)), Status.WARN),
    "PIM-ACT-016": (many_activations, Status.WARN),
    "PIM-ACT-017": (lambda d: find(d, "role_eligibility_instances", "id", "re-carol").update(
        startDateTime="2026-01-01T00:00:00Z"), Status.WARN),
    "PIM-ACT-018": (lambda d: find(d, "sign_in_activity", "id", t.BOB)["signInActivity"].update(
        lastSignInDateTime="2026-03-01T00:00:00Z"), Status.WARN),
    "PIM-REV-019": (lambda d: d["access_review_definitions"]["value"][0]["settings"].update(
        autoApplyDecisionsEnabled=False), Status.FAIL),
    "PIM-REV-020": (lambda d: find(d, "access_review_decisions", "id", "dec-frank").update(applyResult="New"),
                    Status.FAIL),
    "PIM-GRP-021": (lambda d: d["group_members"]["pages"][0]["body"]["value"].append(
        {"@odata.type": "#microsoft.graph.user", "id": t.CAROL, "displayName": "Carol",
         "userPrincipalName": t.upn(t.CAROL)}), Status.FAIL),
    "PIM-TEN-022": (lambda d: d["subscribed_skus"]["value"][0].update(
        skuPartNumber="AAD_PREMIUM", servicePlans=[{"servicePlanName": "AAD_PREMIUM"}]), Status.FAIL),
}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    return check(tmp_path_factory.mktemp("baseline"))


@pytest.mark.parametrize("control_id", [c.id for c in all_controls() if c.id != "PIM-TEN-023"])
def test_baseline_passes(baseline, control_id):
    result = baseline[control_id]
    assert result.status is Status.PASS, [f.message for f in result.findings]


@pytest.mark.parametrize("control_id", sorted(FAILS))
def test_smallest_change_fails(tmp_path, control_id):
    change, expected = FAILS[control_id]
    result = check(tmp_path, change)[control_id]
    assert result.status is expected, [f.message for f in result.findings]
    assert any(f.status is expected and f.message for f in result.findings)


@pytest.mark.parametrize("control_id", [c.id for c in all_controls()])
def test_missing_dataset_is_not_assessable(tmp_path, control_id):
    control = next(c for c in all_controls() if c.id == control_id)
    dropped = control.datasets[-1]

    def drop(data):
        data.pop(dropped, None)
        data["_manifest"]["datasets"][dropped] = {"error": {"http_status": 400, "code": "AadPremiumLicenseRequired",
                                                            "message": "licence"}}

    result = check(tmp_path, drop)[control_id]
    assert result.status is Status.NOT_ASSESSABLE
    assert dropped in result.reason and "no Entra ID P2 licence" in result.reason


def test_history_coverage_passes_weekly_and_fails_with_a_gap(tmp_path):
    assert check(tmp_path / "weekly", weeks=6)["PIM-TEN-023"].status is Status.PASS
    single = check(tmp_path / "single")["PIM-TEN-023"]
    assert single.status is Status.WARN and "history begins" in single.findings[0].message
    db = str(tmp_path / "gap.db")
    with HistoryStore.open(db, create=True) as store:
        for when in ("2026-08-20T06:00:00Z", "2026-09-30T06:00:00Z"):
            store.ingest(read_export(exports.write(tmp_path / when[:10], t.compliant(when))))
        report = run_check(store, parse_config(t.compliant()["_config"]), save=False)
    gap = next(r for r in report.results if r.control.id == "PIM-TEN-023")
    assert gap.status is Status.FAIL and "(31 days, at most 7)" in gap.findings[-1].message


def test_exception_excepts_until_it_expires(tmp_path):
    change = FAILS["PIM-STD-002"][0]

    def excepted(expires):
        def add(config):
            config["exceptions"] = [{"control": "PIM-STD-002", "subject": t.upn(t.BOB), "reason": "migration",
                                     "approver": "ciso@contoso-test.example", "expires": expires}]
        return add

    live = check(tmp_path / "live", change, config_change=excepted("2026-12-31"))["PIM-STD-002"]
    assert live.status is Status.EXCEPTED
    assert live.findings[0].evidence["exception"]["approver"] == "ciso@contoso-test.example"
    expired = check(tmp_path / "expired", change, config_change=excepted("2026-09-01"))["PIM-STD-002"]
    assert expired.status is Status.FAIL and "exception expired 2026-09-01" in expired.findings[0].message


def test_profiles_set_the_global_admin_bounds(tmp_path):
    default = check(tmp_path / "d", add_eligible_ga)["PIM-GA-005"]
    assert default.status is Status.FAIL
    # the default profile's bounds are 0-0: said as one number, not as a range
    assert default.findings[0].message.endswith("1 Global Administrator holders besides break-glass, allowed 0")
    # CIS counts every holder (break-glass too): 3 Global Administrators lies within 2-4
    cis = check(tmp_path / "c", add_eligible_ga, profile="cis-m365")["PIM-GA-005"]
    assert cis.status is Status.PASS and "(allowed 2–4)" in cis.findings[0].message


def test_cis_profile_wants_two_approvers_for_global_admin(tmp_path):
    result = check(tmp_path, profile="cis-m365")["PIM-POL-011"]
    failing = [f.message for f in result.findings if f.status is Status.FAIL]
    assert result.status is Status.FAIL
    assert any(m.startswith("Global Administrator") and "at least 2 required" in m for m in failing)


def test_registry_every_control_has_docs_mapping_and_fixtures():
    ids = [c.id for c in all_controls()]
    assert len(ids) == len(set(ids)) == 23
    docs = (Path(__file__).parents[1] / "docs" / "controls.md").read_text()
    for c in all_controls():
        assert c.rationale and c.remediation and c.datasets, c.id
        assert frameworks_for(c.id), c.id
        assert f"## {c.id}" in docs, c.id
        assert c.id in FAILS or c.id == "PIM-TEN-023", f"{c.id} has no failing fixture"
        for name in available_profiles():
            assert set(c.params) <= set(load_profile(name).params), (c.id, name)


def test_registry_refuses_duplicate_ids():
    from pimtrail.controls.registry import RegistryError, control

    with pytest.raises(RegistryError, match="duplicate"):
        control("PIM-GA-001", "again", "low", rationale="r", remediation="r", datasets=("users",))(lambda v, p: [])


@pytest.mark.parametrize("changed_days_ago, expected", [(1, Status.WARN), (10, Status.FAIL)])
def test_activations_are_judged_by_the_policy_in_force_then(tmp_path, changed_days_ago, expected):
    """Bob activated Exchange Administrator 5 days ago without approval; the policy now requires it."""
    def require_approval(data):
        assignment = find(data, "role_policy_assignments", "roleDefinitionId", t.EXCHANGE_ADMIN)
        assignment["policy"]["lastModifiedDateTime"] = iso(parse_iso(NOW) - timedelta(days=changed_days_ago))
        policy_rule(data, t.EXCHANGE_ADMIN, "Approval_EndUser_Assignment")["setting"].update(
            isApprovalRequired=True, approvalStages=[{"primaryApprovers": [
                {"@odata.type": "#microsoft.graph.singleUser", "userId": t.ERIN, "description": "erin"}]}])

    assert check(tmp_path, require_approval)["PIM-ACT-013"].status is expected
