"""Your own scan: a DICOM series folder, NIfTI and MetaImage of the same scan give the same mask on each input's grid;
DICOM input gets a DICOM SEG that reads back (highdicom, pydicom) segment for segment and references its series; a
folder of several series picks the sagittal T2 and says why; clear errors for what cannot be segmented. The DICOM
series are written here with SimpleITK from the synthetic series and the real samples, never downloaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.core.errors import DataError
from helpers.data.dicom_series import read_scan, write_dicom_series
from helpers.data.spider import read_series, scan_dataset
from helpers.inference.dicom_seg import read_dicom_seg, segment_labels, write_dicom_seg
from helpers.inference.predict import predict_file

from .conftest import kit


def scan_like(image: sitk.Image) -> sitk.Image:
    """The same scan with values and geometry that every format stores exactly: whole-number intensities (DICOM
    stores integers), spacing in 1/64 mm and origin in 1/16 mm (NIfTI's header holds float32, DICOM decimal
    strings). With a geometry NIfTI cannot hold, its float32 header moves the grid by ~1e-7 mm, which can flip
    voxels where an early model's classes are nearly tied (measured: 4,164 of 75,152 with a 4-iteration model)."""
    out = sitk.Cast(sitk.Round(image), sitk.sitkFloat32)
    out.SetSpacing([round(s * 64) / 64 for s in image.GetSpacing()])
    out.SetOrigin([round(o * 16) / 16 for o in image.GetOrigin()])
    return out


@pytest.fixture
def run(trained) -> Path:
    """The session's tiny trained run (conftest.trained)."""
    return trained / "run"


def _scans(small_dataset: Path, real: Path | None) -> dict[str, sitk.Image]:
    series = scan_dataset(small_dataset).complete
    lps = next(s for s in series if s.sequence == "t2")
    pir = next(s for s in series if s.sequence == "t2_SPACE")
    scans = {"synthetic_lps": read_series(lps)[0], "synthetic_pir": read_series(pir)[0]}
    if real is not None:
        scans["real_7"] = sitk.ReadImage(str(real / "images" / "7_t2_SPACE.mha"))
    return {k: scan_like(v) for k, v in scans.items()}


def test_dicom_nifti_and_metaimage_of_one_scan_give_one_mask(run, small_dataset, tmp_path):
    from helpers.core.paths import REAL_SAMPLES_DIR

    real = REAL_SAMPLES_DIR if (REAL_SAMPLES_DIR / "images").is_dir() else None
    for name, image in _scans(small_dataset, real).items():
        folder = tmp_path / name
        write_dicom_series(image, folder / "dicom", "T2 TSE SAG")
        sitk.WriteImage(image, str(folder / "scan.nii.gz"))
        sitk.WriteImage(image, str(folder / "scan.mha"))
        masks = {}
        for source, out in ((folder / "dicom", folder / "from_dicom.nii.gz"), (folder / "scan.nii.gz",
                            folder / "from_nifti.nii.gz"), (folder / "scan.mha", folder / "from_mha.mha")):
            predict_file(source, run, out)
            masks[source.name] = sitk.ReadImage(str(out))
            src = read_scan(source).image
            mask = masks[source.name]
            assert mask.GetSize() == src.GetSize() and np.allclose(mask.GetSpacing(), src.GetSpacing(), atol=1e-4)
            assert np.allclose(mask.GetOrigin(), src.GetOrigin(), atol=1e-3)
            assert np.allclose(mask.GetDirection(), src.GetDirection(), atol=1e-6)
        arrays = [sitk.GetArrayFromImage(m) for m in masks.values()]
        assert arrays[0].any(), name
        assert all(np.array_equal(arrays[0], a) for a in arrays[1:]), name


def test_dicom_seg_reads_back_segment_for_segment(run, small_dataset, tmp_path):
    import highdicom as hd
    import pydicom

    series = next(s for s in scan_dataset(small_dataset).complete if s.sequence == "t2_SPACE")  # PIR, as SPIDER's
    image, mask = read_series(series)
    image = scan_like(image)
    files = write_dicom_series(image, tmp_path / "dicom", "T2 SPACE SAG")
    source_uid = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    scan = read_scan(tmp_path / "dicom")
    reference = sitk.Cast(mask, sitk.sitkInt16)
    reference.CopyInformation(scan.image)
    write_dicom_seg(reference, scan.files, tmp_path / "reference.dcm")  # every vertebra, disc and the canal
    segments = read_dicom_seg(tmp_path / "reference.dcm", scan.files)
    truth = sitk.GetArrayFromImage(reference)
    values = [int(v) for v in np.unique(truth) if v]
    labels = segment_labels(values)
    assert list(segments) == [labels[v] for v in values] and labels[1] == "vertebra 1 (L5)"
    for v in values:
        assert np.array_equal(segments[labels[v]], truth == v), v
    seg = hd.seg.segread(str(tmp_path / "reference.dcm"))
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source_uid
    assert seg.FrameOfReferenceUID == pydicom.dcmread(files[0], stop_before_pixels=True).FrameOfReferenceUID
    codes = {seg.get_segment_description(n).segmented_property_type.value for n in seg.segment_numbers}
    assert codes == {"51282000", "360499006", "61853006"}  # SNOMED CT: vertebra, intervertebral disc, spinal canal
    # the command line: DICOM in, DICOM SEG out, the same mask as the label image it writes
    out = kit("predict", tmp_path / "dicom", "--run", run, "--out", tmp_path / "pred.dcm")
    assert out.returncode == 0, out.stderr[-2000:]
    predict_file(tmp_path / "dicom", run, tmp_path / "pred.mha")
    predicted = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "pred.mha")))
    labels = {name: v for v, name in segment_labels([int(v) for v in np.unique(predicted) if v]).items()}
    for label, voxels in read_dicom_seg(tmp_path / "pred.dcm", scan.files).items():
        value = labels[label]
        assert np.array_equal(voxels, predicted == value), label


def test_a_folder_of_several_series_picks_the_sagittal_t2_and_says_why(small_dataset, tmp_path, capsys):
    series = scan_dataset(small_dataset).complete
    t1, t2 = (scan_like(read_series(next(s for s in series if s.sequence == q))[0]) for q in ("t1", "t2"))
    study = "1.2.826.0.1.3680043.8.498.1"  # one study, as a console exports it (several studies are refused)
    for number, (image, name) in enumerate(((t1, "T1 TSE SAG"), (t2, "T2 TSE SAG")), start=1):
        write_dicom_series(sitk.DICOMOrient(image, "PIR"), tmp_path / "study", name, number, study_uid=study)
    write_dicom_series(t2[:, :, :2], tmp_path / "study", "3-plane localizer", number=3, study_uid=study)  # 2 axial
    scan = read_scan(tmp_path / "study")
    assert scan.description == "T2 TSE SAG" and "the sagittal T2 series" in scan.why and "T1 TSE SAG" in scan.listing()
    assert read_scan(tmp_path / "study", series="T1").description == "T1 TSE SAG"
    with pytest.raises(DataError, match="0 series match 'flair'"):
        read_scan(tmp_path / "study", series="flair")


def test_what_cannot_be_segmented_is_named(small_dataset, tmp_path):
    image = scan_like(read_series(scan_dataset(small_dataset).complete[0])[0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no readable DICOM series"):
        read_scan(tmp_path / "empty")
    files = write_dicom_series(image, tmp_path / "one", "T2 TSE SAG")
    with pytest.raises(DataError, match="is one DICOM file; give the folder"):
        read_scan(files[0])
    write_dicom_series(image[:, :, :2], tmp_path / "loc", "localizer")
    with pytest.raises(DataError, match="only localisers or single images"):
        read_scan(tmp_path / "loc")
    uid = "1.2.826.0.1.3680043.8.498.99"
    write_dicom_series(image, tmp_path / "mixed", "T2 TSE SAG", series_uid=uid)
    axial = sitk.PermuteAxes(image, [0, 2, 1])
    write_dicom_series(axial[:, :, :3], tmp_path / "mixed", "T2 TSE SAG", number=2, series_uid=uid)
    with pytest.raises(DataError, match="mixes images of different sizes or orientations"):
        read_scan(tmp_path / "mixed")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    with pytest.raises(DataError, match="not an image file the kit reads"):
        read_scan(tmp_path / "picture.png")
    run = subprocess.run([sys.executable, "-m", "helpers", "predict", str(tmp_path / "empty"), "--run",  # a process
                          str(tmp_path), "--out", str(tmp_path / "x.nii.gz")], capture_output=True, text=True)
    assert run.returncode == 2 and "holds no readable DICOM series" in run.stderr and "Traceback" not in run.stderr
