"""The documented export format is the one the code reads and the sample writes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import exports
from pimtrail.collectors.datasets import DATASETS

DOCS = Path(__file__).parents[1] / "docs"
SCHEMA = json.loads((DOCS / "export-format.schema.json").read_text())


def validator(part: str):
    schema = dict(SCHEMA, **{"$ref": f"#/$defs/{part}"})
    schema.pop("oneOf")
    return jsonschema.Draft202012Validator(schema)


def check_export(root: Path) -> int:
    manifest = json.loads((root / "manifest.json").read_text())
    validator("manifest").validate(manifest)
    files = 0
    for entry in manifest["datasets"].values():
        if "file" in entry:
            validator("datasetFile").validate(json.loads((root / entry["file"]).read_text()))
            files += 1
    return files


def test_schema_and_docs_name_every_dataset():
    names = [d.name for d in DATASETS]
    assert SCHEMA["$defs"]["datasetName"]["enum"] == names
    doc = (DOCS / "export-format.md").read_text()
    for name in names:
        assert f"| {name} |" in doc, name


def test_hand_made_export_follows_the_schema(export):
    assert check_export(export()) == len(exports.baseline()) - 1


def test_schema_rejects_what_the_reader_rejects():
    with pytest.raises(jsonschema.ValidationError):
        validator("datasetFile").validate({"roles": []})
    with pytest.raises(jsonschema.ValidationError):
        validator("manifest").validate({"format": "pimtrail-export/1", "tenant_id": "contoso",
                                        "collected_at": "2026-07-01T06:00:00Z", "datasets": {}})


def test_sample_exports_follow_the_schema(tmp_path):
    from pimtrail.sample_data import build_exports

    roots = build_exports(tmp_path)
    assert len(roots) == 14
    for root in roots:
        assert check_export(root) >= 25
