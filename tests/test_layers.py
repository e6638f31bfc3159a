"""The package's import structure: no module imports itself through others, and the
layers of docs/ARCHITECTURE.md (the import-linter contract in pyproject.toml) are kept.
Imports inside functions and for type checking count: a lazy import is still a
dependency."""

from __future__ import annotations

import graphlib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_no_import_cycle_between_modules():
    graph = grimp.build_graph("convention", cache_dir=None)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    try:
        graphlib.TopologicalSorter(imports).prepare()
    except graphlib.CycleError as err:
        pytest.fail(f"import cycle: {' imports '.join(reversed(err.args[1]))}")


def test_each_layer_imports_only_the_layers_below():
    from importlinter.cli import lint_imports

    config = str(ROOT / "pyproject.toml")
    assert lint_imports(config_filename=config, no_cache=True, no_logo=True) == 0
