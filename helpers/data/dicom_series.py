"""Your own scan, as it comes: a DICOM series, study or export folder (the sagittal T2 or T1 series picked and
named, or the one you name; helpers/data/dicom_study.py finds and reads them), one multi-frame DICOM file, NIfTI
(.nii, .nii.gz), MetaImage (.mha, .mhd) or NRRD (.nrrd), in any orientation; and the mask written back in the
input's own kind of file, on its own grid (DICOM SEG for DICOM input).

Used by notebook 07 and `python -m helpers predict`.
"""

from __future__ import annotations

import contextlib
import functools
import locale
from dataclasses import dataclass, field
from pathlib import Path

import SimpleITK as sitk

from helpers.core.errors import DataError
from helpers.data.dicom_study import FoundSeries, choose_series, find_series, is_dicom_file, listing, read_found
from helpers.data.spider import read_image

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")


@contextlib.contextmanager
def _locale_kept():
    """The process's locale as it was before the block (GDCM sets it to "C")."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


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
    order, or its frames' order for a multi-frame file. A folder of several studies is refused (unless `series`
    names one series by UID), with the studies named: predict them all with `--out FOLDER`."""
    found, notes = find_series(where)
    if not found:
        images = sorted(p.name for p in where.glob("*") if kind_of(p) and kind_of(p) != "dicom") if where.is_dir() \
            else []
        hint = (f"; it holds image files ({', '.join(images[:3])}{', ...' if len(images) > 3 else ''}): give one "
                "of them, or the folder with --out FOLDER to predict them all") if images else (
            "; give the folder of a DICOM series, study or export, or an image file")
        raise DataError(where, "holds no readable DICOM series (no DICOM image files in it or its subfolders)" + hint)
    studies = studies_of(found)
    if len(studies) > 1 and not any(s.uid == series for s in found):
        root = where.parent if where.is_file() else where
        named = "; ".join(f"in {_study_folder(group, root)}: patient {group[0].patient or '?'}, "
                          f"{group[0].study or 'no description'}, {len(group)} series, study UID {group[0].study_uid}"
                          for group in studies.values())
        raise DataError(where, f"holds {len(studies)} studies ({named}): give one study's folder, or predict them all "
                               "with --out FOLDER")
    return scan_of_study(found, where, series, notes)


def scan_of_study(found: list[FoundSeries], where: Path, series: str = "", notes: list[str] | None = None) -> InputScan:
    """The series chosen among one study's `found` (helpers/data/dicom_study.py), read as one volume."""
    chosen, why = choose_series(found, where, series)
    with _locale_kept():
        read = read_found(chosen, where)
    return InputScan(read.image, where, "dicom", read.files, chosen.uid, chosen.description, why, read.frames, found,
                     chosen, (notes or []) + read.notes)


def studies_of(found: list[FoundSeries]) -> dict[str, list[FoundSeries]]:
    """The series grouped by study (StudyInstanceUID), in the order found."""
    studies: dict[str, list[FoundSeries]] = {}
    for s in found:
        studies.setdefault(s.study_uid, []).append(s)
    return studies


def _study_folder(group: list[FoundSeries], root: Path) -> str:
    """Where a study's files are, relative to `root` ('.' for root itself)."""
    import os

    common = Path(os.path.commonpath([str(f.parent) for s in group for f in s.files]))
    try:
        return str(common.relative_to(root))
    except ValueError:
        return str(common)


@dataclass
class ScanSource:
    """One scan inside a folder of many: an image file, or one DICOM study (its series found, not yet read)."""

    name: str  # unique among the folder's scans and safe as a file name: the outputs' stem
    path: Path  # the image file, or the folder holding the study's files
    series: list[FoundSeries] = field(default_factory=list)  # DICOM: the study's series

    def files(self) -> list[Path]:
        return sorted({f for s in self.series for f in s.files}) if self.series else [self.path]

    def fingerprint(self) -> str:
        """Its files' names, sizes and times: a rerun redoes a scan whose files changed."""
        import hashlib
        import json

        stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in self.files()]
        return hashlib.sha256(json.dumps(stats).encode()).hexdigest()

    def read(self, series: str = "") -> InputScan:
        if not self.series:
            return read_scan(self.path)
        return scan_of_study(self.series, self.path, series)


def scans_in(folder: str | Path, skip: str | Path | None = None) -> tuple[list[ScanSource], list[str]]:
    """Every scan inside `folder` and its subfolders (but `skip`, where the results go): each image file (.nii.gz,
    .nii, .mha, .nrrd) and each DICOM study (its series found by content, helpers/data/dicom_study.py), named after
    where it lies; and notes on what was passed over."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "is not a folder; give the folder that holds the scans (or one scan, with --out FILE)")
    skip = Path(skip).resolve() if skip else None

    def kept(path: Path) -> bool:
        return skip is None or not path.resolve().is_relative_to(skip)

    found, notes = find_series(folder)
    found = [s for s in found if all(kept(f) for f in s.files)]
    sources = [ScanSource("", f) for f in sorted(folder.rglob("*"))
               if f.is_file() and kind_of(f) not in ("", "dicom") and not f.name.startswith(".") and kept(f)]
    for group in studies_of(found).values():
        sources.append(ScanSource("", folder / _study_folder(group, folder), group))
    used: set[str] = set()
    for source in sources:
        rel = source.path.relative_to(folder) if source.path != folder else Path(folder.name)
        stem = str(rel)[: -len(suffix_of(rel))] if not source.series and suffix_of(rel) else str(rel)
        name = _safe(stem) or "scan"
        if name in used and source.series:
            name = _safe(f"{name}_{source.series[0].patient}_{source.series[0].study_uid[-8:]}")
        while name in used:
            name += "_"
        used.add(name)
        source.name = name
    return sorted(sources, key=lambda s: s.name), notes


def _safe(text: str) -> str:
    """A file-name-safe stem: path separators and odd characters as '_'."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.replace("/", "_").replace("\\", "_")).strip("._")


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
