"""Levels by name: SPIDER numbers vertebrae bottom-up from the lowest fully visible one (1) and the disc below
vertebra k as 200 + k; anatomy names them L5, L4, ..., T12 and the discs L5/S1, L4/L5, ... The two meet only when
the lowest vertebra sits on the sacrum: when a disc lies below the lowest vertebra (SPIDER's 201, between vertebra 1
and the sacrum), vertebra 1 is L5. Without it (the sacrum out of view, or that disc missed) the kit does not guess.

Used by notebook 07 (and the DICOM SEG's segment labels).
"""

from __future__ import annotations

from collections.abc import Iterable

from .labels import is_known, structure_of

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
    names = {v: vertebra_level(v) for v in vertebrae} | {d: disc_level(d - 200) for d in discs}
    return names, (f"a disc lies below the lowest vertebra, on the sacrum: vertebra 1 is L5 ({CAVEAT})")
