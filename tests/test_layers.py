"""The pipeline package's imports go one way: phases ← reports ← scheduler ← driver."""

from __future__ import annotations

import ast
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[1] / "mprl" / "pipeline"
ORDER = ["phases", "reports", "scheduler", "driver"]  # each may import only those before it


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_pipeline_modules_import_only_the_ones_below_them():
    for i, name in enumerate(ORDER):
        imported = _imports(PIPELINE / f"{name}.py")
        above = {f"mprl.pipeline.{m}" for m in ORDER[i + 1:]} | {"mprl.runner", "mprl.scheduler"}
        assert not imported & above, (name, sorted(imported & above))
    for other in ("mprl.runner", "mprl.scheduler"):  # the old paths are re-exports only
        assert not any(m.startswith("mprl.pipeline") for m in _imports(PIPELINE.parent / "lineage" / "store.py"))
        assert other not in _imports(PIPELINE.parent / "cli.py")


def test_spec_modules_import_only_the_ones_below_them():
    """mprl/spec: vocabulary ← messages ← values ← models ← loader (the package re-exports)."""
    order = ["vocabulary", "messages", "values", "models", "loader"]
    spec = PIPELINE.parent / "spec"
    for i, name in enumerate(order):
        imported = {m for m in _imports(spec / f"{name}.py") if m.startswith("mprl.spec")}
        assert imported <= {f"mprl.spec.{m}" for m in order[:i]}, (name, sorted(imported))
