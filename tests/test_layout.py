"""The kit's layout (docs/kit.md): helpers/ is grouped by stage, each stage imports only from the
stages before it, every module says what it is for and which notebook uses it, and the notebooks import the
names they use from `helpers` itself."""

import ast
import importlib
import json
import re

import pytest

import helpers
from helpers.core.paths import NOTEBOOK_DIR, ROOT

# each stage may import only those before it
STAGES = ["core", "data", "training", "inference", "evaluation", "figures", "course"]
PACKAGE = ROOT / "helpers"


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def stage_of(dotted: str) -> int:
    parts = dotted.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else len(STAGES)  # cli, __main__


def kit_imports(path):
    """Every `helpers...` module a file imports, at the top or inside a function."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("helpers"))


def test_every_stage_imports_only_the_stages_before_it():
    upward = []
    for path in modules():
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for imported in kit_imports(path):
            if stage_of(imported) > stage_of(dotted):
                upward.append(f"{dotted} imports {imported}")
    assert not upward, "\n".join(upward)


def test_no_module_lies_loose_beside_the_stages():
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "cli.py"}
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(STAGES)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_says_what_it_is_for_and_who_uses_it(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc.splitlines()[0]) > 20, f"{path}: no first line saying what it is for"
    if path.name == "__init__.py":
        listed = {p.stem for p in path.parent.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
        listed |= {p.name for p in path.parent.iterdir() if (p / "__init__.py").exists()}
        missing = [name for name in listed if f"`{name}" not in doc]
        assert not missing, f"{path}: modules not listed: {missing}"
    else:
        assert re.search(r"[Nn]otebook|Used by", doc), f"{path}: does not say which notebook uses it"


def test_the_names_notebooks_use_come_from_helpers_and_each_resolves():
    for name, module in helpers.EXPORTS.items():
        assert hasattr(importlib.import_module(f"helpers.{module}"), name), (name, module)
    assert set(helpers.EXPORTS).isdisjoint(STAGES)
    for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            tree = ast.parse("".join(cell["source"]))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
                    assert node.module == "helpers", f"{path.name}: from {node.module} import (use `from helpers`)"
                    assert all(a.name in helpers.EXPORTS for a in node.names), path.name
