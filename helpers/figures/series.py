"""Pictures of SPIDER series: canonical sagittal slices with structure overlays, a legend, a slider.

Used by notebooks 00, 01, 03 and 06.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import SimpleITK as sitk
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from helpers.core.atomic import save_figure
from helpers.core.runtime import headless
from helpers.data.labels import FOREGROUND, STRUCTURE_COLOURS, to_structures
from helpers.data.spider import canonical_array, canonical_spacing

OVERLAY_CMAP = ListedColormap(["none"] + [STRUCTURE_COLOURS[s] for s in FOREGROUND])


def display_range(array: np.ndarray) -> tuple[float, float]:
    """Grey-level window from the 1st and 99th percentiles: works for every intensity convention."""
    lo, hi = np.percentile(array, [1, 99])
    return float(lo), float(hi if hi > lo else lo + 1)


def legend_handles() -> list[Patch]:
    return [Patch(color=STRUCTURE_COLOURS[s], label=s) for s in FOREGROUND]


def middle_slice(mask: np.ndarray | None, n: int) -> int:
    """Index of the sagittal slice with the most canal in it (the mid-sagittal plane), else the centre."""
    if mask is not None and mask.any():
        canal = (mask == 3).sum(axis=(1, 2))
        if canal.any():
            return int(np.argmax(canal))
    return n // 2


class SeriesView:
    """One series in canonical orientation, ready to draw (arrays are (slice, row, column))."""

    def __init__(self, image: sitk.Image, mask: sitk.Image | None = None, title: str = "",
                 structures: bool = False):
        """`structures`: the mask already holds structure indices (0-3) rather than SPIDER values."""
        self.image = canonical_array(image).astype(np.float32)
        self.mask = None
        if mask is not None:
            m = canonical_array(mask)
            self.mask = m.astype(np.uint8) if structures else to_structures(m)
        self.spacing = canonical_spacing(image)  # along the array's axes (LR, SI, AP)
        self.window = display_range(self.image)
        self.title = title

    @property
    def n_slices(self) -> int:
        return self.image.shape[0]

    def draw(self, ax, index: int | None = None, overlay: bool = True, alpha: float = 0.45, physical: bool = True):
        """Draw one sagittal slice; `physical=False` draws voxels as squares (what a network sees)."""
        index = middle_slice(self.mask, self.n_slices) if index is None else index
        _, sy, sx = self.spacing if physical else (1, 1, 1)
        h, w = self.image.shape[1:]
        extent = (0, w * sx, h * sy, 0)  # millimetres, so anatomy keeps its true proportions
        ax.imshow(self.image[index], cmap="gray", vmin=self.window[0], vmax=self.window[1],
                  extent=extent, interpolation="nearest")
        if overlay and self.mask is not None:
            ax.imshow(np.ma.masked_equal(self.mask[index], 0), cmap=OVERLAY_CMAP, vmin=0, vmax=3,
                      alpha=alpha, extent=extent, interpolation="nearest")
        ax.set_title(f"{self.title} slice {index + 1}/{self.n_slices}".strip(), fontsize=9)
        unit = "mm" if physical else "voxels"
        ax.set_xlabel(f"anterior  \u2190  {unit}  \u2192  posterior", fontsize=8)
        ax.set_ylabel(f"inferior  \u2190  {unit}  \u2192  superior", fontsize=8)
        ax.set_yticks([])
        return ax


def show_views(views: list[SeriesView], indices: list[int | None] | None = None, overlay: bool = True,
               save: str | Path | None = None):
    """Views side by side, image above and image with overlay below; saved as PNG when `save` is given."""
    indices = indices or [None] * len(views)
    rows = 2 if overlay else 1
    fig, axes = plt.subplots(rows, len(views), figsize=(3.6 * len(views), 4.2 * rows), squeeze=False)
    for j, (view, index) in enumerate(zip(views, indices)):
        view.draw(axes[0, j], index, overlay=False)
        if overlay:
            view.draw(axes[1, j], index, overlay=True)
            axes[0, j].set_xlabel("")  # the row below says it: a label here would run into that row's title
            axes[1, j].set_title("the same slice, labels over it", fontsize=9)
    if overlay:
        fig.legend(handles=legend_handles(), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.04 if overlay else 0, 1, 1))
    save_figure(fig, save)
    return fig


def slice_strip(view: SeriesView, count: int = 5, save: str | Path | None = None):
    """`count` sagittal slices side by side, from one side of the spine to the other."""
    indices = np.linspace(0, view.n_slices - 1, count).round().astype(int)
    fig, axes = plt.subplots(1, count, figsize=(3 * count, 3.4))
    for ax, index in zip(axes, indices):
        view.draw(ax, int(index))
    fig.tight_layout()
    save_figure(fig, save, dpi=100)
    return fig


def slice_png(view: SeriesView, index: int, overlay: bool = True, dpi: int = 80) -> bytes:
    """One sagittal slice with its legend as PNG bytes, drawn off screen (no pyplot, nothing displayed)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    view.draw(ax, index, overlay)
    ax.legend(handles=legend_handles(), loc="upper right", fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def slice_slider(view: SeriesView, save: str | Path | None = None):
    """A slider over the sagittal slices; in the kit's headless run, a static strip of slices instead (a widget
    shows nothing in a stored notebook).

    The slice is a PNG in an `Image` widget, redrawn when the slider moves. No `Output` widget and no
    `ipywidgets.interactive`: those make an executor (papermill, `jupyter nbconvert --execute`) answer the kernel
    while it waits for the cell, which can hang it for ever (jupyter/nbclient#312)."""
    if headless():
        return slice_strip(view, save=save)
    import ipywidgets as widgets

    start = middle_slice(view.mask, view.n_slices)
    index = widgets.IntSlider(start, 0, view.n_slices - 1, description="slice")
    overlay = widgets.Checkbox(True, description="overlay")
    picture = widgets.Image(value=slice_png(view, start), format="png", width=400)

    def redraw(_change=None) -> None:
        picture.value = slice_png(view, index.value, overlay.value)

    index.observe(redraw, names="value")
    overlay.observe(redraw, names="value")
    box = widgets.VBox([widgets.HBox([index, overlay]), picture])
    box.add_class("kit-slice-slider")
    return box


def show_comparison(image: sitk.Image, reference: sitk.Image, prediction: sitk.Image, title: str, axes=None):
    """Reference, prediction and errors (missed in blue, extra in red) on the mid-sagittal slice.

    `reference` and `prediction` hold structure indices (0-3) on the image's grid."""
    ref = SeriesView(image, reference, structures=True)
    pred = SeriesView(image, prediction, structures=True)
    index = middle_slice(ref.mask, ref.n_slices)
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(10, 3.8))
    ref.draw(axes[0], index)
    axes[0].set_title(f"{title}: reference", fontsize=9)
    pred.draw(axes[1], index)
    axes[1].set_title("prediction", fontsize=9)
    ref.draw(axes[2], index, overlay=False)
    missed = (ref.mask[index] > 0) & (pred.mask[index] != ref.mask[index])
    extra = (pred.mask[index] > 0) & (pred.mask[index] != ref.mask[index])
    errors = np.zeros(missed.shape + (4,))
    errors[missed] = (0.1, 0.3, 1.0, 0.7)
    errors[extra] = (1.0, 0.1, 0.1, 0.7)
    axes[2].imshow(errors, extent=axes[2].images[0].get_extent(), interpolation="nearest")
    axes[2].set_title("errors: missed (blue), extra (red)", fontsize=9)
    return axes
