"""The package boundaries a newcomer relies on, read from the imports of every module:
streams/ runs in production and never imports harness/, producers/ or consumers/; model/ never
imports streams/ (nor the tools); only streams/worker/app.py builds the Faust app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"streams": {"harness", "producers", "consumers"},
             "model": {"streams", "harness", "producers", "consumers"}}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages `path` imports (absolute imports; the project uses no relative)."""
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            tops |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            tops.add(node.module.split(".")[0])
    return tops


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_inside_their_layer(package: str) -> None:
    wrong = {str(p.relative_to(ROOT)): sorted(imported_packages(p) & FORBIDDEN[package])
             for p in (ROOT / package).rglob("*.py")}
    assert not {k: v for k, v in wrong.items() if v}


def test_only_the_app_module_builds_a_faust_app() -> None:
    builders = set()
    for path in (ROOT / "streams").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("faust.App", "App", "faust_compat.App"):
                    builders.add(str(path.relative_to(ROOT)))
    assert builders == {"streams/worker/app.py"}
