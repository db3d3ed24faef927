"""The shipped JSON Schema is current and accepts every shipped spec."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from rulealign.compiler.spec_format import json_schema
from tests.conftest import SHIPPED_SPECS, SPECS

SCHEMA_FILE = SPECS / "rulealign-spec.schema.json"


def test_shipped_schema_is_not_stale() -> None:
    shipped = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert shipped == json_schema(), "regenerate: rulealign spec schema -o specs/rulealign-spec.schema.json"


@pytest.mark.parametrize("spec", [*SHIPPED_SPECS, SPECS / "includes" / "northwind-terms.yaml"],
                         ids=lambda p: p.name)
def test_shipped_specs_validate_against_the_schema(spec) -> None:
    jsonschema.validate(yaml.safe_load(spec.read_text(encoding="utf-8")), json_schema())


def test_schema_rejects_a_misspelt_field() -> None:
    bad = {"rulealign": 1, "rules": [{"id": "a", "text": "t", "modality": "obligation",
                                      "action": "x", "severty": "high"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())
