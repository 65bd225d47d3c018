"""The data layer on good data, real samples, and every kind of bad input."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.core.errors import DataError
from helpers.data.inspection import flagged, inspect_dataset
from helpers.data.spider import (
    canonical_array,
    orientation,
    parse_stem,
    read_image,
    read_mask,
    read_series,
    require_usable,
    scan_dataset,
    tail_percentiles,
    to_canonical,
    value_problems,
)

from .conftest import kit, tree_digest


def test_parse_stem():
    assert parse_stem("241_t2_SPACE.mha") == (241, "t2_SPACE")
    assert parse_stem("1_t1") == (1, "t1")
    with pytest.raises(ValueError, match="not a SPIDER series name"):
        parse_stem("1_flair.mha")


def test_canonical_view_is_independent_of_stored_orientation():
    arr = np.random.default_rng(0).random((7, 9, 5)).astype(np.float32)  # LPS: (S, P, L)
    lps = sitk.GetImageFromArray(arr)
    lps.SetSpacing((3.3, 0.6, 0.5))
    pir = sitk.DICOMOrient(lps, "PIR")
    assert orientation(lps) == "LPS" and orientation(pir) == "PIR"
    a, b = canonical_array(lps), canonical_array(pir)
    assert np.array_equal(a, b)
    assert a.shape == (5, 7, 9)  # (left-right, superior->inferior, anterior->posterior)
    assert np.array_equal(a[:, 0, :], np.flip(arr[-1].T, axis=0))  # row 0 is the most superior slab
    assert to_canonical(lps).GetSpacing() == (0.6, 0.5, 3.3)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match="no images/ folder"):
        scan_dataset(tmp_path)
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match="holds no"):
        scan_dataset(tmp_path)


def _break(root):
    """Every bad input of the foundation issue, in one dataset."""
    images, masks = root / "images", root / "masks"
    stems = sorted(p.stem for p in images.glob("*.mha"))
    (masks / f"{stems[0]}.mha").unlink()  # image without mask
    shutil.move(images / f"{stems[1]}.mha", root / "moved.mha")  # mask without image
    data = (images / f"{stems[2]}.mha").read_bytes()
    (images / f"{stems[2]}.mha").write_bytes(data[: len(data) // 2])  # truncated
    (images / f"{stems[3]}.mha").write_bytes(b"")  # empty
    mask = sitk.ReadImage(str(masks / f"{stems[4]}.mha"))
    sitk.WriteImage(mask[:, :, :-2], str(masks / f"{stems[4]}.mha"))  # other grid
    mask = sitk.ReadImage(str(masks / f"{stems[5]}.mha"))
    mask[0, 0, 0] = 77
    sitk.WriteImage(mask, str(masks / f"{stems[5]}.mha"))  # unknown label
    flat = sitk.Image(20, 20, sitk.sitkFloat32)
    sitk.WriteImage(flat, str(images / "900_t1.mha"))  # 2D image
    sitk.WriteImage(sitk.Image(20, 20, sitk.sitkInt16), str(masks / "900_t1.mha"))
    (images / "notes.txt").write_text("stray")  # stray file
    return stems


def test_bad_inputs_are_flagged_by_name_and_nothing_changes(dataset_copy):
    stems = _break(dataset_copy)
    before = tree_digest(dataset_copy)
    table = inspect_dataset(dataset_copy)
    reasons = dict(zip(flagged(table)["series"], flagged(table)["flags"]))
    assert "has no mask" in reasons[stems[0]]
    assert any("has no image" in r and stems[1] in r for r in reasons.values())
    assert "cannot be read" in reasons[stems[2]] and f"{stems[2]}.mha" in reasons[stems[2]]
    assert "empty" in reasons[stems[3]]
    assert "another grid" in reasons[stems[4]]
    assert "unknown label values [77]" in reasons[stems[5]]
    assert "2D image" in reasons["900_t1"]
    assert "not a .mha file" in reasons["notes.txt"]
    good = set(table["series"]) - set(reasons)
    assert len(good) >= 4, "the run goes on with the good series"
    assert tree_digest(dataset_copy) == before


def test_read_errors_name_the_file(dataset_copy):
    stems = _break(dataset_copy)
    with pytest.raises(DataError) as err:
        read_image(dataset_copy / "images" / f"{stems[2]}.mha")
    assert f"{stems[2]}.mha" in str(err.value)
    with pytest.raises(DataError, match="another grid"):
        image = read_image(dataset_copy / "images" / f"{stems[4]}.mha")
        read_mask(dataset_copy / "masks" / f"{stems[4]}.mha", image)


def test_cli_reports_without_traceback(dataset_copy, tmp_path):
    _break(dataset_copy)
    run = subprocess.run([sys.executable, "-m", "helpers", "inspect", str(dataset_copy), "--csv",  # a process
                          str(tmp_path / "t.csv")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "FLAGGED" in run.stdout and "Traceback" not in run.stdout + run.stderr
    assert (tmp_path / "t.csv").read_text().count("\n") > 5
    run = kit("inspect", tmp_path / "missing")
    assert run.returncode == 2 and "does not exist" in run.stderr and "Traceback" not in run.stderr


def test_real_samples_read_and_inspect(real_samples):
    before = tree_digest(real_samples)
    scan = scan_dataset(real_samples)
    assert len(scan.complete) == 4 and not scan.problems
    assert scan.overview["209_t2_SPACE"]["subset"] == "validation"
    for s in scan.complete:
        image, mask = read_series(s)
        assert orientation(image) == "PIR"
        m = canonical_array(mask)
        rows = {v: np.mean(np.nonzero(m == v)[1]) for v in (1, 2)}
        assert rows[2] < rows[1], "vertebra 2 lies above vertebra 1 in the canonical view"
    table = inspect_dataset(real_samples)
    assert set(table["convention"]) == {"8-bit 0..255"}
    assert flagged(table).empty
    assert tree_digest(real_samples) == before


def _volume(arr) -> sitk.Image:
    image = sitk.GetImageFromArray(np.asarray(arr, np.float32))
    image.SetSpacing((0.6, 0.6, 3.3))
    return image


def test_value_policy_on_each_kind_of_bad_image(tmp_path):
    rng = np.random.default_rng(0)
    good = rng.normal(500, 100, (8, 30, 30))
    assert value_problems(_volume(good)) == []
    assert value_problems(sitk.Cast(_volume(good), sitk.sitkInt16)) == []
    nan, inf = good.copy(), good.copy()
    nan[:2] = np.nan
    inf[0, 0, :3] = [np.inf, -np.inf, np.inf]
    speckle = np.zeros_like(good)
    speckle.flat[::500] = 900.0
    cases = {"holds 1800 NaN voxels (25.0 % of the volume)": nan,
             "holds 3 infinite voxels": inf,
             "constant image (every voxel is 7)": np.full_like(good, 7.0),
             "no intensity structure: 99.8 % of the voxels hold 0": speckle,
             "a single slice along one axis (size 30 x 30 x 1)": good[:1],
             "a single slice along one axis (size 1 x 30 x 8)": good[:, :, :1]}
    for expected, arr in cases.items():
        problems = value_problems(_volume(arr))
        assert any(expected in p for p in problems), (expected, problems)
    all_nan = value_problems(_volume(np.full_like(good, np.nan)))
    assert all_nan == ["holds 7200 NaN voxels (100.0 % of the volume)"]
    with pytest.raises(DataError) as err:
        require_usable(_volume(nan), tmp_path / "images" / "1_t1.mha")
    assert "1_t1.mha: holds 1800 NaN voxels" in str(err.value) and "not used" in str(err.value)


def test_bad_values_are_flagged_not_for_training_and_nothing_changes(bad_values_copy):
    root, expected = bad_values_copy
    before = tree_digest(root)
    table = inspect_dataset(root)
    reasons = dict(zip(flagged(table)["series"], flagged(table)["flags"]))
    training = dict(zip(table["series"], table["training"]))
    for stem, what in expected.items():
        assert what in reasons[stem] and "not used for training" in reasons[stem], (stem, reasons.get(stem))
        assert not training[stem]
    good = [stem for stem, use in training.items() if use]
    assert len(good) == len(table) - len(expected) and not set(good) & set(reasons)
    nan_row = table.set_index("series").loc[next(iter(expected))]
    assert np.isfinite([nan_row["min"], nan_row["max"], nan_row["p99"]]).all()  # statistics of the finite voxels
    assert tree_digest(root) == before


def test_cli_inspect_names_bad_values(bad_values_copy):
    root, expected = bad_values_copy
    run = kit("inspect", root)
    assert run.returncode == 0, run.stderr
    assert f"{len(expected)} not used for training" in run.stdout and "Traceback" not in run.stdout + run.stderr
    for stem, what in expected.items():
        assert any(line.startswith(f"  FLAGGED {stem}: ") and what in line for line in run.stdout.splitlines())


def test_structure_mask_keeps_the_grid():
    from helpers.data.spider import structure_mask

    arr = np.array([[[0, 1, 25, 100, 201, 225, 101]]], np.int16)
    mask = sitk.GetImageFromArray(arr)
    mask.SetSpacing((0.5, 0.6, 3.3))
    mask.SetOrigin((1.0, 2.0, 3.0))
    out = structure_mask(mask)
    assert sitk.GetArrayFromImage(out).tolist() == [[[0, 1, 1, 3, 2, 2, 1]]]
    assert out.GetSpacing() == mask.GetSpacing() and out.GetOrigin() == mask.GetOrigin()


def test_tail_percentiles_are_numpys():
    """value_problems' fast percentiles: np.percentile's numbers, on images a strided sample misjudges too."""
    rng = np.random.default_rng(1)
    speckle = np.zeros((40, 100, 1000), np.float32)
    speckle.flat[::997] = 900.0  # a stride that the sample can fall in step with
    speckle.flat[::4003] = -5.0
    cases = [rng.normal(500, 100, (8, 30, 30)), rng.integers(-1000, 3000, (20, 100, 90)).astype(np.int16),
             rng.integers(0, 256, (30, 200, 200)).astype(np.uint8), np.zeros((9, 9, 9)), rng.random(2), speckle]
    for q in ((0.5, 99.5), (1, 99), (0, 100), (10, 90), (99.5, 0.5)):
        for values in cases:
            expected = np.percentile(values, q)
            assert np.allclose(tail_percentiles(values, q), expected, rtol=1e-12, atol=1e-9), (q, values.dtype)
