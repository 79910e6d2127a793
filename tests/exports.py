"""A tiny, hand-made export directory for store and collector tests: one baseline, small changes.

The sample tenant is the realistic fixture; this one is small enough that a test can state exactly
what it changes (a user's role removed, an audit entry added) and what the history must then hold.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

TENANT = "11111111-2222-4333-8444-555555555555"
GA = "62e90394-69f5-4237-9190-012177145e10"
EXCHANGE = "29232cdf-9323-42fd-ade2-1d097af3e4de"
ALICE = "aaaaaaaa-0000-4000-8000-000000000001"
BOB = "bbbbbbbb-0000-4000-8000-000000000002"


def _user(uid: str, name: str) -> dict[str, Any]:
    return {"id": uid, "displayName": name, "userPrincipalName": f"{name.lower()}@contoso.example",
            "userType": "Member", "accountEnabled": True, "onPremisesSyncEnabled": None,
            "createdDateTime": "2025-01-01T00:00:00Z",
            "signInActivity": {"lastSignInDateTime": "2026-06-30T08:00:00Z"}}


def _instance(iid: str, uid: str, role: str, end: str | None, start: str | None = "2026-01-01T00:00:00Z"):
    return {"id": iid, "principalId": uid, "roleDefinitionId": role, "directoryScopeId": "/",
            "appScopeId": None, "startDateTime": start, "endDateTime": end, "assignmentType": "Assigned",
            "memberType": "Direct", "roleAssignmentOriginId": iid, "roleAssignmentScheduleId": iid,
            "principal": {"@odata.type": "#microsoft.graph.user", "id": uid,
                          "displayName": uid[:4], "userPrincipalName": f"{uid[:4]}@contoso.example"}}


def _audit(aid: str, when: str, activity: str, correlation: str, actor: str, target: str,
           role: str = GA, **details: str) -> dict[str, Any]:
    return {"id": aid, "category": "RoleManagement", "correlationId": correlation, "result": "success",
            "resultReason": "incident 42", "activityDisplayName": activity, "activityDateTime": when,
            "loggedByService": "PIM", "operationType": "Add",
            "initiatedBy": {"user": {"id": actor, "userPrincipalName": f"{actor[:4]}@contoso.example"}},
            "targetResources": [{"id": role, "type": "Role", "displayName": "Global Administrator"},
                                {"id": target, "type": "User", "userPrincipalName": f"{target[:4]}@contoso.example"}],
            "additionalDetails": [{"key": k, "value": v} for k, v in details.items()]}


def baseline(collected_at: str = "2026-07-01T06:00:00Z") -> dict[str, Any]:
    """Dataset name -> Graph body (or pages wrapper), plus the manifest under '_manifest'."""
    return {
        "_manifest": {"format": "pimtrail-export/1", "tenant_id": TENANT, "collected_at": collected_at,
                      "source": "manual", "datasets": {}},
        "organization": {"value": [{"id": TENANT, "displayName": "Contoso Test",
                                    "verifiedDomains": [{"name": "contoso.example", "isDefault": True}]}]},
        "role_definitions": {"value": [
            {"id": GA, "templateId": GA, "displayName": "Global Administrator", "isBuiltIn": True,
             "isEnabled": True, "rolePermissions": []},
            {"id": EXCHANGE, "templateId": EXCHANGE, "displayName": "Exchange Administrator",
             "isBuiltIn": True, "isEnabled": True, "rolePermissions": []}]},
        "users": [{"value": [_user(ALICE, "Alice")], "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=x"},
                  {"value": [_user(BOB, "Bob")]}],
        "role_assignment_instances": {"value": [_instance("inst-alice-ga", ALICE, GA, None),
                                                _instance("inst-bob-ex", BOB, EXCHANGE, None, start=None)]},
        "role_eligibility_instances": {"value": [_instance("elig-bob-ga", BOB, GA, "2026-12-31T00:00:00Z")]},
        "fido2_methods": {"pages": [{"parent": ALICE, "request": f"/v1.0/users/{ALICE}/authentication/fido2Methods",
                                     "body": {"value": [{"id": "key-1", "displayName": "YubiKey",
                                                         "model": "YubiKey 5", "aaGuid": "cb69481e-8ff7-4039-93ec-0a2729a154a8",
                                                         "createdDateTime": "2026-01-02T00:00:00Z"}]}}]},
        "directory_audits": {"value": [
            _audit("audit-1", "2026-06-29T01:27:00Z", "Add member to role requested (PIM activation)", "corr-1", BOB, BOB),
            _audit("audit-2", "2026-06-29T01:29:00Z", "Add member to role request approved (PIM activation)", "corr-1", ALICE, BOB),
        ]},
    }


def audit_window(collected_at: str, days: int = 30) -> dict[str, str]:
    """The audit log's window as Graph keeps it: the `days` before the collection (its retention)."""
    from datetime import datetime, timedelta

    end = datetime.fromisoformat(collected_at.replace("Z", "+00:00"))
    return {"from": (end - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"), "to": collected_at}


def write(root: Path, data: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = copy.deepcopy(data["_manifest"])
    for name, body in data.items():
        if name.startswith("_"):
            continue
        (root / f"{name}.json").write_text(json.dumps(body, indent=1))
        entry = manifest["datasets"].setdefault(name, {"file": f"{name}.json"})
        if name == "directory_audits" and "file" in entry and "window" not in entry:  # what a collection asked for
            entry["window"] = audit_window(manifest["collected_at"])
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root
