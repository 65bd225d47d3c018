"""environment.yml and pyproject.toml describe the same packages; the notebooks are clean sources."""

import json
import re

import tomllib
import yaml

from helpers.core.paths import NOTEBOOK_DIR, ROOT
from tools.links import SETUP_TAG, sync_links

CONDA_TO_PYPI = {"pytorch": "torch", "simpleitk": "simpleitk"}


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", requirement.strip()).groups()
    name = name.lower().replace("_", "-")
    return CONDA_TO_PYPI.get(name, name), spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = dict(_split(d) for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python", "pip")))
    assert conda == wanted
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section


def test_notebooks_are_clean_sources_with_one_parameters_cell():
    books = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert len(books) >= 3
    for book in books:
        cells = json.loads(book.read_text())["cells"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells if c["cell_type"] == "code"), book
        tags = [c.get("metadata", {}).get("tags", []) for c in cells]
        assert sum("parameters" in t for t in tags) == 1, book
        assert SETUP_TAG in tags[0], f"{book}: the first cell must be the setup cell"
        assert cells[1]["cell_type"] == "markdown" and cells[1]["source"][0].startswith("# "), book
        assert "Exercises" in "".join(cells[-1]["source"]), f"{book}: close with exercises"


def test_links_are_in_step_with_pyproject():
    assert sync_links(check=True) == [], "run `python -m tools.links`"
    readme = (ROOT / "README.md").read_text()
    for book in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        assert f"notebooks/{book.name})" in readme and "colab-badge.svg" in readme


def test_the_recipe_page_table_is_the_profiles():
    from helpers.core.profiles import recipe_table

    page = (ROOT / "docs" / "recipe.md").read_text()
    block = page.split("<!-- recipes:start -->\n")[1].split("\n<!-- recipes:end -->")[0]
    assert block == recipe_table(), "docs/recipe.md's table differs from helpers/core/profiles.py: paste recipe_table()"


def test_every_relative_link_in_readme_and_docs_resolves():
    import re

    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\((?!https?:|#|mailto:)([^)#\s]+)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links {target}, which does not exist"


def test_notebooks_round_trip_through_nbformat_unchanged():
    """`python -m tools.links` writes notebooks with nbformat: it must not reformat them."""
    import nbformat

    for book in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        assert nbformat.writes(nbformat.read(book, as_version=4)) + "\n" == book.read_text(), book.name


def test_links_rewrite_a_changed_setup_cell(tmp_path, monkeypatch):
    import shutil

    import tools.links as links

    for name in ("README.md", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    # the notebooks only: a kernel's IPC sockets (kernel-ipc-N) can lie beside them while a course runs
    shutil.copytree(NOTEBOOK_DIR, tmp_path / "notebooks", ignore=shutil.ignore_patterns("kernel-ipc-*"))
    book = tmp_path / "notebooks" / "00_data.ipynb"
    original = book.read_text()
    book.write_text(original.replace("REPO_URL = ", "REPO_URL_OLD = ", 1))
    monkeypatch.setattr(links, "ROOT", tmp_path)
    monkeypatch.setattr(links, "NOTEBOOK_DIR", tmp_path / "notebooks")
    assert links.sync_links() == ["notebooks/00_data.ipynb"]
    assert book.read_text() == original and links.sync_links(check=True) == []
