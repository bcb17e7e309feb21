"""The engine's boundaries: moto is imported in one module, the product in another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stepburst_local

pytestmark = pytest.mark.engine

PACKAGE = Path(stepburst_local.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _importers(root_package: str) -> list[str]:
    return sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(
            name == root_package or name.startswith(f"{root_package}.") for name in _imports(path)
        )
    )


def test_only_moto_internals_imports_moto() -> None:
    assert _importers("moto") == ["moto_internals.py"]


def test_only_product_imports_the_product() -> None:
    assert _importers("stepburst") == ["product.py"]
