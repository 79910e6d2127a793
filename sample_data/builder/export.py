"""Assemble every dataset of one snapshot from the tenant state at that moment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pimtrail.collectors.datasets import users_per_request
from pimtrail.config import BreakGlass, is_break_glass

from .alerts import Alerts
from .audit import AuditLog
from .auth import Authentication
from .directory import Directory, exists
from .ids import context_url
from .reviews import Reviews
from .roles import RoleManagement
from .timeline import Timeline
from .writer import body, pages, per_parent

_USERS_SELECT = "id,userPrincipalName,displayName,userType,accountEnabled,onPremisesSyncEnabled,createdDateTime"
_GROUP_SELECT = "id,displayName,description,isAssignableToRole,securityEnabled,mailEnabled,groupTypes"


class Snapshotter:
    def __init__(self, tl: Timeline, break_glass: BreakGlass | None = None) -> None:
        """`break_glass`: the accounts pimtrail.toml names: their sign-ins are collected too."""
        self.tl = tl
        self.break_glass = (break_glass or BreakGlass()).wanted()
        self.s = tl.s
        self.directory = Directory(tl)
        self.roles = RoleManagement(tl)
        self.reviews = Reviews(tl)
        self.audit = AuditLog(tl)
        self.auth = Authentication(tl)
        self.alerts = Alerts(tl)

    def datasets(self, t: datetime) -> dict[str, Any]:
        d, r, rv, au = self.directory, self.roles, self.reviews, self.auth
        col = self.s.collection
        groups = d.groups_at(t)
        out: dict[str, Any] = {
            "organization": body(context_url("organization"), d.organization(t)),
            "subscribed_skus": body(context_url("subscribedSkus"), d.subscribed_skus(t)),
            "role_definitions": body(context_url("roleManagement/directory/roleDefinitions"), r.definitions()),
            "privileged_role_definitions": body(
                context_url("roleManagement/directory/roleDefinitions(id,displayName,isPrivileged)", "beta"),
                r.privileged_definitions()),
            "role_assignment_instances": body(
                context_url("roleManagement/directory/roleAssignmentScheduleInstances(principal())"),
                r.assignment_instances(t)),
            "role_eligibility_instances": body(
                context_url("roleManagement/directory/roleEligibilityScheduleInstances(principal())"),
                r.eligibility_instances(t)),
            "role_assignments": body(context_url("roleManagement/directory/roleAssignments"), r.assignments(t)),
            "role_policy_assignments": body(
                context_url("policies/roleManagementPolicyAssignments(policy(rules()))"), r.policy_assignments(t)),
            "role_assignable_groups": body(context_url(f"groups({_GROUP_SELECT})"), d.role_assignable_groups(t)),
            "group_members": per_parent("group_members", [
                (g.id, body(context_url("directoryObjects(id,displayName,userPrincipalName,userType)"),
                            d.group_members(g, t))) for g in groups]),
            "pim_groups": body(context_url("identityGovernance/privilegedAccess/group/resources", "beta"),
                               d.pim_groups(t)),
            "group_assignment_instances": per_parent("group_assignment_instances", [
                (g.id, body(context_url("identityGovernance/privilegedAccess/group/assignmentScheduleInstances"),
                            d.group_assignment_instances(g, t))) for g in groups]),
            "group_eligibility_instances": per_parent("group_eligibility_instances", [
                (g.id, body(context_url("identityGovernance/privilegedAccess/group/eligibilityScheduleInstances"),
                            d.group_eligibility_instances(g, t))) for g in groups]),
            "group_policy_assignments": per_parent("group_policy_assignments", [
                (g.id, body(context_url("policies/roleManagementPolicyAssignments(policy(rules()))"),
                            d.group_policy_assignments(g, t))) for g in groups]),
            "access_review_definitions": body(context_url("identityGovernance/accessReviews/definitions"),
                                              rv.definitions(t)),
            "access_review_instances": per_parent("access_review_instances", [
                (rv.definition_id(d), body(context_url(
                    f"identityGovernance/accessReviews/definitions('{rv.definition_id(d)}')/instances"),
                    rv.instances(d, t))) for d in rv.defined_at(t)]),
            "access_review_decisions": per_parent("access_review_decisions", [
                (f"{rv.definition_id(d)}/{instance_id}", body(context_url(
                    f"identityGovernance/accessReviews/definitions('{rv.definition_id(d)}')"
                    f"/instances('{instance_id}')/decisions"), rv.decisions(rnd, role, t)))
                for d in rv.defined_at(t) for rnd, role, instance_id in rv.instance_parents(d, t)]),
            "directory_audits": pages("directory_audits", context_url("auditLogs/directoryAudits"),
                                      self.audit.window(t), col["audits_page_size"], self.s.ids, t),
            "users": pages("users", context_url(f"users({_USERS_SELECT})"), d.users(t),
                           col["users_page_size"], self.s.ids, t),
            "registration_details": body(context_url("reports/authenticationMethods/userRegistrationDetails"),
                                         au.registration_details(t)),
            "fido2_methods": per_parent("fido2_methods", [
                (p.id, body(context_url(f"users('{p.id}')/authentication/fido2Methods"), au.fido2_methods(p, t)))
                for p in au.fido2_parents(t)]),
            "sign_in_activity": per_parent("sign_in_activity", [
                (",".join(p.id for p in part), body(context_url("users(id,signInActivity)"),
                                                    [{"id": p.id, "signInActivity": d.sign_in_activity(p, t)}
                                                     for p in part]))
                for part in self._sign_in_parts(t)]),
            "ca_policies": body(context_url("identity/conditionalAccess/policies"), au.ca_policies(t)),
            "authentication_contexts": body(
                context_url("identity/conditionalAccess/authenticationContextClassReferences"),
                au.authentication_contexts(t)),
            "authentication_strengths": body(context_url("policies/authenticationStrengthPolicies"),
                                             au.authentication_strengths(t)),
            "role_management_alerts": body(
                context_url("identityGovernance/roleManagementAlerts/alerts", "beta"), self.alerts.alerts(t)),
        }
        return out

    def _sign_in_parts(self, t: datetime) -> list[list[Any]]:
        """Whose sign-in activity the live collector asks for at `t` (collectors/graph/collector.py): the users
        holding or eligible for a role (those whose FIDO2 keys it reads) and the break-glass accounts, by id,
        `users_per_request`."""
        asked = {p.id: p for p in self.auth.fido2_parents(t) if p.kind == "user"}
        asked.update((p.id, p) for p in self.s.people() if exists(p, t)
                     and is_break_glass(self.break_glass, p.id, p.upn))
        ordered = [asked[i] for i in sorted(asked)]
        return users_per_request(ordered)
