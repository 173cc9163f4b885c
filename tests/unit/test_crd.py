"""The generated CRDs: committed files match the models, and the schema is structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from backup_operator.api.crd import render_all, render_crd
from backup_operator.api.kinds import KINDS, KindInfo

CRDS = Path(__file__).resolve().parents[2] / "crds"


@pytest.mark.parametrize(("name", "text"), sorted(render_all().items()))
def test_committed_crds_match_the_models(name: str, text: str) -> None:
    committed = CRDS / name
    assert committed.exists(), f"{committed} missing: run `backup-operator crds`"
    assert committed.read_text() == text, f"{committed} is stale: run `backup-operator crds`"


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node with its path."""
    found = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        found += walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += walk(node["items"], f"{path}[]")
    return found


@pytest.mark.parametrize("info", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_documented(info: KindInfo) -> None:
    version = render_crd(info)["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    text = yaml.safe_dump(schema)
    assert "$ref" not in text and "anyOf" not in text and "title" not in text
    for path, node in walk(schema["properties"]["spec"], "spec"):
        assert "type" in node, f"{path} has no type"
        assert node.get("description"), f"{path} has no description (kubectl explain)"


@pytest.mark.parametrize("info", KINDS, ids=lambda k: k.kind)
def test_crd_names_columns_and_rules(info: KindInfo) -> None:
    crd = render_crd(info)
    assert crd["spec"]["names"]["categories"] == ["backups"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert {"Phase", "Size", "Duration", "Age", "Message"} <= set(columns)
    assert columns["Message"]["priority"] == 1 and "priority" not in columns["Phase"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    assert spec["properties"]["compression"]["enum"] == ["gzip", "zstd", "none"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["properties"]["conditions"]["x-kubernetes-list-type"] == "map"
