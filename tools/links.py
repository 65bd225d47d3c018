"""The repository address lives in pyproject.toml ([project.urls] Repository); this writes it into
the README's notebook table (Open-in-Colab badges) and each notebook's first (setup) cell, with nbformat.

Used by every notebook (its setup cell) through `python -m tools.links`."""

from __future__ import annotations

import re

import nbformat
import tomllib

from helpers.core.atomic import write_text_atomic
from helpers.core.paths import NOTEBOOK_DIR, ROOT

SETUP_TAG = "setup"
SETUP_CELL = '''# Setup: on Google Colab this fetches and installs the kit; locally and headless it does nothing.
# (written by `python -m tools.links` from pyproject.toml: edit tools/links.py, not this cell)
import os
import subprocess
import sys

REPO_URL = "{url}"
ON_COLAB = "google.colab" in sys.modules
if ON_COLAB and not os.path.isdir("/content/kit"):
    subprocess.run(["git", "clone", "-q", "--depth", "1", REPO_URL, "/content/kit"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/kit"], check=True)
if ON_COLAB:
    sys.path.insert(0, "/content/kit")
    os.chdir("/content/kit/notebooks")
from helpers import setup
setup()'''
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
TABLE_START, TABLE_END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"


def repository_url() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")


def colab_url(notebook: str, url: str | None = None) -> str:
    url = url or repository_url()
    return url.replace("https://github.com/", "https://colab.research.google.com/github/") + \
        f"/blob/main/notebooks/{notebook}"


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            return cell.source.strip().splitlines()[0].lstrip("# ").strip()
    return ""


def notebook_table(url: str) -> str:
    lines = ["| notebook | what it teaches | Colab |", "| --- | --- | --- |"]
    for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        title = _title(nbformat.read(path, as_version=4))
        badge = f"[![Open in Colab]({BADGE})]({colab_url(path.name, url)})"
        lines.append(f"| [`{path.name}`](notebooks/{path.name}) | {title} | {badge} |")
    return "\n".join(lines)


def sync_links(check: bool = False) -> list[str]:
    """Bring README and notebooks in line with pyproject's address; return what was (or would be) changed."""
    url = repository_url()
    changed = []
    readme = ROOT / "README.md"
    text = readme.read_text()
    pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.S)
    new = pattern.sub(lambda _: f"{TABLE_START}\n{notebook_table(url)}\n{TABLE_END}", text)
    if new != text:
        changed.append("README.md")
        if not check:
            write_text_atomic(readme, new)
    cell_source = SETUP_CELL.format(url=url)
    for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0]
        if SETUP_TAG in first.get("metadata", {}).get("tags", []):
            if first.source == cell_source:
                continue
            first.source = cell_source
        else:
            nb.cells.insert(0, nbformat.v4.new_code_cell(cell_source, id="setup", metadata={"tags": [SETUP_TAG]}))
        changed.append(f"notebooks/{path.name}")
        if not check:
            write_text_atomic(path, nbformat.writes(nb) + "\n")
    return changed


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m tools.links", description="write the repository address from "
                                "pyproject.toml into README and notebooks")
    p.add_argument("--check", action="store_true", help="only check, change nothing")
    args = p.parse_args(argv)
    changed = sync_links(check=args.check)
    if args.check and changed:
        print(f"error: out of date with pyproject.toml: {', '.join(changed)}; run `python -m tools.links`",
              file=sys.stderr)
        return 2
    print("links up to date" if not changed else f"updated {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
