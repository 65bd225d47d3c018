"""SPIDER's label values, the structures they belong to, and their names: the one label table. Levels by anatomical
name too: SPIDER numbers vertebrae bottom-up from the lowest fully visible one (1) and the disc below vertebra k as
200 + k; anatomy names them L5, L4, ..., T12 and the discs L5/S1, L4/L5, ... The two meet only when the lowest
vertebra sits on the sacrum: when a disc lies below the lowest vertebra (SPIDER's 201, between vertebra 1 and the
sacrum), vertebra 1 is L5. Without it (the sacrum out of view, or that disc missed) the kit does not guess
(`name_levels`).

Used by notebooks 01, 05, 06 and 07 (level names, and the DICOM SEG's segment labels), and by every helper that
reads a mask.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

VERTEBRA_LABELS = range(1, 26)  # bottom-up: 1 is the most caudal fully visible vertebra
CANAL_LABEL = 100
PARTIAL_VERTEBRA_LABELS = range(101, 126)  # reserved by the challenge, absent from the release
DISC_LABELS = range(201, 226)  # 200 + k lies directly below vertebra k

BACKGROUND, VERTEBRA, DISC, CANAL = 0, 1, 2, 3
STRUCTURES: tuple[str, ...] = ("background", "vertebra", "disc", "canal")
STRUCTURE_COLOURS: dict[str, str] = {
    "vertebra": "#e6b422",
    "disc": "#2ca02c",
    "canal": "#1f77b4",
}
FOREGROUND = STRUCTURES[1:]

# SPIDER value -> structure index, as one lookup table covering every int16 label value we accept.
_MAX_LABEL = 225
_LUT = np.full(_MAX_LABEL + 1, -1, dtype=np.int16)
_LUT[0] = BACKGROUND
_LUT[list(VERTEBRA_LABELS)] = VERTEBRA
_LUT[list(PARTIAL_VERTEBRA_LABELS)] = VERTEBRA
_LUT[CANAL_LABEL] = CANAL
_LUT[list(DISC_LABELS)] = DISC


def is_known(value: int) -> bool:
    """True when `value` is a SPIDER label value (0 included)."""
    return 0 <= value <= _MAX_LABEL and _LUT[value] >= 0


def values_present(mask: np.ndarray) -> list[int]:
    """The distinct values of a label array, sorted (a count per value for small non-negative integers: ~10x
    faster than np.unique on a whole series)."""
    mask = np.asarray(mask)
    if mask.size and np.issubdtype(mask.dtype, np.integer) and mask.min() >= 0 and mask.max() <= _MAX_LABEL:
        return np.flatnonzero(np.bincount(mask.ravel(), minlength=1)).tolist()
    return [int(v) for v in np.unique(mask)]


def unknown_labels(values) -> list[int]:
    """The values in `values` that are not SPIDER labels, sorted."""
    return sorted(int(v) for v in set(np.asarray(values).ravel().tolist()) if not is_known(int(v)))


def structure_of(value: int) -> str:
    """Structure name of one SPIDER label value."""
    if not is_known(value):
        raise ValueError(f"{value} is not a SPIDER label value")
    return STRUCTURES[_LUT[value]]


def to_structures(mask: np.ndarray) -> np.ndarray:
    """Map an array of SPIDER labels to structure indices (0 background, 1 vertebra, 2 disc, 3 canal)."""
    mask = np.asarray(mask)
    values = mask if np.issubdtype(mask.dtype, np.integer) else mask.astype(np.int64)
    inside = not values.size or (values.min() >= 0 and values.max() <= _MAX_LABEL)
    structures = _LUT[values] if inside else None  # one lookup; -1 marks a value that is not a label
    if structures is None or (structures < 0).any():
        bad = unknown_labels(np.unique(mask))
        raise ValueError(f"unknown label values {bad}; SPIDER uses 0, 1-25, 100, 101-125, 201-225")
    return structures.astype(np.uint8)


def structure_lut(size: int = 256) -> np.ndarray:
    """Structure index of every value below `size`; values that are not labels map to background (a checked
    mask never holds them)."""
    lut = np.zeros(size, np.int64)
    known = _LUT[: min(size, _MAX_LABEL + 1)]
    lut[: len(known)] = np.maximum(known, 0)
    return lut


def level_of(value: int) -> int:
    """Bottom-up level of a vertebra or disc label (vertebra 3 -> 3, disc 203 -> 3); 0 for the canal."""
    if value in VERTEBRA_LABELS:
        return value
    if value in PARTIAL_VERTEBRA_LABELS:
        return value - 100
    if value in DISC_LABELS:
        return value - 200
    return 0


def label_name(value: int) -> str:
    """Readable name of a label value: 'vertebra 3', 'disc 3 (below vertebra 3)', 'spinal canal'."""
    kind = structure_of(value)
    if kind == "background":
        return "background"
    if kind == "canal":
        return "spinal canal"
    if value in PARTIAL_VERTEBRA_LABELS:
        return f"vertebra {value - 100} (partly visible)"
    if kind == "disc":
        k = value - 200
        return f"disc {k} (below vertebra {k})" if k > 1 else "disc 1 (between vertebra 1 and sacrum)"
    return f"vertebra {value}"


# ---------------------------------------------------------------- levels by anatomical name
BOTTOM_UP = ["L5", "L4", "L3", "L2", "L1"] + [f"T{n}" for n in range(12, 0, -1)] + [f"C{n}" for n in range(7, 0, -1)]
CAVEAT = ("assuming five lumbar vertebrae: in a transitional spine (a lumbarised S1 or a sacralised L5, in about one "
          "person in ten) the names shift by one level; count from C2 on a whole-spine scan to be sure")


def vertebra_level(k: int) -> str:
    """Anatomical name of SPIDER's vertebra k when vertebra 1 is L5."""
    return BOTTOM_UP[k - 1] if 1 <= k <= len(BOTTOM_UP) else f"vertebra {k}"


def disc_level(k: int) -> str:
    """Anatomical name of SPIDER's disc 200 + k (below vertebra k) when vertebra 1 is L5."""
    return f"{vertebra_level(k)}/{'S1' if k == 1 else vertebra_level(k - 1)}"


def name_levels(values: Iterable[int]) -> tuple[dict[int, str], str]:
    """Anatomical names of the SPIDER values present ({value: 'L5'}, the canal left out) and a sentence saying why
    they can be given, or why not (then the names are empty)."""
    present = {int(v) for v in values if v and is_known(int(v))}
    vertebrae = sorted(v for v in present if structure_of(v) == "vertebra")
    discs = sorted(v for v in present if structure_of(v) == "disc")
    if not vertebrae:
        return {}, "no vertebra found: levels cannot be named"
    if 201 not in discs or 1 not in vertebrae:
        return {}, ("no disc below the lowest vertebra: the sacrum may be out of view, or the L5/S1 disc missed, so "
                    "the lowest vertebra cannot be told to be L5; levels are left unnamed (SPIDER's numbers stand)")
    top = max(vertebrae)  # the disc above it may show while the vertebra above that is cut off: not a gap
    gaps = [f"vertebra {k}" for k in range(1, max([top] + [d - 201 for d in discs]) + 1) if k not in vertebrae]
    if gaps:
        return {}, (f"the levels do not add up ({', '.join(gaps)} missing between the ones found: vertebrae merged or "
                    "missed), so they are left unnamed (SPIDER's numbers stand)")
    names = {v: vertebra_level(v) for v in vertebrae} | {d: disc_level(level_of(d)) for d in discs}
    return names, (f"a disc lies below the lowest vertebra, on the sacrum: vertebra 1 is L5 ({CAVEAT})")
