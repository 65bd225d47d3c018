"""A picture of each predicted scan (its mid-sagittal slice, the labels over it, the levels named) and a contact
sheet of all of them (an HTML page, and a figure for the notebook), so that 200 results are checked by eye in a
minute.

Used by notebook 07 and `python -m helpers predict FOLDER --out FOLDER` (helpers/inference/batch.py writes the
pictures through `scan_picture`, then the sheet).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from helpers.core.atomic import save_figure, write_text_atomic
from helpers.data.labels import structure_of
from helpers.data.spider import canonical_array
from helpers.figures.series import SeriesView, legend_handles, middle_slice

PICTURE_INCHES = (3.4, 4.0)
PICTURE_DPI = 100  # a 340 x 400 pixel PNG: small beside its mask, enough to see a merged or missed level


def level_text(value: int, names: dict[int, str]) -> str:
    """What a label is called on the picture: its level (L5, L4/L5) where named, else SPIDER's number (V3, D3)."""
    if value in names:
        return names[value]
    kind = structure_of(value)
    return f"V{value}" if kind == "vertebra" else f"D{value - 200}" if kind == "disc" else ""


def scan_picture(image: sitk.Image, spider_map: sitk.Image, out: str | Path, title: str,
                 names: dict[int, str] | None = None, note: str = "") -> Path:
    """The mid-sagittal slice (the one with the most canal) of `image` with the structures of `spider_map` (SPIDER
    values, on the image's grid) over it and each vertebra and disc named (`names`: levels.name_levels), written
    atomically as a small PNG to `out`; `note` (a warning) in small red print below."""
    from matplotlib.figure import Figure

    names = names or {}
    view = SeriesView(image, spider_map, title)
    values = canonical_array(spider_map)
    index = middle_slice(view.mask, view.n_slices)
    fig = Figure(figsize=PICTURE_INCHES)
    ax = fig.subplots()
    view.draw(ax, index)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_xticks([])
    _name_levels(ax, values[index], view.spacing, names)
    ax.legend(handles=legend_handles(), loc="lower right", fontsize=5, frameon=False, labelcolor="white")
    if note:
        fig.text(0.02, 0.01, _wrap(note, 70), fontsize=5, color="#c0392b", va="bottom")
    fig.tight_layout(rect=(0, 0.08 if note else 0, 1, 1))
    out = Path(out)
    save_figure(fig, out, dpi=PICTURE_DPI)
    return out


def _name_levels(ax, slice_values: np.ndarray, spacing: tuple[float, float, float], names: dict[int, str]) -> None:
    """Each vertebra's name on its body, each disc's before its front edge."""
    import matplotlib.patheffects as effects

    _, sy, sx = spacing
    outline = [effects.withStroke(linewidth=1.5, foreground="black")]
    for value in (int(v) for v in np.unique(slice_values) if v):
        text = level_text(value, names)
        if not text:
            continue
        rows, cols = np.nonzero(slice_values == value)
        if structure_of(value) == "vertebra":
            x, y, align = cols.mean() * sx, rows.mean() * sy, "center"
        else:
            x, y, align = (cols.min() - 2) * sx, rows.mean() * sy, "right"
        ax.text(x, y, text, color="white", fontsize=5.5, ha=align, va="center", path_effects=outline)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:3])


def contact_sheet(rows: list[dict], out: str | Path, title: str = "Predicted scans") -> Path:
    """An HTML page of every scan's picture with its name, the series used, the levels found and its warnings, and
    the scans that failed with why (rows as `OUT/summary.csv` holds them: scan, status, picture, series, levels,
    warnings, error). Pictures are linked by their path relative to the page; written atomically."""
    out = Path(out)
    cards = []
    for row in rows:
        name = html.escape(str(row.get("scan", "")))
        if row.get("status") == "failed":
            cards.append(f'<div class="card failed"><b>{name}</b><p>failed: {html.escape(str(row.get("error", "")))}'
                         "</p></div>")
            continue
        picture = html.escape(str(row.get("picture", "")))
        warn = str(row.get("warnings", "") or "")
        cards.append(
            f'<div class="card{" warned" if warn else ""}"><a href="{picture}"><img src="{picture}" alt="{name}"></a>'
            f"<b>{name}</b><p>{html.escape(str(row.get('series', '') or ''))}</p>"
            f"<p>levels: {html.escape(str(row.get('levels', '') or 'not named'))}</p>"
            + (f'<p class="warn">{html.escape(warn)}</p>' if warn else "") + "</div>")
    failed = sum(r.get("status") == "failed" for r in rows)
    warned = sum(bool(r.get("warnings")) and r.get("status") != "failed" for r in rows)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #222; color: #eee; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 8px; }}
.card {{ background: #333; padding: 4px; border: 2px solid #333; font-size: 11px; }}
.card img {{ width: 100%; }}
.card p {{ margin: 2px 0; overflow-wrap: anywhere; }}
.warned {{ border-color: #e67e22; }} .warn {{ color: #f0b27a; }}
.failed {{ border-color: #c0392b; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(rows)} scans: {len(rows) - failed} predicted ({warned} with something to check, orange), {failed} failed (red).
Each picture: the mid-sagittal slice (the most canal), vertebrae yellow, discs green, canal blue; levels named where a
disc lies below the lowest vertebra (else SPIDER's numbers V1, D1 from the bottom). Research use only.</p>
<div class="grid">
{chr(10).join(cards)}
</div></body></html>
"""
    write_text_atomic(out, page)
    return out


def show_contact_sheet(rows: list[dict], folder: str | Path, columns: int = 4, save: str | Path | None = None):
    """The pictures of `rows` (relative to `folder`) in a grid, each titled with its scan and first warning: the
    contact sheet in a notebook (a figure, so a stored or headless notebook keeps it)."""
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.get("status") != "failed" and r.get("picture")]
    count = max(1, len(shown))
    columns = min(columns, count)
    fig, axes = plt.subplots(math.ceil(count / columns), columns, figsize=(3.0 * columns, 3.6 * math.ceil(
        count / columns)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, shown):
        ax.imshow(plt.imread(str(Path(folder) / row["picture"])))
        warn = str(row.get("warnings", "") or "")
        ax.set_title(f"{row['scan']}" + ("\n(something to check)" if warn else ""), fontsize=8,
                     color="#c0392b" if warn else "black")
    fig.tight_layout()
    save_figure(fig, save)
    return fig
