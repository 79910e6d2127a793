"""Graph response bodies -> facts and events. Pure functions: no I/O, no compliance decisions."""

from __future__ import annotations

import re
from typing import Any, Collection, Iterable, Mapping

from pimtrail.collectors.datasets import SIGN_IN_DATASET
from pimtrail.model import MISSING, DatasetCoverage, EventRecord, FactRecord

from . import audit, authn, directory, groups_pim, policies, reviews, roles
from .base import DatasetPages, RawPage

__all__ = ["DatasetPages", "RawPage", "normalize", "unobserved_kinds", "KIND_SOURCES", "SKIPPABLE", "kind_sources",
           "sign_in_source", "record_sign_in_source", "stored_sign_in_source"]

# Datasets whose elements a daily read may recognise without parsing them (`collectors.unparsed`):
# each element is normalised on its own into facts naming it (`FactRecord.element`, no `depends`),
# so an unchanged element's facts are the open ones naming it. A review decision's key and data also
# take its page's parent (the review instance): the store takes one read unparsed only where the
# previous snapshot held it under the same parent (`receipts.Plan`), so its facts are as they were.
SKIPPABLE = {"users", "registration_details", "access_review_decisions", "sign_in_activity"}

# Which datasets each kind of fact is read from. When one of them was not collected, the facts of
# that kind that did not show up are *unknown*, not gone: the history keeps them as last seen.
# Sign-ins come from the `sign_in_activity` dataset; a snapshot whose export does not name it but whose
# users carry signInActivity (written before it existed, or by a tool selecting it on the users) takes them
# from the users' elements (`sign_in_source`): `kind_sources` gives the sources of such a snapshot.
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


# A `signInActivity` member of a users element: a JSON string followed by ":" is always a member name (a quote
# inside a string is escaped), so this finds the member in the page's text, parsed or read unparsed alike
_SIGN_IN_MEMBER = re.compile(r'"signInActivity"\s*:')


def sign_in_source(named: Collection[str], users_texts: Iterable[str] = ()) -> str | None:
    """Where a snapshot's sign-ins come from. `named`: the datasets its export names (read or failed);
    `users_texts`: the text of its users pages as the export holds them.

    - `sign_in_activity` when the export names that dataset (failed: sign-ins unknown, the snapshot partial);
    - else `users` when a users element has a `signInActivity` member (`null` included): an export written
      before the dataset existed, or by a tool that selects signInActivity on the users list; an element of
      such an export without the member gives no sign-in (read as never signed in, as before);
    - else None: nothing in the export says anything about sign-ins. They are unobserved (the snapshot is
      partial for them, PIM-ACT-018 not assessable), never read as "never signed in".

    The rule reads the pages' text, so a daily read (elements read unparsed) decides as a full read does."""
    if SIGN_IN_DATASET in named:
        return SIGN_IN_DATASET
    if any(_SIGN_IN_MEMBER.search(text) for text in users_texts):
        return "users"
    return None


NO_SIGN_INS = "not in the export, and its users carry no signInActivity: sign-ins not collected"


def record_sign_in_source(coverage: list[DatasetCoverage], source: str | None) -> None:
    """Write the snapshot's sign-in source into its coverage of `sign_in_activity` (`stored_sign_in_source`
    reads it back): from the users, the dataset's absence is optional (the snapshot is complete); with no
    source it is a gap that says so."""
    cov = next((c for c in coverage if c.dataset == SIGN_IN_DATASET), None)
    if cov is None or cov.status != MISSING:
        return
    if source == "users":
        cov.optional, cov.error_message = True, "not in the export: sign-ins read from the users' signInActivity"
    else:
        cov.optional, cov.error_message = False, NO_SIGN_INS


def stored_sign_in_source(cov: Mapping[str, Any] | None) -> str | None:
    """A stored snapshot's sign-in source (`sign_in_source`) from its coverage row of `sign_in_activity`
    (`record_sign_in_source`); no row: stored before the dataset existed, when sign-ins came from the users."""
    if cov is None:
        return "users"
    if cov["status"] != MISSING:
        return SIGN_IN_DATASET
    return "users" if cov["optional"] else None


_USERS_SIGN_INS = {**KIND_SOURCES, "sign_in_activity": ("users",)}


def kind_sources(source: str | None) -> dict[str, tuple[str, ...]]:
    """KIND_SOURCES for a snapshot whose sign-ins come from `source` (`sign_in_source`; None: from nowhere,
    so the `sign_in_activity` dataset, not collected, leaves them unobserved)."""
    return _USERS_SIGN_INS if source == "users" else KIND_SOURCES


def unobserved_kinds(collected: set[str], source: str | None) -> set[str]:
    """Kinds of fact whose source datasets were not all collected (optional ones aside when absent
    from every snapshot would make them always unknown: an optional dataset counts only when asked).
    `source`: where the snapshot's sign-ins come from (`sign_in_source`); a failed `sign_in_activity`, or an
    export that carries no sign-ins at all, leaves them unknown."""
    from pimtrail.collectors.datasets import BY_NAME

    out = set()
    for kind, sources in kind_sources(source).items():
        needed = [s for s in sources if not BY_NAME[s].optional]
        if any(s not in collected for s in needed):
            out.add(kind)
    return out


def normalize(datasets: dict[str, DatasetPages],
              source: str | None) -> tuple[list[FactRecord], list[EventRecord]]:
    """Turn the collected datasets (any subset) into facts and events. `source`: where the snapshot's
    sign-ins come from (`sign_in_source`): they are read from there alone."""
    facts: list[FactRecord] = []
    events: list[EventRecord] = []
    have = datasets.get

    privileged = have("privileged_role_definitions").normalised(roles.privileged_ids) \
        if have("privileged_role_definitions") else None
    role_names: dict[str, str] = {}
    if have("role_definitions"):
        definitions = datasets["role_definitions"].normalised(roles.role_definitions, privileged)
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
            facts += datasets[name].normalised(build)
    if have("group_assignment_instances"):
        facts += datasets["group_assignment_instances"].normalised(groups_pim.group_instances, "active")
    if have("group_eligibility_instances"):
        facts += datasets["group_eligibility_instances"].normalised(groups_pim.group_instances, "eligible")
    from_users = source == "users"
    if have("users"):
        principals, sign_ins = datasets["users"].normalised(directory.users, from_users)
        facts += principals + sign_ins
    if have(SIGN_IN_DATASET) and source == SIGN_IN_DATASET:
        facts += datasets[SIGN_IN_DATASET].normalised(directory.sign_ins)

    expanded: list[dict] = []
    for name, state in (("role_assignment_instances", "active"), ("role_eligibility_instances", "eligible")):
        if have(name):
            instance_facts, principals = datasets[name].normalised(roles.role_instances, state, role_names)
            facts += instance_facts
            expanded += principals
    if have("role_assignments"):
        facts += datasets["role_assignments"].normalised(roles.direct_assignments, role_names)
    if have("role_policy_assignments"):
        facts += datasets["role_policy_assignments"].normalised(policies.role_policies, role_names)

    # Holders the users/groups datasets do not cover (service principals, or users when the users
    # dataset failed) still need a principal fact: take what $expand=principal returned.
    known = {f.key for f in facts if f.kind == "principal"}
    for principal in expanded:
        if principal["id"] not in known:
            known.add(principal["id"])
            facts.append(FactRecord("principal", principal["id"], principal, principal_id=principal["id"],
                                    fallback=True))

    if have("directory_audits"):
        events += datasets["directory_audits"].normalised(audit.directory_audits)
    if have("role_assignment_requests"):
        events += datasets["role_assignment_requests"].normalised(roles.requests, role_names)
    return facts, events
