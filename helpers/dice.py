"""Dice, defined once: from the joint histogram of reference and predicted labels (one pass over the voxels).

Used by notebook 06 through helpers.evaluate (per structure), helpers.challenge (per instance) and
helpers.seed (the seed's number), which share one count of the SPIDER values.
"""

from __future__ import annotations

import numpy as np


def joint_counts(reference: np.ndarray, prediction: np.ndarray, labels: int) -> np.ndarray:
    """(labels x labels) voxel counts: [r, p] = voxels labelled r in the reference and p in the prediction."""
    code = reference.astype(np.int64) * labels + prediction
    return np.bincount(code.ravel(), minlength=labels * labels).reshape(labels, labels)


def dice(joint: np.ndarray, reference_label: int, predicted_label: int | None = None) -> float:
    """Dice of reference label r against predicted label p (default: the same value); NaN when both are empty."""
    p = reference_label if predicted_label is None else predicted_label
    total = joint[reference_label].sum() + joint[:, p].sum()
    return float(2 * joint[reference_label, p] / total) if total else float("nan")


def grouped(joint: np.ndarray, group_of: np.ndarray) -> np.ndarray:
    """Joint counts of groups of labels (SPIDER values -> structures) from the joint counts of the labels;
    `group_of[v]` is the group of label v."""
    member = np.zeros((len(group_of), int(group_of.max()) + 1), np.int64)
    member[np.arange(len(group_of)), group_of] = 1
    return member.T @ joint @ member
