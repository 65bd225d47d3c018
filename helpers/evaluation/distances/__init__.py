"""Surface distances between label maps, for the challenge's ASD and the kit's HD95 / ASD (notebook 06).

Why an engine: the challenge measures, for every reference instance, the distance from each of its border voxels
to the nearest border voxel of the predicted label it matched, and back, in mm. The plain way, an exact distance
transform of the whole image per label (`plain.py`), costs a whole-image pass for each of the ~20 labels of each
series, twice; on a course evaluation that is minutes of a student's wait. `surface.py` gives the same numbers
(exact Euclidean distances, checked against the plain method in tests/test_scoring.py) by searching a few voxels
around most points and measuring only the few far ones on a cropped map, a band of rows (`envelope.py`, compiled
with numba) or a KD-tree.

The interface is the names below; nothing else of `surface` is needed outside this folder. To fall back to the
plain method (to check a number, or where numba does not run), set `SPIDER_KIT_DISTANCES=plain` before running:
the same code then measures every distance with `plain.distances_to`.
"""

from helpers.evaluation.distances.surface import (
    ENGINE_ENV,
    BorderSet,
    JobPool,
    Work,
    directed_distances,
    distances_to,
    engine,
    run_work,
    symmetric_distances,
)

__all__ = ["ENGINE_ENV", "BorderSet", "JobPool", "Work", "directed_distances", "distances_to", "engine", "run_work",
           "symmetric_distances"]
