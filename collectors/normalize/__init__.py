"""Graph response bodies -> facts and events. Pure functions: no I/O, no compliance decisions."""

from __future__ import annotations

from typing import Collection

from pimtrail.collectors.datasets import SIGN_IN_DATASET
from pimtrail.model import EventRecord, FactRecord

from . import audit, authn, directory, groups_pim, policies, reviews, roles
from .base import DatasetPages, RawPage

__all__ = ["DatasetPages", "RawPage", "normalize", "unobserved_kinds", "KIND_SOURCES", "SKIPPABLE", "kind_sources",
           "sign_in_source"]

# Datasets whose elements a daily read may recognise without parsing them (`collectors.unparsed`):
# each element is normalised on its own into facts naming it (`FactRecord.element`, no `depends`),
# so an unchanged element's facts are the open ones naming it. A review decision's key and data also
# take its page's parent (the review instance): the store takes one read unparsed only where the
# previous snapshot held it under the same parent (`receipts.Plan`), so its facts are as they were.
SKIPPABLE = {"users", "registration_details", "access_review_decisions", "sign_in_activity"}

# Which datasets each kind of fact is read from. When one of them was not collected, the facts of
# that kind that did not show up are *unknown*, not gone: the history keeps them as last seen.
# Sign-ins come from the `sign_in_activity` dataset; a snapshot whose export does not name it (written
# before it existed, or by a tool selecting signInActivity on the users) takes them from the users'
# elements: `kind_sources` gives the sources of such a snapshot.
KIND_SOURCES: dict[str, tuple[str, ...]] = {
    "tenant": ("organization",), "licence": ("subscribed_skus",),
    "role_definition": ("role_definitions", "privileged_role_definitions"),
    "principal": ("users", "role_assignable_groups", "role_assignment_instances", "role_eligibility_instances"),
    "sign_in_activity": ("sign_in_activity",), "group_member": ("group_members",), "pim_group": ("pim_groups",),
    "group_policy": ("group_policy_assignments",), "access_review_definition": ("access_review_definitions",),
    "access_review_instance": ("access_review_instances",), "access_review_decision": ("access_review_decisions",),
    "auth_registration": ("registration_details",), "fido2_key": ("fido2_methods",), "ca_policy": ("ca_policies",),
    "auth_context": ("authentication_contexts",), "auth_strength": ("authentication_strengths",),
    "pim_alert": ("role_management_alerts",), "group_pim_assignment": ("group_assignment_instances",),
    "group_pim_eligibility": ("group_eligibility_instances",), "role_assignment": ("role_assignment_instances",),
    "role_eligibility": ("role_eligibility_instances",), "direct_role_assignment": ("role_assignments",),
    "role_policy": ("role_policy_assignments",),
}


def sign_in_source(named: Collection[str]) -> str:
    """The dataset a snapshot's sign-in facts come from, given the datasets its export names (read or failed):
    `sign_in_activity` when named, else `users` (an export without it is read as before it existed)."""
    return SIGN_IN_DATASET if SIGN_IN_DATASET in named else "users"


_USERS_SIGN_INS = {**KIND_SOURCES, "sign_in_activity": ("users",)}


def kind_sources(named: Collection[str]) -> dict[str, tuple[str, ...]]:
    """KIND_SOURCES for a snapshot whose export names the datasets `named` (`sign_in_source`)."""
    return KIND_SOURCES if sign_in_source(named) == SIGN_IN_DATASET else _USERS_SIGN_INS


def unobserved_kinds(collected: set[str], named: Collection[str] | None = None) -> set[str]:
    """Kinds of fact whose source datasets were not all collected (optional ones aside when absent
    from every snapshot would make them always unknown: an optional dataset counts only when asked).
    `named`: the datasets the export names, read or failed (None: `collected`); a failed
    `sign_in_activity` leaves sign-ins unknown, an export without it takes them from the users."""
    from pimtrail.collectors.datasets import BY_NAME

    out = set()
    for kind, sources in kind_sources(collected if named is None else named).items():
        needed = [s for s in sources if not BY_NAME[s].optional]
        if any(s not in collected for s in needed):
            out.add(kind)
    return out


def normalize(datasets: dict[str, DatasetPages],
              named: Collection[str] | None = None) -> tuple[list[FactRecord], list[EventRecord]]:
    """Turn the collected datasets (any subset) into facts and events. `named`: the datasets the export
    names, read or failed (None: those given); sign-ins come from `sign_in_source(named)` only."""
    facts: list[FactRecord] = []
    events: list[EventRecord] = []
    have = datasets.get

    privileged = roles.privileged_ids(have("privileged_role_definitions")) \
        if have("privileged_role_definitions") else None
    role_names: dict[str, str] = {}
    if have("role_definitions"):
        definitions = roles.role_definitions(datasets["role_definitions"], privileged)
        role_names = {f.key: f.data["name"] for f in definitions}
        facts += definitions

    simple = {
        "organization": directory.tenant, "subscribed_skus": directory.licences,
        "role_assignable_groups": directory.groups, "group_members": directory.group_members,
        "pim_groups": directory.pim_groups,
        "group_policy_assignments": policies.group_policies,
        "access_review_definitions": reviews.definitions,
        "access_review_instances": reviews.instances, "access_review_decisions": reviews.decisions,
        "registration_details": authn.registrations, "fido2_methods": authn.fido2_keys,
        "ca_policies": authn.ca_policies, "authentication_contexts": authn.auth_contexts,
        "authentication_strengths": authn.auth_strengths, "role_management_alerts": roles.alerts,
    }
    for name, build in simple.items():
        if have(name):
            facts += build(datasets[name])
    if have("group_assignment_instances"):
        facts += groups_pim.group_instances(datasets["group_assignment_instances"], "active")
    if have("group_eligibility_instances"):
        facts += groups_pim.group_instances(datasets["group_eligibility_instances"], "eligible")
    from_users = sign_in_source(datasets if named is None else named) == "users"
    if have("users"):
        principals, sign_ins = directory.users(datasets["users"], sign_ins=from_users)
        facts += principals + sign_ins
    if have(SIGN_IN_DATASET) and not from_users:
        facts += directory.sign_ins(datasets[SIGN_IN_DATASET])

    expanded: list[dict] = []
    for name, state in (("role_assignment_instances", "active"), ("role_eligibility_instances", "eligible")):
        if have(name):
            instance_facts, principals = roles.role_instances(datasets[name], state, role_names)
            facts += instance_facts
            expanded += principals
    if have("role_assignments"):
        facts += roles.direct_assignments(datasets["role_assignments"], role_names)
    if have("role_policy_assignments"):
        facts += policies.role_policies(datasets["role_policy_assignments"], role_names)

    # Holders the users/groups datasets do not cover (service principals, or users when the users
    # dataset failed) still need a principal fact: take what $expand=principal returned.
    known = {f.key for f in facts if f.kind == "principal"}
    for principal in expanded:
        if principal["id"] not in known:
            known.add(principal["id"])
            facts.append(FactRecord("principal", principal["id"], principal, principal_id=principal["id"],
                                    fallback=True))

    if have("directory_audits"):
        events += audit.directory_audits(datasets["directory_audits"])
    if have("role_assignment_requests"):
        events += roles.requests(datasets["role_assignment_requests"], role_names)
    return facts, events
