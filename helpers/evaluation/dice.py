"""Dice, defined once: from the joint histogram of reference and predicted labels (one pass over the voxels).

Used by notebook 06 through evaluate.py (per structure), challenge.py (per instance) and `predecessor_score` below
(the predecessor's number, background included), which share one count of the SPIDER values.
"""

from __future__ import annotations

import numpy as np

from helpers.data.predecessor import PREDECESSOR_MAX_LEVEL, instance_classes


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


def predecessor_score(reference_spider: np.ndarray, prediction_spider: np.ndarray,
                     max_level: int = PREDECESSOR_MAX_LEVEL, joint: np.ndarray | None = None) -> float:
    """The predecessor's number: one mean Dice over its 20 instance classes, background included (`joint`: the two
    arrays' `joint_counts(..., 256)`, when already counted)."""
    if joint is None:
        joint = joint_counts(reference_spider, prediction_spider, 256)  # SPIDER values lie below 256
    scores = [dice(joint, value) for value in instance_classes(max_level)]
    return float(np.nanmean(scores))  # classes absent from both sides are left out
