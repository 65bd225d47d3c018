import json

import pytest
from monai.data import load_decathlon_datalist

from helpers.data.datalist import LeakageError, build_datalist, check_no_leakage, series_split_leaks, write_datalist
from helpers.data.resample import read_manifest


@pytest.fixture
def prep(default_prep):
    """The session's small dataset resampled with the default settings (conftest.default_prep)."""
    return default_prep / "prep"


def _patients(datalist, part):
    return {i["patient"] for i in datalist[part]}


def test_official_subsets_honoured_and_monai_loads(prep, small_dataset, tmp_path):
    out = tmp_path / "lists" / "datalist.json"
    datalist = write_datalist(prep, out)
    subsets = {r["patient"]: r["subset"] for r in read_manifest(prep)["series"]}
    assert _patients(datalist, "test") == {p for p, s in subsets.items() if s == "validation"}
    assert all(subsets[p] == "training" for p in _patients(datalist, "training") | _patients(datalist, "validation"))
    assert datalist["training"] and datalist["validation"]
    for part in ("training", "validation", "test"):
        items = load_decathlon_datalist(str(out), data_list_key=part)
        assert all(__import__("os").path.isfile(i["image"]) and __import__("os").path.isfile(i["label"]) for i in items)
    raw = json.loads(out.read_text())
    assert not raw["training"][0]["image"].startswith("/")


def test_seeded_split_without_subsets_and_folds(prep):
    records = [dict(r, subset="") for r in read_manifest(prep)["series"]]
    a, b = build_datalist(records, seed=1), build_datalist(records, seed=1)
    assert a == b and a["test"] and a["training"]
    check_no_leakage(a)
    folds = build_datalist(records, seed=1, folds=3)
    check_no_leakage(folds)
    fold_of = {}
    for item in folds["training"] + folds["validation"]:
        assert fold_of.setdefault(item["patient"], item["fold"]) == item["fold"]
    assert set(fold_of.values()) == {0, 1, 2}


def test_leakage_fails_loudly(prep, tmp_path):
    datalist = write_datalist(prep, tmp_path / "d.json")
    datalist["validation"].append(dict(datalist["training"][0]))
    with pytest.raises(LeakageError, match=f"patient {datalist['training'][0]['patient']} in training and validation"):
        check_no_leakage(datalist)


def test_series_split_leaks_on_synthetic_data(prep):
    records = read_manifest(prep)["series"]
    leaked, n_val = series_split_leaks(records, validation_fraction=0.4, seed=0)
    assert 0 < leaked <= n_val


def test_the_preprocessing_record_travels_unchanged_and_a_bad_one_is_named(prep, tmp_path):
    """One record: manifest.json's settings are the datalist's preprocessing, and read back they are the settings."""
    import shutil

    from helpers.core.errors import DataError
    from helpers.data.resample import ResampleSettings

    manifest = read_manifest(prep)
    write_datalist(prep, tmp_path / "datalist.json")
    record = json.loads((tmp_path / "datalist.json").read_text())["preprocessing"]
    assert record == manifest["settings"]
    settings = ResampleSettings.from_record(record)
    assert settings.key() == manifest["settings_key"] and isinstance(settings.spacing, tuple)

    copy = tmp_path / "prep"
    shutil.copytree(prep, copy)
    bad = dict(manifest, settings=dict(manifest["settings"], window=[0, 1]))
    (copy / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"manifest\.json.*unknown key\(s\) \['window'\]"):
        write_datalist(copy, tmp_path / "other.json")
    assert not (tmp_path / "other.json").exists()
