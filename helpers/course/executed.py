"""The course's executed notebooks kept beside the report, small enough to commit, so that someone browsing the
repository reads the course as a student sees it: every figure and table, no widget state (a stored widget shows
nothing outside a running kernel), large pictures re-encoded smaller.

Used by `python -m helpers report` (`make report`), after notebook 06's report: it copies the run's executed
notebooks (`outputs/notebooks/`, written by `python -m helpers run-notebooks`) into `report/course/`.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from helpers.core.atomic import write_text_atomic
from helpers.core.errors import DataError

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MAX_IMAGE_BYTES = 150_000  # a picture above this is re-encoded: smaller, then JPEG if still too large
MAX_IMAGE_WIDTH = 1100  # pixels: what a page of the repository shows anyway


def smaller_image(png: bytes) -> tuple[str, bytes]:
    """A large PNG as (mime type, bytes) of at most MAX_IMAGE_WIDTH pixels: PNG where that is small enough,
    else JPEG (quality 85)."""
    from PIL import Image

    picture = Image.open(io.BytesIO(png))
    if picture.width > MAX_IMAGE_WIDTH:
        picture = picture.resize((MAX_IMAGE_WIDTH, round(picture.height * MAX_IMAGE_WIDTH / picture.width)),
                                 Image.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    if buffer.tell() <= MAX_IMAGE_BYTES:
        return "image/png", buffer.getvalue()
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85, optimize=True)
    return "image/jpeg", buffer.getvalue()


def _output(output: dict) -> dict | None:
    data = output.get("data")
    if not data:
        return output
    data.pop(WIDGET_VIEW, None)  # a widget: its text fallback stays (a progress bar's last line)
    if not data:
        return None
    png = data.get("image/png")
    if png and len(png) * 3 // 4 > MAX_IMAGE_BYTES:
        mime, encoded = smaller_image(base64.b64decode(png))
        del data["image/png"]
        data[mime] = base64.b64encode(encoded).decode()
        output.get("metadata", {}).pop("image/png", None)
    return output


def slim(notebook: dict) -> dict:
    """An executed notebook without widget state and with its large pictures made smaller."""
    notebook["metadata"].pop("widgets", None)
    for cell in notebook["cells"]:
        if cell.get("outputs"):
            cell["outputs"] = [o for o in map(_output, cell["outputs"]) if o is not None]
    return notebook


def keep_executed(notebooks: str | Path, out: str | Path) -> list[Path]:
    """Copy the executed course notebooks (`NN_*.ipynb` in `notebooks`) into `out`, slimmed; an index README.md
    beside them. Returns the notebooks written."""
    notebooks, out = Path(notebooks), Path(out)
    books = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        raise DataError(notebooks, "holds no executed notebooks; run the course first (`make run`)")
    written, rows = [], []
    for book in books:
        try:
            notebook = json.loads(book.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(book, f"is not a readable notebook ({type(e).__name__}); run the course again") from None
        title = next(("".join(c["source"]).splitlines()[0].lstrip("# ") for c in notebook["cells"]
                      if c["cell_type"] == "markdown" and c["source"]), book.stem)
        write_text_atomic(out / book.name, json.dumps(slim(notebook), indent=1, ensure_ascii=False) + "\n")
        written.append(out / book.name)
        rows.append(f"| [`{book.name}`]({book.name}) | {title} |")
    index = ["# The course, executed", "",
             "Each notebook as `make run` executed it headless on the synthetic data (smoke profile), with its figures "
             "and tables: the course as a student sees it, readable without running anything. The sources, without "
             "outputs, are in [`notebooks/`](../../notebooks/); `make report` refreshes this folder from the last "
             "course run.", "", "| notebook | lesson |", "| --- | --- |", *rows, ""]
    write_text_atomic(out / "README.md", "\n".join(index))
    return written
