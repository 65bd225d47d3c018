"""Resampling: geometry round trip, label values, intensity ranges, idempotence, bad input."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.core.errors import KitError
from helpers.data.axes import CANONICAL_ORIENTATION, canonical_values, numpy_order, to_canonical
from helpers.data.resample import (
    ResampleSettings,
    choose_spacing,
    header_spacing,
    read_manifest,
    resample_dataset,
    to_original_grid,
)
from helpers.data.spider import read_series, scan_dataset

from .conftest import break_values, kit, tree_digest


@pytest.fixture(scope="module")
def prepared(small_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "prep"
    result = resample_dataset(small_dataset, out, workers=2, progress=False)
    return out, result


def test_spacing_rule_and_header_spacing(small_dataset):
    # (AP, SI, LR): the slice thickness (LR, last) is never floored, the in-plane axes are
    assert choose_spacing([(0.59, 0.59, 3.3), (0.6, 0.6, 3.3), (0.47, 0.47, 0.9)]) == (1.0, 1.0, 3.3)
    assert choose_spacing([(2.4, 2.4, 6), (2.5, 2.5, 7)]) == (2.45, 2.45, 6.5)
    assert choose_spacing([(0.59, 0.59, 3.3), (0.6, 2.0, 3.3)], min_inplane_mm=1.6) == (1.6, 1.6, 3.3)
    for s in scan_dataset(small_dataset).complete:
        image = read_series(s)[0]
        spacing = header_spacing(s.image)
        assert spacing == pytest.approx(to_canonical(image).GetSpacing())  # the canonical image's index order


def test_outputs_manifest_and_round_trip(small_dataset, prepared):
    out, result = prepared
    assert not result.failed and len(result.done) == len(scan_dataset(small_dataset).complete)
    manifest = read_manifest(out)
    spacings = {tuple(np.round(r["resampled"]["spacing"], 3)) for r in manifest["series"]}
    assert len(spacings) == 1, "spacing mode puts every series on one spacing"
    series = {s.stem: s for s in scan_dataset(small_dataset).complete}
    for record in manifest["series"]:
        assert record["resampled"]["orientation"] == "PIR"
        label = sitk.ReadImage(str(out / record["label"]))
        values = set(np.unique(sitk.GetArrayViewFromImage(label)).tolist())
        assert values <= {0, 1, 2, 3} and {1, 3} <= values
        image = sitk.GetArrayFromImage(sitk.ReadImage(str(out / record["image"])))
        assert image.min() >= 0 and image.max() <= 1 and np.percentile(image, 99) > 0.5
        # back onto the original grid: same geometry, and structures within a voxel of where they were
        _, mask = read_series(series[record["series"]])
        back = to_original_grid(label, record)
        assert np.array_equal(sitk.GetArrayFromImage(to_original_grid(label, mask)), sitk.GetArrayFromImage(back))
        assert back.GetSize() == mask.GetSize() and np.allclose(back.GetOrigin(), mask.GetOrigin())
        assert np.allclose(back.GetDirection(), mask.GetDirection())
        ref, got = sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(back)
        voxel = np.array(numpy_order(back.GetSpacing()))
        coarsest = max(record["resampled"]["spacing"])
        for structure, values in ((1, range(1, 26)), (2, range(201, 226)), (3, [100])):
            a, b = np.isin(ref, list(values)), got == structure
            shift_mm = np.linalg.norm((np.argwhere(a).mean(0) - np.argwhere(b).mean(0)) * voxel)
            assert shift_mm <= coarsest, (record["series"], structure, shift_mm)  # within one resampled voxel
            assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.7
        o, r = record["original"], record["resampled"]
        if np.allclose(canonical_values(o["spacing"], o["orientation"]),
                       canonical_values(r["spacing"], CANONICAL_ORIENTATION)):
            assert np.array_equal(np.isin(ref, list(range(1, 26))), got == 1), "same grid: exact round trip"


def test_manifest_csv_lists_every_series(prepared):
    import csv

    out, _ = prepared
    with open(out / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    records = read_manifest(out)["series"]
    assert [r["series"] for r in rows] == [r["series"] for r in records]
    for row, record in zip(rows, records):
        assert row["patient"] == str(record["patient"]) and row["orientation"] == record["original"]["orientation"]
        assert row["size"] == "x".join(map(str, record["resampled"]["size"]))


def test_instances_keep_spider_values(small_dataset, tmp_path):
    out = tmp_path / "inst"
    resample_dataset(small_dataset, out, ResampleSettings(labels="instances"), progress=False)
    for record in read_manifest(out)["series"]:
        values = set(record["labels_present"])
        assert 100 in values and values <= {0, 100, *range(1, 26), *range(201, 226)}


def test_the_profiles_inplane_floor_sets_the_grid(small_dataset, tmp_path):
    from helpers.core.profiles import PROFILES

    assert PROFILES["smoke"].inplane_mm > PROFILES["gpu"].inplane_mm == PROFILES["full"].inplane_mm == 1.0
    floor = 4.0  # coarser than this small data's 2.95 mm pixels, so the floor decides
    result = resample_dataset(small_dataset, tmp_path / "prep", ResampleSettings(min_inplane_mm=floor), progress=False)
    manifest = read_manifest(tmp_path / "prep")
    assert tuple(result.spacing[:2]) == (floor, floor) and manifest["settings"]["min_inplane_mm"] == floor
    for record in manifest["series"]:
        grid = canonical_values(record["resampled"]["spacing"], CANONICAL_ORIENTATION)
        assert grid[:2] == pytest.approx((floor, floor))  # (AP, SI) in-plane; LR is the slice thickness


def test_fixed_size_mode_is_the_predecessors(small_dataset, tmp_path):
    out = tmp_path / "fixed"
    resample_dataset(small_dataset, out, ResampleSettings(mode="fixed_size"), progress=False)
    records = read_manifest(out)["series"]
    assert all(tuple(r["resampled"]["size"]) == (128, 128, 32) for r in records)
    assert len({tuple(np.round(r["resampled"]["spacing"], 2)) for r in records}) > 1


def test_rerun_does_no_work_and_a_changed_setting_redoes(small_dataset, prepared):
    out, first = prepared
    again = resample_dataset(small_dataset, out, progress=False)
    assert not again.done and len(again.skipped_up_to_date) == len(first.done)
    assert again.seconds * 5 < first.seconds
    stale = out / "images" / f"{first.done[0]}.nii.gz"  # an image as kit versions before 5 wrote it
    stale.write_bytes(b"old")
    changed = resample_dataset(small_dataset, out, ResampleSettings(percentiles=(1, 99)), progress=False)
    assert len(changed.done) == len(first.done)
    assert not stale.exists() and (out / "images" / f"{first.done[0]}.nii").is_file()


def test_both_conventions_and_8bit_end_in_one_range(small_dataset, real_samples, tmp_path):
    out = tmp_path / "real"
    before = tree_digest(real_samples)
    result = resample_dataset(real_samples, out, progress=False)
    assert len(result.done) == 4 and not result.failed
    assert tree_digest(real_samples) == before
    lows, highs = [], []
    for root in (out,):
        for r in read_manifest(root)["series"]:
            a = sitk.GetArrayFromImage(sitk.ReadImage(str(root / r["image"])))
            lows.append(a.min())
            highs.append(np.percentile(a, 99.9))
    assert min(lows) >= 0 and max(highs) <= 1 and min(highs) > 0.9


def test_bad_input(dataset_copy, tmp_path):
    with pytest.raises(KitError, match="inside the raw data folder"):
        resample_dataset(dataset_copy, dataset_copy / "prep", progress=False)
    stems = sorted(p.stem for p in (dataset_copy / "masks").glob("*.mha"))
    mask = sitk.ReadImage(str(dataset_copy / "masks" / f"{stems[0]}.mha"))
    sitk.WriteImage(mask[:, :, 1:], str(dataset_copy / "masks" / f"{stems[0]}.mha"))  # another grid
    empty = sitk.ReadImage(str(dataset_copy / "masks" / f"{stems[1]}.mha")) * 0
    sitk.WriteImage(empty, str(dataset_copy / "masks" / f"{stems[1]}.mha"))
    before = tree_digest(dataset_copy)
    result = resample_dataset(dataset_copy, tmp_path / "prep", progress=False)
    assert tree_digest(dataset_copy) == before
    text = "\n".join(result.failed)
    assert f"{stems[0]}.mha: mask is on another grid" in text and f"{stems[1]}.mha: empty mask" in text
    assert len(result.done) == len(stems) - 2


def test_bad_values_are_skipped_named_and_never_written(dataset_copy, tmp_path):
    """Series that turn bad after a first resampling: skipped with file and reason, dropped from the
    manifest, listed by the datalist; every training volume written is finite and not constant."""
    from helpers.data.datalist import write_datalist

    out = tmp_path / "prep"
    first = resample_dataset(dataset_copy, out, progress=False)
    expected = break_values(dataset_copy)
    before = tree_digest(dataset_copy)
    for _ in range(2):  # a rerun names them again
        result = resample_dataset(dataset_copy, out, progress=False)
        assert tree_digest(dataset_copy) == before
        assert len(result.failed) == len(expected)
        for stem, what in expected.items():
            line = next(f for f in result.failed if f"{stem}.mha:" in f)
            assert what in line and str(dataset_copy / "images" / f"{stem}.mha") in line, line
            assert f"  SKIPPED {line}" in str(result)
            assert not (out / "records" / f"{stem}.json").exists()
        assert len(result.done) + len(result.skipped_up_to_date) == len(first.done) - len(expected)
    manifest = read_manifest(out)
    assert {r["series"] for r in manifest["series"]}.isdisjoint(expected)
    assert manifest["skipped"] == result.failed
    for record in manifest["series"]:
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(out / record["image"])))
        assert np.isfinite(a).all() and a.min() < a.max(), record["series"]
    datalist = write_datalist(out, tmp_path / "datalist.json")
    listed = {i["series"] for part in ("training", "validation", "test") for i in datalist[part]}
    assert listed.isdisjoint(expected) and len(listed) == len(manifest["series"])
    assert datalist["skipped"] == result.failed
    run = kit("datalist", out, "--out", tmp_path / "d.json")
    assert run.returncode == 0, run.stderr
    assert [line for line in run.stdout.splitlines() if line.startswith("  NOT USED ")] == \
        [f"  NOT USED {reason}" for reason in result.failed]


def test_interrupted_write_leaves_nothing_trusted(small_dataset, tmp_path, monkeypatch):
    """A failure half-way through a series leaves no record, so the rerun redoes that series."""
    import helpers.data.resample as rs

    out = tmp_path / "prep"
    real_write = rs.write_image_atomic
    calls = {"n": 0}

    def failing_write(image, path):
        calls["n"] += 1
        if calls["n"] == 4:  # second series, its label file
            raise OSError("disk full")
        return real_write(image, path)

    monkeypatch.setattr(rs, "write_image_atomic", failing_write)
    with pytest.raises(OSError):
        resample_dataset(small_dataset, out, progress=False)
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".tmp-")]
    assert not leftovers
    assert len(list((out / "records").glob("*.json"))) == 1
    monkeypatch.setattr(rs, "write_image_atomic", real_write)
    result = resample_dataset(small_dataset, out, progress=False)
    assert len(result.skipped_up_to_date) == 1 and len(result.done) == len(scan_dataset(small_dataset).complete) - 1


def test_source_change_redoes_that_series(dataset_copy, tmp_path):
    out = tmp_path / "prep"
    resample_dataset(dataset_copy, out, progress=False)
    image = next((dataset_copy / "images").glob("*.mha"))
    os.utime(image, (image.stat().st_atime, image.stat().st_mtime + 10))
    result = resample_dataset(dataset_copy, out, progress=False)
    assert result.done == [image.stem]
    assert json.loads((out / "records" / f"{image.stem}.json").read_text())["series"] == image.stem


def test_resample_labels_keeps_values_and_an_unchanged_grid():
    from helpers.data.resample import resample_labels

    arr = np.zeros((6, 20, 20), np.int16)
    arr[2:4, 3:9, 4:16] = 3
    arr[1:5, 10:12, 5:15] = 201
    arr[:, 14:18, 8:12] = 100
    mask = sitk.GetImageFromArray(arr)
    mask.SetSpacing((0.5, 0.5, 3.0))
    same = resample_labels(mask, mask.GetSize(), mask.GetSpacing(), mask.GetOrigin())
    assert same.GetPixelID() == mask.GetPixelID() and np.array_equal(sitk.GetArrayFromImage(same), arr)
    coarse = resample_labels(mask, [10, 10, 6], [1.0, 1.0, 3.0], mask.GetOrigin())
    assert set(np.unique(sitk.GetArrayFromImage(coarse)).tolist()) == {0, 3, 100, 201}
    # only the box around the labels is interpolated: the same as sitkLabelLinear on the whole mask
    grids = (([7, 9, 5], [1.3, 1.1, 3.7], (0.2, -0.1, 0.4)), ([40, 40, 6], [0.25, 0.25, 3.0], (0.0, 0.0, 0.0)))
    for size, spacing, origin in grids:
        whole = sitk.Resample(mask, size, sitk.Transform(), sitk.sitkLabelLinear, origin, spacing, mask.GetDirection(),
                              0, mask.GetPixelID())
        got = resample_labels(mask, size, spacing, origin)
        assert np.array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(whole))
    empty = resample_labels(mask * 0, [10, 10, 6], [1.0, 1.0, 3.0], mask.GetOrigin())
    assert not sitk.GetArrayViewFromImage(empty).any()


def test_anti_alias_is_sitk_discrete_gaussian():
    """resample_image's Gaussian (scipy, along the coarsened axes) is the filter of sitk.DiscreteGaussian."""
    from scipy import ndimage

    from helpers.data.resample import anti_alias

    arr = ndimage.uniform_filter(np.random.default_rng(0).normal(300, 80, (12, 60, 50)), 3).astype(np.float32)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.47, 0.59, 0.9))
    for spacing in ((1.0, 1.0, 3.3), (0.47, 1.0, 0.5), (2.0, 0.3, 0.9), (6.0, 6.0, 6.0)):
        variance = np.maximum(np.array(spacing) ** 2 - np.array(image.GetSpacing()) ** 2, 0) / 2.355 ** 2
        reference = sitk.GetArrayFromImage(sitk.DiscreteGaussian(image, variance.tolist(), 32, 0.01, True))
        got = sitk.GetArrayFromImage(anti_alias(image, spacing))
        assert np.abs(got - reference).max() < 1e-5 * np.ptp(reference), spacing
    assert anti_alias(image, (0.4, 0.5, 0.9)) is image  # nothing gets coarser: nothing to filter


def test_preprocess_is_what_the_training_data_holds(small_dataset, prepared):
    """Inference (predict.Predictor) and training data share one path: resample.preprocess."""
    from helpers.data.resample import _target_grid, preprocess, resample_image

    out, _ = prepared
    manifest = read_manifest(out)
    settings = ResampleSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in manifest["settings"].items()})
    series = {s.stem: s for s in scan_dataset(small_dataset).complete}
    for record in manifest["series"][:3]:
        grid, norm = preprocess(read_series(series[record["series"]])[0], settings)
        written = sitk.ReadImage(str(out / record["image"]))
        assert grid.GetSize() == written.GetSize() and np.allclose(grid.GetSpacing(), written.GetSpacing())
        assert np.allclose(sitk.GetArrayFromImage(grid), sitk.GetArrayFromImage(written), atol=1e-6)
        assert norm == record["normalisation"]
        # the normalisation percentiles are those of the resampled image, the one the network sees
        raw = resample_image(read_series(series[record["series"]])[0], *_target_grid(
            read_series(series[record["series"]])[0], settings, settings.spacing))
        expected = np.percentile(sitk.GetArrayViewFromImage(raw), settings.percentiles)
        assert np.allclose([norm["value_low"], norm["value_high"]], expected)
