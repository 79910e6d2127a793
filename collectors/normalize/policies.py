"""PIM policies (roleManagementPolicyAssignment with policy and rules expanded) -> one fact each.

Rules are found by their fixed ids, never by position (GRAPH_NOTES.md).
"""

from __future__ import annotations

from typing import Any

from pimtrail.model import FactRecord

from .base import DatasetPages, Item, iso_duration_hours


def _rules(item: Item) -> dict[str, dict[str, Any]]:
    policy = item.get("policy") or {}
    rules = policy.get("rules")
    if rules is None:
        raise item.error("policy.rules", "missing",
                         fix="request the policy assignments with $expand=policy($expand=rules)")
    return {rule.get("id"): rule for rule in rules if isinstance(rule, dict)}


def _approvers(rule: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for stage in (rule.get("setting") or {}).get("approvalStages") or []:
        for approver in stage.get("primaryApprovers") or []:
            kind = (approver.get("@odata.type") or "").rsplit(".", 1)[-1]
            out.append({"type": {"singleUser": "user", "groupMembers": "group"}.get(kind, kind),
                        "id": approver.get("userId") or approver.get("groupId"),
                        "name": approver.get("description")})
    return out


def parse_policy(item: Item) -> dict[str, Any]:
    rules = _rules(item)
    activation = rules.get("Expiration_EndUser_Assignment", {})
    enablement = set(rules.get("Enablement_EndUser_Assignment", {}).get("enabledRules") or [])
    approval = rules.get("Approval_EndUser_Assignment", {})
    approval_setting = approval.get("setting") or {}
    context = rules.get("AuthenticationContext_EndUser_Assignment", {})
    eligible_exp = rules.get("Expiration_Admin_Eligibility", {})
    active_exp = rules.get("Expiration_Admin_Assignment", {})
    notifications = {}
    for rule_id, rule in sorted(rules.items()):
        if rule_id and rule_id.startswith("Notification_"):
            notifications[rule_id] = {
                "recipient_type": rule.get("recipientType"),
                "default_recipients": rule.get("isDefaultRecipientsEnabled"),
                "recipients": sorted(rule.get("notificationRecipients") or []),
                "level": rule.get("notificationLevel"),
            }
    approvers = _approvers(approval) if approval_setting.get("isApprovalRequired") else []
    return {
        "policy_id": (item.get("policy") or {}).get("id") or item.text("policyId"),
        "assignment_id": item.required("id"),
        "scope_id": item.text("scopeId"), "scope_type": item.text("scopeType"),
        "role_id": item.text("roleDefinitionId"),
        "max_activation": activation.get("maximumDuration"),
        "max_activation_hours": iso_duration_hours(activation.get("maximumDuration")),
        "mfa": "MultiFactorAuthentication" in enablement,
        "justification": "Justification" in enablement,
        "ticket": "Ticketing" in enablement,
        "approval_required": bool(approval_setting.get("isApprovalRequired")),
        "approvers": approvers,
        "approver_count": len(approvers),
        "auth_context": context.get("claimValue") if context.get("isEnabled") else None,
        "permanent_eligible_allowed": eligible_exp.get("isExpirationRequired") is False,
        "max_eligible": eligible_exp.get("maximumDuration"),
        "permanent_active_allowed": active_exp.get("isExpirationRequired") is False,
        "max_active": active_exp.get("maximumDuration"),
        "active_assignment_mfa": "MultiFactorAuthentication" in set(
            rules.get("Enablement_Admin_Assignment", {}).get("enabledRules") or []),
        "active_assignment_justification": "Justification" in set(
            rules.get("Enablement_Admin_Assignment", {}).get("enabledRules") or []),
        "notifications": notifications,
        "last_modified": item.when("lastModifiedDateTime", item.get("policy") or {}),
    }


def role_policies(pages: DatasetPages, role_names: dict[str, str]) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        data = parse_policy(item)
        role_id = data["role_id"] or item.required("roleDefinitionId")
        data["role_name"] = role_names.get(role_id)
        facts.append(FactRecord("role_policy", f"{data['scope_id'] or '/'}|{role_id}", data, role_id=role_id))
    return facts


def group_policies(pages: DatasetPages) -> list[FactRecord]:
    facts = []
    for item in pages.items():
        data = parse_policy(item)
        group_id = data["scope_id"] or item.parent
        access = data["role_id"] or "member"  # 'member' or 'owner' for PIM for Groups
        data["group_id"], data["access"] = group_id, access
        facts.append(FactRecord("group_policy", f"{group_id}|{access}", data, group_id=group_id))
    return facts
