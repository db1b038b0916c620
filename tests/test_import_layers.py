"""The package's modules form layers, not cycles: the op database is data at the bottom, what runs it sits above.

Every import counts, module-level or inside a function (a deferred import hides a cycle, it does not remove it);
each conformance engine module imports on its own in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from scipy.sparse import csgraph, csr_matrix

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reference"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str) -> set[str]:
    """The package's modules that module `name` imports anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names)
    return {module for module in found if module in MODULES and module != name}


def import_cycles() -> list[list[str]]:
    """Groups of modules that import each other, directly or around a cycle (strongly connected components)."""
    names = sorted(MODULES)
    edges = [(names.index(a), names.index(b)) for a in names for b in imported_modules(a)]
    graph = csr_matrix(([1] * len(edges), ([a for a, _ in edges], [b for _, b in edges])), shape=(len(names),) * 2)
    count, labels = csgraph.connected_components(graph, directed=True, connection="strong")
    groups = [[names[i] for i in range(len(names)) if labels[i] == label] for label in range(count)]
    return [group for group in groups if len(group) > 1]


def test_the_import_graph_sees_deferred_imports():
    """The analysis is not blind: a function-level import counts (the engine imports its tiers on first use)."""
    assert "reference.testing.conformance.tiers" in imported_modules("reference.testing.conformance.engine")
    assert "reference.testing.strategies" in imported_modules("reference.testing.conformance.database")


def test_no_modules_import_each_other():
    assert import_cycles() == []


ENGINE = [name for name in MODULES if name.startswith("reference.testing.conformance.")]


@pytest.mark.slow  # one interpreter with torch per module
@pytest.mark.parametrize("module", ENGINE)
def test_each_engine_module_imports_alone_in_a_fresh_interpreter(module):
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
