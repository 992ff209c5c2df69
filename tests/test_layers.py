"""The package's layers: no module imports from a layer above its own.

    infrastructure < tasks < nets/ops < baselines/learners < evaluation/runner < experiments < cli

A low layer that imported a high one would make, e.g., a task family depend on a learner, and
circular imports would follow. The check reads every module's imports (``import`` and ``from``
statements anywhere in the file, including inside functions) with ``ast``; it runs no code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "learn2rl"

# Top-level modules and subpackages of learn2rl, by layer (low to high).
LAYERS: list[set[str]] = [
    # Infrastructure that knows nothing of meta-RL.
    {"errors", "version", "types", "devices", "distributed", "provenance", "checkpoint", "logging"},
    {"tasks", "trial", "rollout"},
    {"nets", "ops"},
    {"baselines", "learners"},
    {"evaluation", "runner", "sweep", "report", "plots", "analysis"},
    {"experiments"},
    {"cli", "__init__", "__main__"},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def top_level(path: Path) -> str:
    """The top-level module or subpackage a file belongs to (``tasks`` for tasks/maze.py)."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported(path: Path) -> set[str]:
    """The learn2rl top-level modules a file imports (``from learn2rl import x`` names x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "learn2rl":
                modules = [f"learn2rl.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "learn2rl":
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    names = {top_level(path) for path in sources()}
    assert names - set(LAYER_OF) == set(), "add new top-level modules to LAYERS"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_higher_layer(path):
    own = top_level(path)
    upward = sorted(
        name
        for name in imported(path)
        if name != own and LAYER_OF.get(name, len(LAYERS)) > LAYER_OF[own]
    )
    assert not upward, f"{path.relative_to(PACKAGE)} (layer {own}) imports from above: {upward}"


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from learn2rl.experiments import demo\n    import learn2rl.cli\n")
    assert imported(bad) == {"experiments", "cli"}
    assert LAYER_OF["experiments"] > LAYER_OF["tasks"]
