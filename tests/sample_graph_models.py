"""Validate Graph response items with msgraph-sdk's generated models (helper for the sample tests).

An item is parsed with kiota's JSON parse node into the SDK model, then the raw JSON and the
parsed object are walked together. A problem is reported when
  * a property name is not part of the model (it would land in `additional_data`),
  * a value is present in the JSON but the parsed property is None (it did not parse:
    a wrong type, an unknown enum member, a malformed date or duration),
  * an `@odata.type` names a type the model hierarchy does not know.
OData annotations (`@odata.type`, `prop@odata.context`, ...) are allowed anywhere.
"""

from __future__ import annotations

import functools
import importlib
import json
from typing import Any

from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

# dataset name -> (module under msgraph.generated.models, class name)
V1_MODELS: dict[str, tuple[str, str]] = {
    "organization": ("organization", "Organization"),
    "subscribed_skus": ("subscribed_sku", "SubscribedSku"),
    "role_definitions": ("unified_role_definition", "UnifiedRoleDefinition"),
    "role_assignment_instances": ("unified_role_assignment_schedule_instance",
                                  "UnifiedRoleAssignmentScheduleInstance"),
    "role_eligibility_instances": ("unified_role_eligibility_schedule_instance",
                                   "UnifiedRoleEligibilityScheduleInstance"),
    "role_assignments": ("unified_role_assignment", "UnifiedRoleAssignment"),
    "role_assignment_requests": ("unified_role_assignment_schedule_request",
                                 "UnifiedRoleAssignmentScheduleRequest"),
    "role_policy_assignments": ("unified_role_management_policy_assignment",
                                "UnifiedRoleManagementPolicyAssignment"),
    "role_assignable_groups": ("group", "Group"),
    "group_members": ("directory_object", "DirectoryObject"),
    "group_assignment_instances": ("privileged_access_group_assignment_schedule_instance",
                                   "PrivilegedAccessGroupAssignmentScheduleInstance"),
    "group_eligibility_instances": ("privileged_access_group_eligibility_schedule_instance",
                                    "PrivilegedAccessGroupEligibilityScheduleInstance"),
    "group_policy_assignments": ("unified_role_management_policy_assignment",
                                 "UnifiedRoleManagementPolicyAssignment"),
    "access_review_definitions": ("access_review_schedule_definition", "AccessReviewScheduleDefinition"),
    "access_review_instances": ("access_review_instance", "AccessReviewInstance"),
    "access_review_decisions": ("access_review_instance_decision_item", "AccessReviewInstanceDecisionItem"),
    "directory_audits": ("directory_audit", "DirectoryAudit"),
    "users": ("user", "User"),
    "registration_details": ("user_registration_details", "UserRegistrationDetails"),
    "fido2_methods": ("fido2_authentication_method", "Fido2AuthenticationMethod"),
    "sign_in_activity": ("user", "User"),  # $select=id,signInActivity
    "ca_policies": ("conditional_access_policy", "ConditionalAccessPolicy"),
    "authentication_contexts": ("authentication_context_class_reference", "AuthenticationContextClassReference"),
    "authentication_strengths": ("authentication_strength_policy", "AuthenticationStrengthPolicy"),
}

# Beta datasets: the beta SDK is not installed, so their items are checked against the
# properties Microsoft documents for them (hand-written, with the JSON type of each value).
BETA_ALLOWED: dict[str, dict[str, tuple[type, ...]]] = {
    # GET /beta/roleManagement/directory/roleDefinitions?$filter=isPrivileged eq true&$select=id,displayName,isPrivileged
    "privileged_role_definitions": {"id": (str,), "displayName": (str,), "isPrivileged": (bool,)},
    # GET /beta/identityGovernance/privilegedAccess/group/resources (groupResource: only the id)
    "pim_groups": {"id": (str,)},
    # GET /beta/identityGovernance/roleManagementAlerts/alerts (unifiedRoleManagementAlert)
    "role_management_alerts": {"@odata.type": (str,), "id": (str,), "alertDefinitionId": (str,),
                               "scopeId": (str,), "scopeType": (str,), "incidentCount": (int,),
                               "isActive": (bool,), "lastModifiedDateTime": (str,),
                               "lastScannedDateTime": (str,)},
}

# Flags enums arrive as "a,b" strings inside collections; the SDK's collection reader maps each
# element as ONE enum member, so a combination parses to None. Check the parts instead.
_FLAG_COLLECTIONS = {"allowedCombinations": ("authentication_method_modes", "AuthenticationMethodModes")}

_SENTINEL = object()


class _Probe:
    """A parse node whose every getter returns a sentinel: reveals which attribute a key sets."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: _SENTINEL


def model_class(dataset: str) -> type:
    module, name = V1_MODELS[dataset]
    return getattr(importlib.import_module(f"msgraph.generated.models.{module}"), name)


@functools.cache
def _attributes(cls: type) -> dict[str, str]:
    """JSON property name -> Python attribute name, for one model class."""
    instance = cls()
    out = {}
    for key, deserialize in instance.get_field_deserializers().items():
        before = {k: v is _SENTINEL for k, v in vars(instance).items()}
        deserialize(_Probe())
        changed = [k for k, v in vars(instance).items() if v is _SENTINEL and not before.get(k, False)]
        if len(changed) == 1:
            out[key] = changed[0]
    return out


@functools.cache
def _default_odata_type(cls: type) -> str | None:
    return getattr(cls(), "odata_type", None)


def is_annotation(key: str) -> bool:
    return key.startswith("@odata.") or "@odata." in key


def parse(cls: type, item: dict[str, Any]) -> Parsable:
    node = JsonParseNodeFactory().get_root_parse_node("application/json", json.dumps(item).encode())
    return node.get_object_value(cls)  # the factory: kiota calls cls.create_from_discriminator_value


_seen: dict[tuple[type, str], list[str]] = {}


def problems(cls: type, item: dict[str, Any], path: str) -> list[str]:
    """All fidelity problems of one item (cached by content: snapshots repeat many items)."""
    canonical = json.dumps(item, sort_keys=True)
    cached = _seen.get((cls, canonical))
    if cached is None:
        cached = []
        try:
            obj = parse(cls, item)
        except Exception as exc:  # noqa: BLE001 - any parser failure is a finding
            cached.append(f"$: does not parse as {cls.__name__}: {exc!r}")
        else:
            _check_object(item, obj, "$", cached)
        _seen[(cls, canonical)] = cached
    return [f"{path}{p[1:]}" for p in cached]


def _check_object(raw: dict[str, Any], obj: Any, path: str, errors: list[str]) -> None:
    cls = type(obj)
    if not isinstance(obj, Parsable):
        errors.append(f"{path}: an object where the model has a {cls.__name__}")
        return
    declared = raw.get("@odata.type")
    if declared is not None and _default_odata_type(cls) != declared:
        errors.append(f"{path}: @odata.type {declared!r} is unknown here (parsed as {cls.__name__})")
    attributes = _attributes(cls)
    unknown = set()
    for key, value in raw.items():
        if is_annotation(key):
            continue
        if key not in attributes:
            unknown.add(key)
            errors.append(f"{path}.{key}: not a property of {cls.__name__} (lands in additional_data)")
            continue
        if value is not None:
            _check_value(value, getattr(obj, attributes[key]), f"{path}.{key}", key, errors)
    # belt and braces: anything else the parser put into additional_data is also a finding
    for key in getattr(obj, "additional_data", None) or {}:
        if not is_annotation(key) and key not in unknown:
            errors.append(f"{path}.{key}: landed in additional_data of {cls.__name__}")


def _check_value(value: Any, parsed: Any, path: str, key: str, errors: list[str]) -> None:
    if parsed is None:
        if isinstance(value, str) and key in _FLAG_COLLECTIONS and _flags_ok(key, value):
            return
        errors.append(f"{path}: {value!r} did not parse")
    elif isinstance(value, dict):
        _check_object(value, parsed, path, errors)
    elif isinstance(value, list):
        if not isinstance(parsed, list) or len(parsed) != len(value):
            errors.append(f"{path}: the list did not parse element by element")
            return
        for n, (v, p) in enumerate(zip(value, parsed)):
            if v is None:
                errors.append(f"{path}[{n}]: null inside a collection")
            else:
                _check_value(v, p, f"{path}[{n}]", key, errors)


def _flags_ok(key: str, value: str) -> bool:
    module, name = _FLAG_COLLECTIONS[key]
    enum = getattr(importlib.import_module(f"msgraph.generated.models.{module}"), name)
    members = {m.value for m in enum}
    return all(part.strip() in members for part in value.split(","))
