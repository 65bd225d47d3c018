import csv

import numpy as np
import SimpleITK as sitk

from helpers.data.axes import orientation
from helpers.data.labels import is_known
from helpers.data.spider import canonical_array, read_series, scan_dataset
from helpers.data.synth import write_dataset

from .conftest import tree_digest


def _series(root):
    return {s.stem: (s, *read_series(s)) for s in scan_dataset(root).complete}


def test_layout_formats_and_label_values(small_dataset):
    series = _series(small_dataset)
    assert len(series) >= 10
    for stem, (_s, image, mask) in series.items():
        assert image.GetPixelID() == sitk.sitkFloat32 and mask.GetPixelID() == sitk.sitkInt16
        values = np.unique(sitk.GetArrayViewFromImage(mask))
        assert all(is_known(int(v)) for v in values), stem
        assert 100 in values, f"{stem}: canal missing"
        vertebrae = [v for v in values if 1 <= v <= 25]
        assert 3 <= len(vertebrae) <= 9 and vertebrae == list(range(1, len(vertebrae) + 1)), stem


def test_bottom_up_numbering_disc_below_its_vertebra(small_dataset):
    for stem, (_, _, mask) in _series(small_dataset).items():
        arr = canonical_array(mask)  # rows run superior -> inferior
        row = {int(v): np.mean(np.nonzero(arr == v)[1]) for v in np.unique(arr) if v and v != 100}
        vertebrae = sorted(v for v in row if v < 100)
        for k in vertebrae[1:]:
            assert row[k] < row[k - 1], f"{stem}: vertebra {k} should lie above vertebra {k - 1}"
        for k in vertebrae:
            if 200 + k in row:
                assert row[k] < row[200 + k], f"{stem}: disc {200 + k} should lie below vertebra {k}"
                if k > 1:
                    assert row[200 + k] < row[k - 1], f"{stem}: disc {200 + k} should lie above vertebra {k - 1}"


def test_orientations_conventions_and_subsets(small_dataset):
    series = _series(small_dataset)
    orients = {stem: orientation(img) for stem, (_, img, _) in series.items()}
    assert {"LPS", "PIR"} <= set(orients.values())
    assert all(orients[s] == "PIR" for s in orients if s.endswith("SPACE"))
    for stem, (_, img, _) in series.items():
        arr = sitk.GetArrayViewFromImage(img)
        if orients[stem] == "LPS":
            assert arr.min() >= -1000 and arr.max() <= 3096 and arr.min() < -900, stem
        else:
            assert arr.min() >= 0 and 300 < arr.max() < 2500, stem
    rows = list(csv.DictReader(open(small_dataset / "overview.csv")))
    subset_of = {}
    for row in rows:
        pid = int(row["new_file_name"].split("_")[0])
        assert subset_of.setdefault(pid, row["subset"]) == row["subset"], "a patient in two subsets"
    assert set(subset_of.values()) == {"training", "validation"}


def test_contrasts_look_like_t1_and_t2(small_dataset):
    series = _series(small_dataset)
    for stem, (s, img, mask) in series.items():
        a, m = canonical_array(img), canonical_array(mask)
        bone, csf = np.median(a[(m >= 1) & (m <= 25)]), np.median(a[m == 100])
        disc, disc_bright = np.median(a[m > 200]), np.percentile(a[m > 200], 90)  # nucleus of healthy discs
        if s.sequence == "t1":
            assert disc < bone and csf < bone, stem
        else:
            assert disc_bright > bone and csf > bone, stem


def test_patient_series_share_anatomy_and_sizes_differ(small_dataset):
    series = _series(small_dataset)
    pairs = [(a, b) for a in series for b in series if a.endswith("_t1") and b == a[:-2] + "t2"]
    assert pairs
    for a, b in pairs:
        assert np.array_equal(sitk.GetArrayViewFromImage(series[a][2]), sitk.GetArrayViewFromImage(series[b][2]))


def test_same_seed_same_bytes(tmp_path):
    one = write_dataset(tmp_path / "a", cases=2, seed=7, scale=0.15, progress=False)
    two = write_dataset(tmp_path / "b", cases=2, seed=7, scale=0.15, progress=False)
    three = write_dataset(tmp_path / "c", cases=2, seed=8, scale=0.15, progress=False)
    assert tree_digest(one) == tree_digest(two)
    assert tree_digest(one) != tree_digest(three)


def test_realistic_scale_matches_spider_grids(tmp_path):
    root = write_dataset(tmp_path / "r", cases=1, seed=1, scale=1.0, progress=False)
    for s in scan_dataset(root).complete:
        img = read_series(s)[0]
        spacing = sorted(img.GetSpacing())
        assert 0.25 <= spacing[0] <= 1.2 and spacing[-1] >= 0.9, (s.stem, spacing)
        assert max(img.GetSize()) >= 216, (s.stem, img.GetSize())


def test_synth_command_writes_the_same_bytes(tmp_path):
    """`python -m helpers synth` (a process: the real entry point) writes what write_dataset writes, and says so."""
    import subprocess
    import sys

    made = subprocess.run([sys.executable, "-m", "helpers", "synth", "--out", str(tmp_path / "cli"), "--cases", "2",
                           "--seed", "7", "--scale", "0.15"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    assert made.stdout.splitlines()[-1] == f"wrote 2 synthetic patients to {tmp_path / 'cli'}"
    direct = write_dataset(tmp_path / "direct", cases=2, seed=7, scale=0.15, progress=False)
    assert tree_digest(tmp_path / "cli") == tree_digest(direct)


def test_ensure_synthetic_makes_keeps_remakes_and_refuses(tmp_path):
    """Notebook 00's synthetic data: made once, kept while the settings stay, made again (its own files only) when
    they change; a folder it did not make is refused, never overwritten."""
    import json

    import pytest

    from helpers.core.errors import DataError
    from helpers.data.synth import MARKER, ensure_synthetic

    out = tmp_path / "synthetic"
    assert ensure_synthetic(out, cases=1, seed=5, scale=0.15) is True
    made = tree_digest(out)
    assert made == tree_digest(write_dataset(tmp_path / "direct", cases=1, seed=5, scale=0.15, progress=False))
    (out / "notes.txt").write_text("mine")  # a file of the student's in the folder
    assert ensure_synthetic(out, cases=1, seed=5, scale=0.15) is False  # up to date: nothing written
    assert {name: h for name, h in tree_digest(out).items() if name != "notes.txt"} == made
    assert ensure_synthetic(out, cases=2, seed=5, scale=0.15) is True
    assert json.loads((out / MARKER).read_text())["settings"]["cases"] == 2
    assert (out / "notes.txt").read_text() == "mine"  # only its own files were replaced
    other = tmp_path / "other"
    other.mkdir()
    (other / "scan.mha").write_text("not synthetic")
    with pytest.raises(DataError, match="was not made by the synthetic generator"):
        ensure_synthetic(other, cases=1, seed=5, scale=0.15)
    assert (other / "scan.mha").read_text() == "not synthetic"
