"""The datasets pimtrail collects: one declaration each, shared by every collector.

A dataset is one kind of Graph response. The export-directory reader, the sample tenant, the
live Graph collector and `pimtrail permissions` all read this table, so a dataset's file name,
request and least read permission are stated exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Sequence, TypeVar


class Parent(str, Enum):
    """What a per-parent dataset is requested for (one request chain per parent object)."""

    NONE = "none"
    USER = "user"  # /users/{id}/...
    GROUP = "group"  # role-assignable / PIM-managed group
    REVIEW_DEFINITION = "review_definition"
    REVIEW_INSTANCE = "review_instance"  # parent id is "<definitionId>/<instanceId>"
    # a set of users named in the request's `$filter=id in (...)`, up to USERS_PER_REQUEST of them: the
    # "parent id" is their ids joined by commas; the answer's elements carry their own ids, so the export's
    # pages name no parent (their request names the users), and an element keeps its place across days
    USERS = "users"

    @property
    def named_in_pages(self) -> bool:
        """Whether each page of the export names its parent object (form 3 of docs/export-format.md)."""
        return self not in (Parent.NONE, Parent.USERS)


# Graph takes at most 15 values in a `$filter` `in (...)` (more: "Too many child clauses specified in search
# filter expression containing 'OR' operators: 16. Max allowed: 15"; Microsoft Graph docs, "Use the $filter
# query parameter" and its known issues; microsoftgraph/microsoft-graph-docs issue #21098)
USERS_PER_REQUEST = 15

T = TypeVar("T")


def users_per_request(users: Sequence[T]) -> list[list[T]]:
    """`users` cut into the sets of a `Parent.USERS` dataset's requests, USERS_PER_REQUEST each, in order: the one
    way the collector, the synthetic and sample tenants and the live bench cut them."""
    return [list(users[n:n + USERS_PER_REQUEST]) for n in range(0, len(users), USERS_PER_REQUEST)]


# an Entra object or tenant id; \Z, not $: `$` also matches before a newline at the end ("<tenant id>\n" was taken)
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")


@dataclass(frozen=True)
class Dataset:
    name: str
    path: str  # Graph path after the version, '{id}' where the parent id goes
    permission: str  # least application permission that reads it
    api: str = "v1.0"
    query: str = ""  # query string Graph requires or we always send
    parent: Parent = Parent.NONE
    optional: bool = False  # a missing optional dataset does not make a snapshot partial
    licence: str = ""  # "P1" / "P2" when Graph refuses it without that licence
    note: str = ""
    filter_required: bool = False  # Graph answers 400 when the request has no $filter
    # top-level keys of each element whose value changes on every collection, the same for all
    # elements (a report's refresh time): the store keeps it beside the elements, run-length
    # encoded, so that the rest of an unchanged element is stored once (pimtrail/store/receipts.py)
    volatile: tuple[str, ...] = ()
    # further application permissions the request needs besides `permission` (all of them granted)
    also_needs: tuple[str, ...] = ()

    @property
    def permissions(self) -> tuple[str, ...]:
        """Every application permission the request needs."""
        return (self.permission, *self.also_needs)

    @property
    def file_name(self) -> str:
        return f"{self.name}.json"

    def request(self, parent_id: str = "") -> str:
        """The request as sent to Graph, relative to https://graph.microsoft.com. `parent_id`: the parent
        object's id ("<definitionId>/<instanceId>" for a review instance; for `Parent.USERS` the users' ids
        joined by commas, written into `in (...)` quoted)."""
        path, query = self.path, self.query
        if self.parent is Parent.USERS:  # OData string literals: a quote is doubled
            query = query.replace("{id}", ",".join("'" + i.replace("'", "''") + "'" for i in parent_id.split(",") if i))
        elif self.parent is not Parent.NONE:
            ids = parent_id.split("/")
            for part in ids:
                path = path.replace("{id}", part, 1)
            query = query.replace("{id}", ids[-1])
        return f"/{self.api}{path}" + (f"?{query}" if query else "")


AUDIT_DATASET = "directory_audits"
AUDIT_RETENTION_DAYS = 30  # what Entra keeps (P1/P2): the window a full directory_audits read covers

_USER_SELECT = (
    "$select=id,userPrincipalName,displayName,userType,accountEnabled,"
    "onPremisesSyncEnabled,createdDateTime"
)
SIGN_IN_DATASET = "sign_in_activity"

DATASETS: tuple[Dataset, ...] = (
    Dataset("organization", "/organization", "Organization.Read.All"),
    Dataset("subscribed_skus", "/subscribedSkus", "Organization.Read.All"),
    Dataset("role_definitions", "/roleManagement/directory/roleDefinitions",
            "RoleManagement.Read.Directory"),
    Dataset("privileged_role_definitions", "/roleManagement/directory/roleDefinitions",
            "RoleManagement.Read.Directory", api="beta",
            query="$filter=isPrivileged eq true&$select=id,displayName,isPrivileged",
            optional=True, note="beta (preview): Microsoft's own 'privileged' flag"),
    Dataset("role_assignment_instances", "/roleManagement/directory/roleAssignmentScheduleInstances",
            "RoleAssignmentSchedule.Read.Directory", query="$expand=principal", licence="P2"),
    Dataset("role_eligibility_instances", "/roleManagement/directory/roleEligibilityScheduleInstances",
            "RoleEligibilitySchedule.Read.Directory", query="$expand=principal", licence="P2"),
    Dataset("role_assignments", "/roleManagement/directory/roleAssignments",
            "RoleManagement.Read.Directory"),
    Dataset("role_assignment_requests", "/roleManagement/directory/roleAssignmentScheduleRequests",
            "RoleManagement.ReadWrite.Directory", optional=True, licence="P2",
            note="no read-only application permission exists; audit events are the default source"),
    Dataset("role_policy_assignments", "/policies/roleManagementPolicyAssignments",
            "RoleManagementPolicy.Read.Directory",
            query="$filter=scopeId eq '/' and scopeType eq 'DirectoryRole'&$expand=policy($expand=rules)",
            licence="P2", filter_required=True),
    Dataset("role_assignable_groups", "/groups", "Group.Read.All",
            query="$filter=isAssignableToRole eq true"
                  "&$select=id,displayName,description,isAssignableToRole,securityEnabled,mailEnabled,groupTypes"),
    Dataset("group_members", "/groups/{id}/members", "GroupMember.Read.All", parent=Parent.GROUP,
            query="$select=id,displayName,userPrincipalName,userType"),
    Dataset("pim_groups", "/identityGovernance/privilegedAccess/group/resources",
            "PrivilegedAccess.Read.AzureADGroup", api="beta", optional=True,
            note="beta: groups onboarded to PIM for Groups"),
    Dataset("group_assignment_instances", "/identityGovernance/privilegedAccess/group/assignmentScheduleInstances",
            "PrivilegedAssignmentSchedule.Read.AzureADGroup", parent=Parent.GROUP,
            query="$filter=groupId eq '{id}'", licence="P2", filter_required=True),
    Dataset("group_eligibility_instances", "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances",
            "PrivilegedEligibilitySchedule.Read.AzureADGroup", parent=Parent.GROUP,
            query="$filter=groupId eq '{id}'", licence="P2", filter_required=True),
    Dataset("group_policy_assignments", "/policies/roleManagementPolicyAssignments",
            "RoleManagementPolicy.Read.AzureADGroup", parent=Parent.GROUP,
            query="$filter=scopeId eq '{id}' and scopeType eq 'Group'&$expand=policy($expand=rules)",
            licence="P2", filter_required=True),
    Dataset("access_review_definitions", "/identityGovernance/accessReviews/definitions",
            "AccessReview.Read.All"),
    Dataset("access_review_instances", "/identityGovernance/accessReviews/definitions/{id}/instances",
            "AccessReview.Read.All", parent=Parent.REVIEW_DEFINITION),
    Dataset("access_review_decisions",
            "/identityGovernance/accessReviews/definitions/{id}/instances/{id}/decisions",
            "AccessReview.Read.All", parent=Parent.REVIEW_INSTANCE),
    Dataset(AUDIT_DATASET, "/auditLogs/directoryAudits", "AuditLog.Read.All",
            query="$filter=category eq 'RoleManagement' or category eq 'GroupManagement'",
            licence="P1", note="kept 30 days by Entra: collect at least weekly"),
    Dataset("users", "/users", "User.Read.All", query=_USER_SELECT),
    Dataset("registration_details", "/reports/authenticationMethods/userRegistrationDetails",
            "AuditLog.Read.All", licence="P1", volatile=("lastUpdatedDateTime",)),
    Dataset("fido2_methods", "/users/{id}/authentication/fido2Methods",
            "UserAuthenticationMethod.Read.All", parent=Parent.USER,
            note="requested only for principals holding or eligible for a role"),
    # signInActivity of the same users (and the configured break-glass accounts) only: selected on the whole
    # users list, it changes most users' elements every day (docs/benchmarks.md "Sign-in activity at real
    # churn"). Graph: "Details for the signInActivity property require a Microsoft Entra ID P1 or P2 license
    # and the AuditLog.Read.All permission" (List users); a user who never signed in is answered with
    # `signInActivity: null`; `in` takes 15 ids (USERS_PER_REQUEST), fewer than the page cap of 500 when
    # signInActivity is selected (pimtrail/emulator/server.py: SIGN_IN_PAGE_CAP). It is `GET /users`, so it needs
    # User.Read.All (List users) as well as AuditLog.Read.All. An export without this dataset whose users carry signInActivity is read as
    # before it existed (sign-ins from the users' elements); one whose users do not has no sign-ins: they are
    # unobserved and the snapshot partial (collectors/normalize: `sign_in_source`).
    Dataset(SIGN_IN_DATASET, "/users", "AuditLog.Read.All", query="$filter=id in ({id})&$select=id,signInActivity",
            parent=Parent.USERS, licence="P1", also_needs=("User.Read.All",),
            note="requested only for principals holding or eligible for a role, and the break-glass accounts"),
    Dataset("ca_policies", "/identity/conditionalAccess/policies", "Policy.Read.All", licence="P1"),
    Dataset("authentication_contexts", "/identity/conditionalAccess/authenticationContextClassReferences",
            "Policy.Read.ConditionalAccess"),
    Dataset("authentication_strengths", "/policies/authenticationStrengthPolicies", "Policy.Read.All"),
    Dataset("role_management_alerts", "/identityGovernance/roleManagementAlerts/alerts",
            "RoleManagementAlert.Read.Directory", api="beta", optional=True,
            query="$filter=scopeId eq '/' and scopeType eq 'DirectoryRole'", licence="P2", filter_required=True,
            note="beta: PIM's own alerts"),
)

BY_NAME: dict[str, Dataset] = {d.name: d for d in DATASETS}
REQUIRED: tuple[str, ...] = tuple(d.name for d in DATASETS if not d.optional)


def get(name: str) -> Dataset:
    return BY_NAME[name]
