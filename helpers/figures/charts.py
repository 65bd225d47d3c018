"""Training curves, a live plot for notebooks, training patches, a diagram of UNETR, and the box plots of an
evaluation.

Used by notebook 05 and notebook 06 (the report draws its curves and box plots with these).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from helpers.core.atomic import save_figure
from helpers.data.labels import FOREGROUND, STRUCTURE_COLOURS


def plot_curves(entries: list[dict], save: str | Path | None = None, fig=None):
    """Training loss and validation Dice per structure against iterations."""
    fig = fig or plt.figure(figsize=(10, 3.6))
    fig.clf()
    ax_loss, ax_dice = fig.subplots(1, 2)
    train = [e for e in entries if e["kind"] == "train"]
    val = [e for e in entries if e["kind"] == "validation" and "dice_mean" in e]
    ax_loss.plot([e["iteration"] for e in train], [e["loss"] for e in train], color="k")
    ax_loss.set(xlabel="iteration", ylabel="Dice + cross-entropy loss", title="training loss")
    for name in FOREGROUND:
        ax_dice.plot([e["iteration"] for e in val], [e[f"dice_{name}"] for e in val], "o-",
                     color=STRUCTURE_COLOURS[name], label=name)
    ax_dice.plot([e["iteration"] for e in val], [e["dice_mean"] for e in val], "s--", color="grey", label="mean")
    ax_dice.set(xlabel="iteration", ylabel="Dice (background excluded)", ylim=(0, 1), title="validation Dice")
    ax_dice.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, save)
    return fig


class LivePlot:
    """A training callback that redraws the curves in place in a notebook (a no-op picture headless)."""

    def __init__(self):
        from IPython.display import display

        self.fig = plt.figure(figsize=(10, 3.6))
        plt.close(self.fig)
        self.handle = display(self.fig, display_id=True)

    def __call__(self, entries: list[dict]) -> None:
        plot_curves(entries, fig=self.fig)
        if self.handle is not None:
            self.handle.update(self.fig)


def plot_metric_boxes(table, save: str | Path | None = None):
    """Dice, HD95 and ASSD per structure over the evaluated series (an `evaluate.evaluate` table) as box plots."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, metric, label in zip(axes, ("dice", "hd95", "assd"), ("Dice", "HD95 (mm)", "ASSD (mm)")):
        columns = [f"{metric}_{n}" for n in FOREGROUND]
        box = ax.boxplot([table[c].dropna() if c in table else [] for c in columns], patch_artist=True)
        ax.set_xticks(range(1, len(FOREGROUND) + 1), FOREGROUND)
        for patch, name in zip(box["boxes"], FOREGROUND):
            patch.set_facecolor(STRUCTURE_COLOURS[name])
        ax.set_title(label)
    fig.tight_layout()
    save_figure(fig, save)
    return fig


def unetr_diagram(patch: tuple[int, int, int], save: str | Path | None = None):
    """UNETR in one picture: 16^3 patches -> transformer encoder -> skip connections -> CNN decoder."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4.4)
    ax.axis("off")

    def box(x, y, w, h, text, colour):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=colour, ec="k", lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)

    def arrow(a, b, style="-|>"):
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=10, lw=0.9, color="k"))

    box(0.1, 1.6, 1.3, 1.2, f"input patch\n{patch[0]}x{patch[1]}x{patch[2]}\nvoxels", "#dddddd")
    box(1.8, 1.6, 1.4, 1.2, "cut into 16^3\ncubes, embed\neach as a token", "#fde0c5")
    arrow((1.4, 2.2), (1.8, 2.2))
    for i, layer in enumerate((3, 6, 9, 12)):
        box(3.6 + 1.1 * i, 3.2, 0.95, 0.8, f"transformer\nlayers ..{layer}", "#c6dbef")
        arrow((3.6 + 1.1 * i + 0.47, 3.2), (3.6 + 1.1 * i + 0.47, 2.0))
    arrow((3.2, 2.6), (3.6, 3.4))
    for i in range(3):
        arrow((3.6 + 1.1 * i + 0.95, 3.6), (3.6 + 1.1 * (i + 1), 3.6))
    for i in range(4):
        box(3.6 + 1.1 * i, 1.2, 0.95, 0.8, "reshape +\nupsample", "#c7e9c0")
    box(3.6, 0.1, 5.35, 0.7, "CNN decoder: joins each skip connection, upsamples x2 per stage",
        "#c7e9c0")
    for i in range(4):
        arrow((3.6 + 1.1 * i + 0.47, 1.2), (3.6 + 1.1 * i + 0.47, 0.8))
    box(9.3, 0.9, 1.6, 1.6, "per-voxel scores\nbackground,\nvertebra, disc,\ncanal", "#fdd0a2")
    arrow((8.95, 0.45), (9.5, 0.9))
    ax.set_title("UNETR: a vision transformer encoder with a U-Net-style decoder (Hatamizadeh et al., 2022)",
                 fontsize=10)
    save_figure(fig, save, bbox_inches="tight")
    return fig


def plot_patches(samples: list[dict], save: str | Path | None = None, columns: int = 4):
    """Training patches as the network sees them (AP, SI, LR, the kit's order): of each, the left-right slice with
    the most labelled voxels, image in grey with the label outlined per structure."""
    import numpy as np

    rows = -(-len(samples) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, sample in zip(axes.ravel(), samples):
        image, label = np.asarray(sample["image"][0]), np.asarray(sample["label"][0])
        k = int(np.argmax((label > 0).sum(axis=(0, 1))))
        ax.imshow(image[:, :, k].T, cmap="gray", vmin=0, vmax=1)  # rows: superior -> inferior; columns: AP
        present = []
        for index, name in enumerate(FOREGROUND, start=1):
            if (label[:, :, k] == index).any():
                ax.contour((label[:, :, k] == index).T, [0.5], colors=STRUCTURE_COLOURS[name], linewidths=1.2)
                present.append(name)
        ax.set_title(", ".join(present) or "background only", fontsize=8)
    fig.suptitle("training patches as the network gets them (one sagittal slice each; anterior left, superior up)",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, save)
    return fig
