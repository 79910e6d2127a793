"""The sample tenant must look exactly like Microsoft Graph, and be reproducible.

Every item of every page of every dataset in every sample export is parsed with msgraph-sdk's
own generated models (v1.0); an unknown property name or a value that does not parse fails the
test. The three beta datasets cannot be parsed that way (the beta SDK is not installed), so
they are checked against a hand-written list of documented properties instead.
"""

from __future__ import annotations

import filecmp
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("msgraph.generated.models.user", reason="msgraph-sdk is needed to validate the sample")
pytest.importorskip("kiota_serialization_json")

from pimtrail.collectors.datasets import BY_NAME, DATASETS, USERS_PER_REQUEST, Parent  # noqa: E402
from pimtrail.sample_data import SNAPSHOT_DATES, TENANT_ID, build_exports  # noqa: E402

try:  # tests/ may or may not be a package
    from . import sample_graph_models as models  # type: ignore[no-redef]
except ImportError:
    import sample_graph_models as models  # type: ignore[no-redef]

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
BODY_KEYS = {"@odata.context", "@odata.nextLink", "@odata.count", "value"}
PAGED = ("users", "directory_audits")


@pytest.fixture(scope="module")
def sample_exports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_exports(tmp_path_factory.mktemp("sample") / "exports")


def _load(export: Path, name: str) -> Any:
    return json.loads((export / f"{name}.json").read_text(encoding="utf-8"))


def bodies(export: Path, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, body) for every response body of a dataset file, whatever its form."""
    data = _load(export, name)
    if isinstance(data, dict) and "pages" in data:
        for n, page in enumerate(data["pages"]):
            yield f"{export.name}/{name}.json pages[{n}] ({page['parent']})", page["body"]
    elif isinstance(data, list):
        for n, page in enumerate(data):
            yield f"{export.name}/{name}.json [{n}]", page
    else:
        yield f"{export.name}/{name}.json", data


def items(export: Path, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, body in bodies(export, name):
        for n, item in enumerate(body["value"]):
            yield f"{where} value[{n}]", item


def written(export: Path) -> set[str]:
    return {p.stem for p in export.glob("*.json")} - {"manifest"}


# ----------------------------------------------------------------------------- the exports
def test_one_export_per_snapshot(sample_exports: list[Path]) -> None:
    assert [p.name for p in sample_exports] == [d.isoformat() for d in SNAPSHOT_DATES]
    assert len(sample_exports) == 14
    for export, day in zip(sample_exports, SNAPSHOT_DATES):
        manifest = _load(export, "manifest")
        assert manifest["collected_at"] == f"{day.isoformat()}T06:00:00Z"
        assert manifest["tenant_id"] == TENANT_ID == _load(export, "organization")["value"][0]["id"]


def test_manifest_names_every_dataset_file(sample_exports: list[Path]) -> None:
    for export in sample_exports:
        manifest = _load(export, "manifest")
        assert manifest["format"] == "pimtrail-export/1"
        assert manifest["source"] == "sample"
        assert manifest["generator"]
        datasets = manifest["datasets"]
        named = {entry["file"] for entry in datasets.values()}
        on_disk = {p.name for p in export.iterdir()} - {"manifest.json"}
        assert named == on_disk, f"{export.name}: manifest and files differ: {named ^ on_disk}"
        for name, entry in datasets.items():
            assert entry["file"] == BY_NAME[name].file_name
        expected = {d.name for d in DATASETS if not d.optional} | {
            "privileged_role_definitions", "role_management_alerts", "pim_groups"}
        assert expected <= set(datasets), f"{export.name}: missing {expected - set(datasets)}"
        window = datasets["directory_audits"]["window"]
        to = datetime.fromisoformat(window["to"].replace("Z", "+00:00"))
        start = datetime.fromisoformat(window["from"].replace("Z", "+00:00"))
        assert window["to"] == manifest["collected_at"] and to - start == timedelta(days=30)


def test_builds_are_byte_identical(sample_exports: list[Path], tmp_path: Path) -> None:
    again = build_exports(tmp_path / "again")
    for first, second in zip(sample_exports, again, strict=True):
        names = sorted(p.name for p in first.iterdir())
        assert names == sorted(p.name for p in second.iterdir())
        _, mismatch, errors = filecmp.cmpfiles(first, second, names, shallow=False)
        assert not mismatch and not errors, f"{first.name}: {mismatch or errors} differ between builds"


def test_file_forms_and_paging(sample_exports: list[Path]) -> None:
    for export in sample_exports:
        for name in written(export):
            dataset = BY_NAME[name]
            data = _load(export, name)
            if dataset.parent is not Parent.NONE:
                assert set(data) == {"pages"}, f"{name} must use the per-parent wrapper"
                for page in data["pages"]:
                    if dataset.parent is Parent.USERS:  # the request names the users (all of whom exist here)
                        assert page["parent"] == "" and page["request"] == dataset.request(
                            ",".join(v["id"] for v in page["body"]["value"]))
                        assert 0 < len(page["body"]["value"]) <= USERS_PER_REQUEST
                    else:
                        assert page["request"] == dataset.request(page["parent"])
            for where, body in bodies(export, name):
                assert set(body) <= BODY_KEYS and isinstance(body["value"], list), where
                assert body.get("@odata.context", "").startswith("https://graph.microsoft.com/"), where
        for name in PAGED:
            pages = _load(export, name)
            assert isinstance(pages, list) and len(pages) >= 2, f"{export.name}/{name}: want 2+ pages"
            assert all(p["@odata.nextLink"].startswith("https://graph.microsoft.com/") for p in pages[:-1])
            assert "@odata.nextLink" not in pages[-1]


def test_timestamps_are_iso_utc(sample_exports: list[Path]) -> None:
    def walk(value: Any, where: str) -> Iterator[str]:
        if isinstance(value, dict):
            for key, v in value.items():
                if key.endswith("DateTime") and v is not None and not ISO_UTC.match(v):
                    yield f"{where}.{key} = {v!r}"
                yield from walk(v, f"{where}.{key}")
        elif isinstance(value, list):
            for n, v in enumerate(value):
                yield from walk(v, f"{where}[{n}]")

    bad = [b for export in sample_exports for name in written(export) for where, item in items(export, name)
           for b in walk(item, where)]
    assert not bad, "\n".join(bad[:20])


# ----------------------------------------------------------------------------- Graph fidelity
def test_every_dataset_has_a_validator(sample_exports: list[Path]) -> None:
    for export in sample_exports:
        unchecked = written(export) - set(models.V1_MODELS) - set(models.BETA_ALLOWED)
        assert not unchecked, f"no validator for {unchecked}"


@pytest.mark.parametrize("name", sorted(models.V1_MODELS))
def test_items_parse_with_msgraph_models(sample_exports: list[Path], name: str) -> None:
    if not any(name in written(e) for e in sample_exports):
        pytest.skip(f"{name} is not part of the sample")
    cls = models.model_class(name)
    found, count = [], 0
    for export in sample_exports:
        for where, item in items(export, name):
            count += 1
            found += models.problems(cls, item, where)
    assert count, f"{name}: no items at all in the sample"
    assert not found, f"{len(found)} problem(s):\n" + "\n".join(found[:30])


@pytest.mark.parametrize("name", sorted(models.BETA_ALLOWED))
def test_beta_items_use_documented_properties(sample_exports: list[Path], name: str) -> None:
    """Beta: msgraph-beta-sdk is not installed; documented property names and JSON types instead."""
    allowed = models.BETA_ALLOWED[name]
    found, count = [], 0
    for export in sample_exports:
        for where, item in items(export, name):
            count += 1
            for key, value in item.items():
                if key not in allowed:
                    found.append(f"{where}.{key}: not a documented property")
                elif value is not None and not isinstance(value, allowed[key]):
                    found.append(f"{where}.{key}: {value!r} is not {allowed[key]}")
                elif key.endswith("DateTime") and not ISO_UTC.match(value):
                    found.append(f"{where}.{key}: {value!r} is not ISO 8601 UTC")
    assert count, f"{name}: no items at all in the sample"
    assert not found, "\n".join(found[:30])


def test_validator_catches_unknown_and_unparsable_values() -> None:
    """Guard the guard: the checker must reject what it is meant to reject."""
    cls = models.model_class("users")
    assert models.problems(cls, {"id": "x", "displayName": "A"}, "$") == []
    assert models.problems(cls, {"id": "x", "displayname": "A"}, "$")  # wrong case: unknown
    assert models.problems(cls, {"id": "x", "accountEnabled": "yes"}, "$")  # not a boolean
    assert models.problems(cls, {"id": "x", "createdDateTime": "yesterday"}, "$")
    audit = models.model_class("directory_audits")
    assert models.problems(audit, {"result": "succeeded"}, "$")  # not an operationResult member
    rule = models.model_class("role_policy_assignments")
    bad_rule = {"policy": {"rules": [{"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpiryRule",
                                      "id": "Expiration_EndUser_Assignment", "maximumDuration": "PT8H"}]}}
    assert models.problems(rule, bad_rule, "$")
    strength = models.model_class("authentication_strengths")
    assert models.problems(strength, {"allowedCombinations": ["password,microsoftAuthenticatorPush"]}, "$") == []
    assert models.problems(strength, {"allowedCombinations": ["password,carrierPigeon"]}, "$")


# ----------------------------------------------------------------------------- story consistency
def _holdings(export: Path) -> dict[tuple[str, str], list[str | None]]:
    """(principal, role) -> start times of the active/eligible instances in one snapshot."""
    out: dict[tuple[str, str], list[str | None]] = {}
    for name in ("role_assignment_instances", "role_eligibility_instances"):
        for _, i in items(export, name):
            out.setdefault((i["principalId"], i["roleDefinitionId"]), []).append(i["startDateTime"])
    return out


def test_review_removals_hold_in_later_snapshots(sample_exports: list[Path]) -> None:
    """Denied and not-reviewed access is gone once applied (a later, new grant is allowed)."""
    removed = 0
    for export in sample_exports:
        holdings = _holdings(export)
        for _, d in items(export, "access_review_decisions"):
            if d["applyResult"] == "AppliedSuccessfully" and d["decision"] in ("Deny", "NotReviewed"):
                removed += 1
                starts = holdings.get((d["principal"]["id"], d["resource"]["id"]), [])
                kept = [s for s in starts if s is None or s < d["appliedDateTime"]]
                assert not kept, f"{export.name}: {d['principal']['displayName']} kept {d['resource']['displayName']}"
    assert removed, "the sample should contain applied denials"


def test_activated_instances_have_their_audit_trail(sample_exports: list[Path]) -> None:
    for export in sample_exports:
        completed = {}
        for _, e in items(export, "directory_audits"):
            if e["activityDisplayName"] == "Add member to role completed (PIM activation)":
                details = {kv["key"]: kv["value"] for kv in e["additionalDetails"]}
                targets = {t["type"]: t["id"] for t in e["targetResources"]}
                completed[(targets.get("User"), targets.get("Role"), details["StartTime"])] = e
        for where, i in items(export, "role_assignment_instances"):
            if i["assignmentType"] == "Activated":
                assert (i["principalId"], i["roleDefinitionId"], i["startDateTime"]) in completed, where


def test_fido2_keys_collected_for_every_user_role_holder(sample_exports: list[Path]) -> None:
    for export in sample_exports:
        parents = {p["parent"] for p in _load(export, "fido2_methods")["pages"]}
        for name in ("role_assignment_instances", "role_eligibility_instances"):
            for where, i in items(export, name):
                if i["principal"]["@odata.type"] == "#microsoft.graph.user":
                    assert i["principalId"] in parents, where
