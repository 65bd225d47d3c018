"""Your own scan, as it comes: a DICOM series, study or export folder (the sagittal T2 or T1 series picked and
named, or the one you name; helpers/data/dicom_study.py finds and reads them), one multi-frame DICOM file, NIfTI
(.nii, .nii.gz), MetaImage (.mha, .mhd) or NRRD (.nrrd), in any orientation; and the mask written back in the
input's own kind of file, on its own grid (DICOM SEG for DICOM input).

Used by notebook 07 and `python -m helpers predict`.
"""

from __future__ import annotations

import functools
import locale
from dataclasses import dataclass, field
from pathlib import Path

import SimpleITK as sitk

from helpers.core.errors import DataError
from helpers.data.dicom_study import FoundSeries, choose_series, find_series, is_dicom_file, listing, read_found
from helpers.data.spider import read_image

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")


def keeps_locale(fn):
    """GDCM (SimpleITK's DICOM reader and writer) sets the process's locale to "C" and leaves it there, after which
    Python opens text files as ASCII: restore the locale after each call."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        saved = locale.setlocale(locale.LC_ALL)
        try:
            return fn(*args, **kwargs)
        finally:
            locale.setlocale(locale.LC_ALL, saved)

    return wrapper


@dataclass
class InputScan:
    """Your own scan as read for prediction: an image from a file or a DICOM series, and how it was found (not
    helpers.data.spider.Scan, what a SPIDER dataset folder holds)."""

    image: sitk.Image
    source: Path
    kind: str  # "dicom", "nifti", "metaimage" or "nrrd"
    files: list[str] = field(default_factory=list)  # DICOM: the series' files, in the image's slice order
    series_uid: str = ""
    description: str = ""
    why: str = ""  # DICOM: which series was used and why
    frames: list[int] = field(default_factory=list)  # multi-frame DICOM: the file's frame on each image slice
    found: list[FoundSeries] = field(default_factory=list)  # DICOM: every series found, the one used among them
    chosen: FoundSeries | None = None
    notes: list[str] = field(default_factory=list)  # what reading found worth saying (skipped files, gaps)

    def said(self) -> str:
        """The series used, by number, description and UID, where it is and why: one line ('' for an image file)."""
        if self.chosen is None:
            return ""
        root = self.source.parent if self.source.is_file() else self.source
        folder = self.chosen.folder(root)
        return (f"used {self.chosen.label()}{'' if folder == '.' else ' in ' + folder}: {self.why}"
                + "".join(f"; {note}" for note in self.notes))

    def listing(self) -> str:
        """Every DICOM series found, one line each, the one used marked ('' for an image file or a lone series)."""
        if len(self.found) < 2:
            return ""
        root = self.source.parent if self.source.is_file() else self.source
        return f"{len(self.found)} series found:\n" + listing(self.found, root, self.chosen)


def suffix_of(path: Path) -> str:
    """'.nii.gz' for a gzipped NIfTI, else the last suffix, lower case."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def kind_of(path: Path) -> str:
    suffix = suffix_of(path)
    return {".nii.gz": "nifti", ".nii": "nifti", ".mha": "metaimage", ".mhd": "metaimage", ".nrrd": "nrrd",
            ".nhdr": "nrrd", ".dcm": "dicom"}.get(suffix, "")


def read_scan(path: str | Path, series: str = "") -> InputScan:
    """A 3D scan from an image file, a DICOM folder (a series, a study, a patient, a nested export; with or without a
    DICOMDIR), a DICOMDIR or one multi-frame DICOM file; `series` picks a DICOM series by its UID, its number or a
    word of its description (helpers/data/dicom_study.py chooses otherwise, and says which and why). Clear errors for
    a folder without a readable series, a 2D image, a localiser, mixed series."""
    path = Path(path)
    if path.is_dir() or (path.is_file() and path.name.upper() == "DICOMDIR"):
        return read_dicom_series(path, series)
    if not path.exists():
        raise DataError(path, "not found; give an image file (.nii.gz, .nii, .mha, .nrrd) or a DICOM folder")
    if kind_of(path) == "dicom" or (not kind_of(path) and is_dicom_file(path)):
        return _read_dicom_file(path, series)
    if not kind_of(path):
        raise DataError(path, f"is not an image file the kit reads ({', '.join(IMAGE_SUFFIXES)}) nor a DICOM folder")
    return InputScan(read_image(path), path, kind_of(path))


def _read_dicom_file(path: Path, series: str) -> InputScan:
    """One DICOM file: a multi-frame one holds a whole series; one image of a series is not a volume."""
    found, _ = find_series(path)
    if found and found[0].multiframe:
        return read_dicom_series(path, series)
    raise DataError(path, f"is one DICOM file; give the folder that holds its whole series ({path.parent})")


@keeps_locale
def read_dicom_series(where: Path, series: str = "") -> InputScan:
    """The chosen series of a DICOM folder (or DICOMDIR, or multi-frame file) as one 3D image: its files in slice
    order, or its frames' order for a multi-frame file."""
    found, notes = find_series(where)
    if not found:
        images = sorted(p.name for p in where.glob("*") if kind_of(p) and kind_of(p) != "dicom") if where.is_dir() \
            else []
        hint = (f"; it holds image files ({', '.join(images[:3])}{', ...' if len(images) > 3 else ''}): give one "
                "of them, or the folder with --out FOLDER to predict them all") if images else (
            "; give the folder of a DICOM series, study or export, or an image file")
        raise DataError(where, "holds no readable DICOM series (no DICOM image files in it or its subfolders)" + hint)
    chosen, why = choose_series(found, where, series)
    read = read_found(chosen, where)
    return InputScan(read.image, where, "dicom", read.files, chosen.uid, chosen.description, why, read.frames, found,
                     chosen, notes + read.notes)


@keeps_locale
def write_dicom_series(image: sitk.Image, folder: str | Path, description: str, number: int = 1,
                       series_uid: str = "", study_uid: str = "") -> list[Path]:
    """`image` (rounded to int16) as an MR DICOM series, one file per slice along its third axis, as a scanner
    would export it: for trying the DICOM path without a DICOM scan of your own (notebook 07, the tests)."""
    from pydicom.uid import generate_uid

    study_uid, folder = study_uid or generate_uid(), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = image.GetDirection()
    pixels = sitk.Cast(sitk.Round(sitk.Cast(image, sitk.sitkFloat32)), sitk.sitkInt16)
    tags = {"0008|0060": "MR", "0008|103e": description, "0020|000d": study_uid,
            "0020|000e": series_uid or generate_uid(), "0020|0011": str(number), "0010|0010": "KIT^TEST",
            "0010|0020": "KIT-1", "0008|0020": "20261205", "0008|0030": "120000", "0020|0010": "1",
            "0020|0052": generate_uid(),
            "0020|0037": "\\".join(f"{v:.6f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7])),
            "0018|0050": f"{image.GetSpacing()[2]:.6f}", "0018|0088": f"{image.GetSpacing()[2]:.6f}"}
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    files = []
    for i in range(pixels.GetDepth()):
        piece = pixels[:, :, i]
        for tag, value in tags.items():
            piece.SetMetaData(tag, value)
        piece.SetMetaData("0020|0032", "\\".join(f"{v:.6f}" for v in pixels.TransformIndexToPhysicalPoint((0, 0, i))))
        piece.SetMetaData("0020|0013", str(i + 1))
        piece.SetMetaData("0008|0018", generate_uid())
        files.append(folder / f"{number:02d}_{i:04d}.dcm")
        writer.SetFileName(str(files[-1]))
        writer.Execute(piece)
    return files


def demo_scan(data_dir: str | Path) -> tuple[Path, str]:
    """A scan for notebook 07 when you bring none, and why it is fair: a real SPIDER sample that no course run trains
    on (../shared/real-samples 209, SPIDER's validation subset), else a series of the data's official validation
    subset (the course's held-out test patients)."""
    from helpers.core.paths import REAL_SAMPLES_DIR
    from helpers.data.spider import scan_dataset

    real = REAL_SAMPLES_DIR / "images" / "209_t2_SPACE.mha"
    if real.is_file():
        return real, "a real SPIDER sample (patient 209, SPIDER's validation subset): never trained on"
    scan = scan_dataset(data_dir)
    held_out = [s for s in scan.complete if (scan.overview.get(s.stem) or {}).get("subset") == "validation"]
    if not held_out:
        raise DataError(Path(data_dir), "has no series of SPIDER's validation subset to stand in for your scan; "
                                        "set `scan` to an image file or a DICOM folder")
    return held_out[0].image, f"{held_out[0].stem}, a held-out test patient of the course: never trained on"
