"""Scans as hospitals send them (issue 32): a nested study export with a DICOMDIR, a study of several series (T2,
T1, axial, localiser), enhanced multi-frame MR, ITK's messages whole and off the terminal. The DICOM files are
written here with SimpleITK, pydicom (the DICOMDIR: pydicom's FileSet) and highdicom (multi-frame) from a real
SPIDER sample (../shared/real-samples) where present, else from a synthetic series, so the tests run in CI too."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.core.errors import DataError
from helpers.core.paths import REAL_SAMPLES_DIR
from helpers.data.dicom_series import read_scan, write_dicom_series
from helpers.data.spider import read_image, read_series, scan_dataset

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR Image Storage
LEGACY_ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.4"  # Legacy Converted Enhanced MR Image Storage


def scan_like(image: sitk.Image) -> sitk.Image:
    """Whole-number intensities (DICOM stores integers), spacing and origin that every format holds exactly."""
    out = sitk.Cast(sitk.Round(image), sitk.sitkFloat32)
    out.SetSpacing([round(s * 64) / 64 for s in image.GetSpacing()])
    out.SetOrigin([round(o * 16) / 16 for o in image.GetOrigin()])
    return out


@pytest.fixture(scope="module")
def source(small_dataset) -> sitk.Image:
    """A sagittal T2 as PIR (slices along its third axis, as DICOM stores them): real sample 7 where present, else a
    synthetic T2 SPACE series."""
    real = REAL_SAMPLES_DIR / "images" / "7_t2_SPACE.mha"
    if real.is_file():
        return scan_like(sitk.ReadImage(str(real)))
    series = next(s for s in scan_dataset(small_dataset).complete if s.sequence == "t2_SPACE")
    return scan_like(sitk.DICOMOrient(read_series(series)[0], "PIR"))


def write_study(image: sitk.Image, folder: Path) -> dict[str, list[Path]]:
    """One study as a console exports it into one folder: a localiser, the sagittal T2, a sagittal T1 and an axial
    T2 (every 4th axial plane of the same volume), each its own series."""
    from pydicom.uid import generate_uid

    study = generate_uid()
    axial = sitk.DICOMOrient(image, "LPS")
    axial = axial[:, :, :: max(1, axial.GetDepth() // 12)]
    return {"loc": write_dicom_series(image[:, :, :1], folder, "3-plane loc", 1, study_uid=study),
            "t2": write_dicom_series(image, folder, "T2 SPACE SAG", 2, study_uid=study),
            "t1": write_dicom_series(image, folder, "T1 TSE SAG", 3, study_uid=study),
            "ax": write_dicom_series(axial, folder, "T2 TSE TRA", 4, study_uid=study)}


def export_with_dicomdir(files: list[Path], out: Path) -> Path:
    """The files as a PACS or CD export: PT000000/ST000000/SE00000n/IM00000n, no suffixes, and a DICOMDIR (pydicom's
    FileSet writes both)."""
    import pydicom
    from pydicom.fileset import FileSet

    fileset = FileSet()
    for f in files:
        fileset.add(pydicom.dcmread(f))
    fileset.write(out)
    return out


def write_multiframe(files: list[Path], out: Path, sop_class: str = ENHANCED_MR) -> Path:
    """One multi-frame file holding the series' every slice: highdicom's legacy-converted enhanced MR, stored as
    `sop_class` (Enhanced MR Image Storage, what current scanners export, has the same multi-frame functional-group
    layout; highdicom writes it by converting the single-frame images)."""
    import highdicom as hd
    import pydicom
    from pydicom.uid import generate_uid

    frames = hd.legacy.LegacyConvertedEnhancedMRImage([pydicom.dcmread(f) for f in files],
                                                      series_instance_uid=generate_uid(), series_number=5,
                                                      sop_instance_uid=generate_uid(), instance_number=1)
    frames.SOPClassUID = frames.file_meta.MediaStorageSOPClassUID = sop_class
    frames.SeriesDescription = "t2_space_sag_p2_iso"
    out.parent.mkdir(parents=True, exist_ok=True)
    frames.save_as(out, enforce_file_format=True)
    return out


@pytest.fixture(scope="module")
def study(source, tmp_path_factory) -> dict:
    """A study of four series in one folder, and the same study as a nested export with a DICOMDIR."""
    root = tmp_path_factory.mktemp("study")
    files = write_study(source, root / "flat")
    export = export_with_dicomdir([f for group in files.values() for f in group], root / "export")
    return {"flat": root / "flat", "export": export, "files": files}


def test_a_nested_export_with_a_dicomdir_lists_every_series_and_names_the_one_used(study, source, tmp_path):
    import pydicom

    uid = pydicom.dcmread(study["files"]["t2"][0], stop_before_pixels=True).SeriesInstanceUID
    assert (study["export"] / "DICOMDIR").is_file() and not any(study["export"].rglob("*.dcm"))  # no suffixes
    for given in (study["export"], study["export"] / "DICOMDIR", study["flat"]):
        scan = read_scan(given)
        assert scan.description == "T2 SPACE SAG" and scan.series_uid == uid, given
        said = scan.said()
        assert "'T2 SPACE SAG'" in said and uid in said and "the sagittal T2 series" in said, said
        listing = scan.listing().splitlines()
        assert listing[0] == "4 series found:" and len(listing) == 5
        assert sum("used ->" in line for line in listing) == 1 and "T2 SPACE SAG" in next(
            line for line in listing if "used ->" in line)
        assert any("axial" in line and "T2 TSE TRA" in line for line in listing)
        assert any("localiser" in line for line in listing)
        assert np.array_equal(sitk.GetArrayFromImage(scan.image), sitk.GetArrayFromImage(source))
    assert "ST000000/SE" in read_scan(study["export"]).said()  # says where, inside the export
    # the same export without its DICOMDIR (files found by content), and one whose DICOMDIR lists missing files
    bare = Path(shutil.copytree(study["export"], tmp_path / "bare"))
    (bare / "DICOMDIR").unlink()
    assert read_scan(bare).series_uid == uid
    stale = Path(shutil.copytree(study["export"], tmp_path / "stale"))
    shutil.rmtree(next(stale.rglob("SE000000")))
    assert read_scan(stale).series_uid == uid
    # --series: by UID, by series number, by a word of the description
    t1 = read_scan(study["export"], series="T1")
    assert t1.description == "T1 TSE SAG" and "the series named by 'T1'" in t1.said()
    assert read_scan(study["export"], series="4").description == "T2 TSE TRA"
    assert read_scan(study["export"], series=uid).series_uid == uid
    with pytest.raises(DataError, match="2 series match 'T2'.*T2 SPACE SAG.*T2 TSE TRA.*--series"):
        read_scan(study["export"], series="T2")


def test_a_study_without_a_sagittal_t1_or_t2_names_the_ones_to_choose_from(study, tmp_path):
    import pydicom

    folder = tmp_path / "axial_and_stir"
    folder.mkdir()
    for f in study["files"]["ax"] + study["files"]["loc"]:
        shutil.copy(f, folder / f.name)
    assert read_scan(folder).description == "T2 TSE TRA"  # the only volume: used, said so
    assert "the only MR volume here" in read_scan(folder).said()
    study_uid = pydicom.dcmread(study["files"]["ax"][0], stop_before_pixels=True).StudyInstanceUID
    stir = write_dicom_series(read_scan(study["flat"]).image, folder, "STIR SAG", 7, study_uid=study_uid)
    with pytest.raises(DataError, match="2 MR volumes and none is a sagittal T1 or T2.*STIR SAG.*--series"):
        read_scan(folder)
    assert read_scan(folder, series="STIR").description == "STIR SAG"
    for f in stir:  # the same images as another study: one-scan predict names both studies
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.78"
        ds.save_as(f)
    with pytest.raises(DataError, match="holds 2 studies .*patient KIT-1.*1.2.826.0.1.3680043.8.498.78.*--out FOLDER"):
        read_scan(folder)


def test_enhanced_multiframe_mr_reads_as_the_volume_it_holds(study, source, tmp_path):
    import pydicom

    reference = sitk.GetArrayFromImage(source)
    for sop_class in (ENHANCED_MR, LEGACY_ENHANCED_MR):
        path = write_multiframe(study["files"]["t2"], tmp_path / sop_class / "IM000001", sop_class)
        assert pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames == source.GetDepth()
        for given in (path.parent, path):  # its folder, or the file itself
            scan = read_scan(given)
            assert scan.chosen.multiframe and scan.files == [str(path)] and "frames in one file" in scan.said()
            assert scan.image.GetSize() == source.GetSize()
            same = sitk.DICOMOrient(scan.image, "PIR")  # GDCM may stack the frames either way along the normal
            assert np.array_equal(sitk.GetArrayFromImage(same), reference), sop_class
            assert np.allclose(same.GetOrigin(), source.GetOrigin(), atol=1e-3)
            frames = pydicom.dcmread(path).pixel_array
            for k, frame in enumerate(scan.frames):  # each slice of the volume is the frame said
                assert np.array_equal(sitk.GetArrayFromImage(scan.image)[k], frames[frame]), (sop_class, k)


def test_a_folder_of_mixed_echoes_and_what_is_no_volume_say_why(study, tmp_path):
    folder = tmp_path / "echoes"
    files = study["files"]["t2"]
    uid = "1.2.826.0.1.3680043.8.498.77"
    image = read_scan(study["flat"]).image
    write_dicom_series(image, folder, "T2 SAG multi-echo", 2, series_uid=uid)
    write_dicom_series(image, folder / "echo2", "T2 SAG multi-echo", 3, series_uid=uid)
    with pytest.raises(DataError, match=f"holds {2 * len(files)} images at {len(files)} positions"):
        read_scan(folder)
    with pytest.raises(DataError, match="is one DICOM file; give the folder that holds its whole series"):
        read_scan(files[0])


def test_itk_messages_are_kept_whole_and_off_the_terminal(tmp_path, capfd):
    image = sitk.Image(8, 8, 8, sitk.sitkFloat32)
    sitk.WriteImage(image, str(tmp_path / "zero.mha"))
    header = (tmp_path / "zero.mha").read_bytes().replace(b"ElementSpacing = 1 1 1", b"ElementSpacing = 1 0 1")
    (tmp_path / "zero.mha").write_bytes(header)
    with pytest.raises(DataError) as caught:
        read_image(tmp_path / "zero.mha")
    message = str(caught.value)
    assert ("Zero-valued spacing is not supported and may result in undefined behavior. Refusing to change spacing "
            "from [1, 1, 1] to [1, 0, 1]") in message and "\n" not in message
    assert "truncated" not in message and "0x" not in message  # no wrong guess, no object address
    sitk.WriteImage(image, str(tmp_path / "whole.mha"), False)
    data = (tmp_path / "whole.mha").read_bytes()
    (tmp_path / "cut.mha").write_bytes(data[: len(data) - 1000])
    with pytest.raises(DataError, match=r"truncated: 1,048 of its 2,048 bytes of voxel data"):
        read_image(tmp_path / "cut.mha")
    (tmp_path / "empty_study" / "PA000001" / "ST000001").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no readable DICOM series"):
        read_scan(tmp_path / "empty_study")
    printed = capfd.readouterr()
    assert "WARNING" not in printed.err + printed.out and "ITK" not in printed.err + printed.out


# ---------------------------------------------------------------- predicted: one scan, then a folder of many
@pytest.fixture(scope="module")
def predictor(trained):
    """The session's tiny trained run, loaded once for this module's direct calls."""
    from helpers.inference.predict import Predictor

    return Predictor(trained / "run")


def test_a_study_export_is_predicted_with_the_series_named_and_its_seg_reads_back(study, trained, tmp_path, capfd):
    import pydicom

    from helpers.inference.dicom_seg import read_dicom_seg

    from .conftest import kit

    uid = pydicom.dcmread(study["files"]["t2"][0], stop_before_pixels=True).SeriesInstanceUID
    out = kit("predict", study["export"], "--run", trained / "run", "--out", tmp_path / "seg.dcm")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "4 series found:" and any(line.startswith("used series 2 'T2 SPACE SAG'") and uid in line
                                                 for line in lines), out.stdout
    assert sum(line.startswith("check:") for line in lines) <= 1 and any(line.startswith("levels:") for line in lines)
    assert "WARNING" not in capfd.readouterr().err  # no ITK warning above the kit's lines
    kit("predict", study["export"], "--run", trained / "run", "--out", tmp_path / "mask.mha")
    predicted = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "mask.mha")))
    scan = read_scan(study["export"])
    segments = read_dicom_seg(tmp_path / "seg.dcm", scan.files)
    assert segments and sum(int(v.sum()) for v in segments.values()) == int((predicted > 0).sum())


def test_a_multiframe_file_is_predicted_and_its_seg_refers_to_its_frames(study, predictor, tmp_path):
    from helpers.inference.dicom_seg import read_dicom_seg
    from helpers.inference.predict import predict_file

    path = write_multiframe(study["files"]["t2"], tmp_path / "mf" / "IM000001")
    said: list[str] = []
    predict_file(path, None, tmp_path / "mask.nii.gz", predictor=predictor, log=said.append)
    predict_file(path.parent, None, tmp_path / "seg.dcm", predictor=predictor, log=said.append)
    assert any("frames in one file" in line for line in said)
    predicted = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "mask.nii.gz")))
    scan = read_scan(path)
    for label, voxels in read_dicom_seg(tmp_path / "seg.dcm", scan.files, scan.frames).items():
        value = next(v for v in np.unique(predicted) if v and voxels[predicted == v].all())
        assert np.array_equal(voxels, predicted == value), label


def test_a_series_without_frame_of_reference_gets_a_seg_and_one_line_saying_so(study, predictor, tmp_path):
    import highdicom as hd
    import pydicom
    from pydicom.uid import generate_uid

    from helpers.inference.predict import predict_file

    folder = tmp_path / "no_for"
    folder.mkdir()
    for f in study["files"]["t2"]:  # as SimpleITK's own DICOM-writing examples write a series
        ds = pydicom.dcmread(f)
        del ds.FrameOfReferenceUID
        ds.save_as(folder / f.name)
    said: list[str] = []
    predict_file(folder, None, tmp_path / "seg.dcm", predictor=predictor, log=said.append)
    series_uid = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    made = generate_uid(entropy_srcs=[series_uid, "spider-unetr-kit frame of reference"])
    notes = [line for line in said if "has no Frame of Reference UID" in line]
    assert len(notes) == 1 and made in notes[0] and "unchanged" in notes[0]
    seg = hd.seg.segread(str(tmp_path / "seg.dcm"))
    assert seg.FrameOfReferenceUID == made and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert not any("FrameOfReferenceUID" in pydicom.dcmread(f, stop_before_pixels=True) for f in folder.iterdir())


def test_what_differs_from_the_training_data_is_said_in_one_line(study, source, predictor, tmp_path):
    from helpers.data.differences import prediction_differences
    from helpers.inference.predict import predict_file

    def check_lines(path, series=""):
        said: list[str] = []
        predict_file(path, None, tmp_path / "mask.nii.gz", series=series, predictor=predictor, log=said.append)
        assert (tmp_path / "mask.nii.gz").is_file()  # written all the same
        return [line for line in said if line.startswith("check:")]

    axial = check_lines(study["export"], series="T2 TSE TRA")
    assert len(axial) == 1 and "axial slices (the model saw sagittal ones" in axial[0]
    thick = sitk.Resample(source, [source.GetSize()[0], source.GetSize()[1], 4], sitk.Transform(), sitk.sitkLinear,
                          source.GetOrigin(), source.GetSpacing()[:2] + (7.0,), source.GetDirection())
    sitk.WriteImage(thick, str(tmp_path / "thick.nii.gz"))
    assert any("slices 7.0 mm apart" in line for line in check_lines(tmp_path / "thick.nii.gz"))
    write_dicom_series(source, tmp_path / "stir", "STIR SAG", 7)
    assert any("a STIR sequence (the model saw T1 and T2)" in line for line in check_lines(tmp_path / "stir"))
    assert prediction_differences(0) == ["no vertebra found: is the lumbar spine in the field of view? Look at the "
                                         "scan itself"]
    assert "only 2 vertebra(e) found" in prediction_differences(2)[0] and prediction_differences(5) == []


def test_a_volume_too_large_for_memory_is_predicted_in_windows(source, predictor, monkeypatch):
    from helpers.data.resample import preprocess
    from helpers.inference.predict import bytes_per_voxel

    whole = sitk.GetArrayFromImage(predictor.structures(source))
    assert predictor.windows == 1
    grid, _ = preprocess(source, predictor.settings)
    need = grid.GetNumberOfPixels() * bytes_per_voxel(len(predictor.classes))
    monkeypatch.setenv("SPIDER_KIT_PREDICT_MEMORY", str(need // 4))  # a quarter of what the whole volume needs
    windowed = sitk.GetArrayFromImage(predictor.structures(source))
    assert predictor.windows > 1
    assert np.array_equal(windowed, whole)  # slabs on the sliding window's own grid, a patch of context each side


def test_a_folder_of_scans_one_unreadable_is_predicted_summarised_and_resumed(study, source, trained, tmp_path,
                                                                           monkeypatch):
    import csv

    from helpers.inference import predict as predict_module

    from .conftest import kit

    inbox = tmp_path / "inbox"
    shutil.copytree(study["export"], inbox / "study_a")
    import pydicom

    other = pydicom.dcmread(write_multiframe(study["files"]["t2"], inbox / "study_b" / "IM000001"))
    other.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.79"  # another study (the same images, as a second visit)
    other.save_as(inbox / "study_b" / "IM000001")
    (inbox / "files").mkdir()
    sitk.WriteImage(source, str(inbox / "files" / "scan.nii.gz"))
    (inbox / "files" / "broken.mha").write_bytes(b"ObjectType = Image\nNDims = 3\n")  # a header with no voxels
    out = tmp_path / "out"
    first = kit("predict", inbox, "--run", trained / "run", "--out", out, "--seg")
    assert first.returncode == 2 and "1 of 4 scans could not be predicted" in first.stderr, first.stderr[-2000:]
    assert sum(line.startswith("FAILED files_broken: ") for line in first.stdout.splitlines()) == 1
    with open(out / "summary.csv", newline="") as f:
        rows = {r["scan"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"files_broken", "files_scan", "study_a_PT000000_ST000000", "study_b"}
    assert rows["files_broken"]["status"] == "failed" and "broken.mha" in rows["files_broken"]["error"]
    for name in ("files_scan", "study_a_PT000000_ST000000", "study_b"):
        row = rows[name]
        assert row["status"] == "predicted" and float(row["vertebra_ml"]) >= 0 and row["levels"], row
        assert (out / row["mask"]).is_file() and (out / row["picture"]).read_bytes().startswith(b"\x89PNG")
    assert "'T2 SPACE SAG'" in rows["study_a_PT000000_ST000000"]["series"] and rows["study_b"]["seg"] == "study_b.dcm"
    assert rows["files_scan"]["seg"] == ""  # DICOM SEG for DICOM input only
    sheet = (out / "index.html").read_text()
    assert all(name in sheet for name in rows) and "failed" in sheet
    # the rerun keeps what is done and verified, without loading the model; a damaged mask is redone
    monkeypatch.setattr(predict_module, "Predictor", lambda *a, **k: pytest.fail("the model was loaded"))
    again = kit("predict", inbox, "--run", trained / "run", "--out", out, "--seg")
    assert "0 predicted, 3 done before and kept, 1 failed" in again.stdout
    monkeypatch.undo()
    (out / "files_scan.nii.gz").write_bytes(b"damaged")
    (inbox / "files" / "broken.mha").unlink()
    third = kit("predict", inbox, "--run", trained / "run", "--out", out, "--seg")
    assert third.returncode == 0 and "3 scans: 1 predicted, 2 done before and kept, 0 failed" in third.stdout
    assert sitk.ReadImage(str(out / "files_scan.nii.gz")).GetSize() == source.GetSize()
