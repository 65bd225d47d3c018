"""What `evaluate` measures for one series (`score_series`) on bad predictions, against the rules written out the
slow way: whole-image erosions and distance transforms (scipy), no crops, no local search, nothing reused."""

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from helpers.data.labels import STRUCTURES, to_structures
from helpers.data.predecessor import instance_classes
from helpers.evaluation.challenge import CHALLENGE_METRICS, Instance, instance_kind, scan_metrics
from helpers.evaluation.distances import surface
from helpers.evaluation.distances.surface import BorderSet
from helpers.evaluation.evaluate import score_series
from helpers.inference.numbering import to_spider_values
from helpers.training.postprocess import cleanup
from tools.bench import bloated, fragmented

from .test_challenge import challenge_by_hand, masks

DISTANCE_REL = 1e-4  # SimpleITK's distance maps with anisotropic spacing agree with scipy's to about 1e-5


def borders_apart(a, b, sampling, connectivity):
    """(distances from b's border voxels to a's border, from a's border voxels to b's), whole image."""
    footprint = ndimage.generate_binary_structure(3, connectivity)
    border_a, border_b = a ^ ndimage.binary_erosion(a, footprint), b ^ ndimage.binary_erosion(b, footprint)
    return (ndimage.distance_transform_edt(~border_a, sampling=sampling)[border_b],
            ndimage.distance_transform_edt(~border_b, sampling=sampling)[border_a])


def cleaned_by_hand(structures, min_fraction=0.1):
    """Largest canal component; vertebra and disc components of at least min_fraction of their largest."""
    out = structures.copy()
    for value in (1, 2, 3):
        comps, n = ndimage.label(structures == value)
        sizes = [int((comps == i).sum()) for i in range(1, n + 1)]
        for i, size in enumerate(sizes, 1):
            if (value == 3 and i != 1 + int(np.argmax(sizes))) or (value != 3 and size < min_fraction * max(sizes)):
                out[comps == i] = 0
    return out


def semantic_by_hand(ref, pred, sampling):
    out = {}
    for index, name in enumerate(STRUCTURES[1:], 1):
        a, b = ref == index, pred == index
        out[f"dice_{name}"] = 2 * (a & b).sum() / (a.sum() + b.sum()) if a.any() or b.any() else math.nan
        out[f"hd95_{name}"] = out[f"assd_{name}"] = math.nan
        if a.any() and b.any():
            to_ref, to_pred = borders_apart(a, b, sampling, 1)
            out[f"hd95_{name}"] = max(np.percentile(to_ref, 95), np.percentile(to_pred, 95))
            out[f"assd_{name}"] = np.concatenate([to_ref, to_pred]).mean()
    return out


def predecessor_by_hand(ref_spider, pred_spider):
    scores = []
    for value in instance_classes():
        a, b = ref_spider == value, pred_spider == value
        scores.append(2 * (a & b).sum() / (a.sum() + b.sum()) if a.any() or b.any() else math.nan)
    return np.nanmean(scores)


def challenge_row_by_hand(ref_spider, pred_spider, spacing_xyz):
    """The challenge's figures in both variants: the challenge's spacing (x, y, z on z, y, x arrays), then the
    corrected one."""
    by_variant = {v: challenge_by_hand(ref_spider, pred_spider, s)
                  for v, s in (("challenge", spacing_xyz), ("corrected", spacing_xyz[::-1]))}
    instances = [Instance(label, instance_kind(label), match, dice, {v: by_variant[v][label][2] for v in by_variant})
                 for label, (match, dice, _) in by_variant["challenge"].items()]
    row = scan_metrics(instances, "challenge")
    row.update({f"corrected_{k}": v for k, v in scan_metrics(instances, "corrected").items()})
    return row


@pytest.mark.parametrize("kind", ["scattered", "bloated"])
def test_a_bad_prediction_scores_what_the_rules_written_out_give(small_dataset, kind):
    mask = sitk.ReadImage(str(masks(small_dataset)[0]))
    ref_spider = sitk.GetArrayFromImage(mask)
    ref = to_structures(ref_spider)
    moved, rng = np.roll(ref, (1, 1), (1, 2)), np.random.default_rng(4)
    pred = fragmented(moved, rng, 0.02) if kind == "scattered" else bloated(moved, rng, smooth=1.5)
    predicted = sitk.GetImageFromArray(pred)
    predicted.CopyInformation(mask)

    row, spider, *_ = score_series(mask, predicted)

    pred_spider = sitk.GetArrayFromImage(to_spider_values(predicted))
    assert np.array_equal(sitk.GetArrayFromImage(spider), pred_spider)
    sampling = mask.GetSpacing()[::-1]
    expected = semantic_by_hand(ref, pred, sampling)
    expected.update({f"clean_{k}": v for k, v in semantic_by_hand(ref, cleaned_by_hand(pred), sampling).items()})
    expected["predecessor_score"] = predecessor_by_hand(ref_spider, pred_spider)
    expected.update(challenge_row_by_hand(ref_spider, pred_spider, mask.GetSpacing()))
    assert set(expected) <= set(row) and len(expected) == 3 * 3 * 2 + 1 + 2 * len(CHALLENGE_METRICS)
    for name, value in expected.items():
        distance = any(part in name for part in ("hd95", "assd", "ASD"))
        assert row[name] == pytest.approx(value, rel=DISTANCE_REL if distance else 1e-12, nan_ok=True), (kind, name)


def test_the_cleaned_border_set_is_the_border_set_of_the_cleaned_map(small_dataset):
    ref = to_structures(sitk.GetArrayFromImage(sitk.ReadImage(str(masks(small_dataset)[1]))))
    pred = bloated(np.roll(ref, (1, 1), (1, 2)), np.random.default_rng(2), smooth=1.5)
    cleaned = cleanup(pred)
    assert not np.array_equal(cleaned, pred)  # something was removed
    raw = BorderSet(pred, connectivity=1)
    derived, fresh = raw.cleaned(cleaned), BorderSet(cleaned, connectivity=1)
    assert derived.points.keys() == fresh.points.keys() and np.array_equal(derived.grid, fresh.grid)
    for label, points in fresh.points.items():
        assert np.array_equal(derived.points[label], points)
        assert all(np.array_equal(a, b) for a, b in zip(derived.box[label], fresh.box[label]))
        assert np.array_equal(raw.points[label][derived.kept[label]], points)  # the raw distances, kept in order
    with pytest.raises(ValueError):
        BorderSet(pred, connectivity=3).cleaned(cleaned)


def test_distance_jobs_side_by_side_give_what_they_give_in_turn(small_dataset, monkeypatch):
    mask = sitk.ReadImage(str(masks(small_dataset)[2]))
    moved = np.roll(to_structures(sitk.GetArrayFromImage(mask)), (1, 1), (1, 2))
    predicted = sitk.GetImageFromArray(bloated(moved, np.random.default_rng(3), smooth=1.5))
    predicted.CopyInformation(mask)
    rows = []
    for threads in (1, 3):
        monkeypatch.setattr(surface, "THREADS", threads)
        rows.append(score_series(mask, predicted)[0])
    assert rows[0].keys() == rows[1].keys()
    assert all(rows[0][k] == rows[1][k] or (math.isnan(rows[0][k]) and math.isnan(rows[1][k])) for k in rows[0])


@pytest.mark.parametrize("shape", [(5, 30, 24), (30, 5, 24), (24, 30, 5)], ids=["slices", "rows", "columns"])
def test_a_map_in_its_fastest_axis_order_gives_the_distances_of_scipy(shape):
    order = surface.map_layout(shape)
    assert order[1] == int(np.argmin(shape))  # the shortest axis moves to the middle: the map is laid out anew
    rng = np.random.default_rng(4)
    goal = np.zeros(shape, bool)
    goal[tuple(rng.integers(0, n, 12) for n in shape)] = True
    points = np.argwhere(rng.random(shape) < 0.2)
    spacing = (0.9, 0.47, 3.3)
    got = surface.map_distances(np.argwhere(goal) + 2, points + 2, np.array([2, 2, 2]), shape, spacing)
    expected = ndimage.distance_transform_edt(~goal, sampling=spacing)[tuple(points.T)]
    assert got == pytest.approx(expected, rel=1e-5)  # float32 maps


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_band_of_rows_gives_the_distances_of_scipy(axis):
    """Distances by the 2D maps of the goal's rows and the envelope along `axis` equal scipy's transform of the whole
    box (float64: to rounding), for points on both sides of the band and inside it, rows without goal voxels among
    the band's, and a goal on the box's edge."""
    shape, spacing = (9, 40, 33), (0.9, 0.47, 3.3)
    rng = np.random.default_rng(axis)
    goal = np.zeros(shape, bool)
    band = [slice(None)] * 3
    band[axis] = slice(2, 7)
    goal[tuple(band)] = rng.random(goal[tuple(band)].shape) < 0.03
    edge = [slice(None)] * 3
    edge[axis], edge[(axis + 1) % 3] = 2, 0
    goal[tuple(edge)] = True
    empty = [slice(None)] * 3
    empty[axis] = 4
    goal[tuple(empty)] = False  # a row of the band with no goal voxel
    points = np.argwhere(rng.random(shape) < 0.3)
    low, high = np.array([3, 3, 3]), np.array(shape) + 2
    assert surface.band_axis(np.argwhere(goal).min(0) + 3, np.argwhere(goal).max(0) + 3, low, high) == axis
    got = surface.band_distances(np.argwhere(goal) + 3, points + 3, low, high, spacing, axis)
    expected = ndimage.distance_transform_edt(~goal, sampling=spacing)[tuple(points.T)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_a_band_of_one_voxel_gives_plain_distances():
    points = np.array([[0, 0, 0], [5, 5, 5], [2, 3, 4], [9, 0, 1]])
    goal = np.array([[2, 3, 4]])
    got = surface.band_distances(goal, points, np.zeros(3, int), np.array([9, 5, 5]), (2.0, 0.5, 1.0), 0)
    expected = np.sqrt(((points - goal) ** 2 * np.array([4.0, 0.25, 1.0])).sum(1))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_a_job_pool_returns_results_in_order_and_passes_errors_on():
    def fail():
        raise RuntimeError("job failed")

    for threads in (1, 2):
        with surface.JobPool(threads) as pool:
            results = [pool.submit(lambda i=i: i * i) for i in range(6)]
            answer = pool.work(surface.Work([lambda: 1, lambda: 2], sum))
            assert [r() for r in results] == [0, 1, 4, 9, 16, 25] and answer() == 3
        with pytest.raises(RuntimeError, match="job failed"), surface.JobPool(threads) as pool:
            pool.submit(fail)()


def test_the_plain_distance_engine_gives_the_numbers_of_the_fast_one(small_dataset, monkeypatch):
    """The fallback named in helpers/evaluation/distances/__init__.py: same figures, whole-image transforms."""
    from helpers.core.errors import KitError
    from helpers.evaluation.distances import ENGINE_ENV, engine

    mask = sitk.ReadImage(str(masks(small_dataset)[0]))
    moved = np.roll(to_structures(sitk.GetArrayFromImage(mask)), (1, 1), (1, 2))
    predicted = sitk.GetImageFromArray(bloated(moved, np.random.default_rng(5), smooth=1.5))
    predicted.CopyInformation(mask)
    rows = {}
    for name in ("fast", "plain"):
        monkeypatch.setenv(ENGINE_ENV, name)
        assert engine() == name
        rows[name] = score_series(mask, predicted)[0]
    assert rows["fast"].keys() == rows["plain"].keys()
    distances = [k for k in rows["fast"] if any(part in k for part in ("hd95", "assd", "ASD"))]
    assert distances and not all(math.isnan(rows["fast"][k]) for k in distances)
    for key, value in rows["fast"].items():
        rel = DISTANCE_REL if key in distances else 1e-12
        assert rows["plain"][key] == pytest.approx(value, rel=rel, nan_ok=True), key
    monkeypatch.setenv(ENGINE_ENV, "numba")
    with pytest.raises(KitError, match="SPIDER_KIT_DISTANCES='numba' is not a distance engine: use one of fast, plain"):
        engine()
