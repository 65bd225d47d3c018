"""Your own scan, as it comes: a DICOM series folder (the sagittal T1 or T2 series picked, or the one you name),
NIfTI (.nii, .nii.gz), MetaImage (.mha, .mhd) or NRRD (.nrrd), in any orientation; and the mask written back in the
input's own kind of file, on its own grid (helpers/evaluation/dicom_seg.py writes DICOM SEG for DICOM input).

Used by notebook 07 and `python -m helpers predict`.
"""

from __future__ import annotations

import functools
import locale
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from helpers.core.errors import DataError
from helpers.data.spider import read_image

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")
LOCALISER_WORDS = ("loc", "scout", "survey", "localizer", "localiser", "3-plane", "tripilot")
MIN_SLICES = 3  # fewer images in a series: a localiser or a single slice, not a volume


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


def suffix_of(path: Path) -> str:
    """'.nii.gz' for a gzipped NIfTI, else the last suffix, lower case."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def kind_of(path: Path) -> str:
    suffix = suffix_of(path)
    return {".nii.gz": "nifti", ".nii": "nifti", ".mha": "metaimage", ".mhd": "metaimage", ".nrrd": "nrrd",
            ".nhdr": "nrrd", ".dcm": "dicom"}.get(suffix, "")


def read_scan(path: str | Path, series: str = "") -> InputScan:
    """A 3D scan from an image file or a DICOM folder; `series` picks a DICOM series by its UID or a word of its
    description. Clear errors for a folder without a readable series, a 2D image, a localiser, mixed series."""
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path, series)
    if not path.exists():
        raise DataError(path, "not found; give an image file (.nii.gz, .nii, .mha, .nrrd) or a DICOM series folder")
    if kind_of(path) == "dicom":
        raise DataError(path, "is one DICOM file; give the folder that holds its whole series")
    if not kind_of(path):
        raise DataError(path, f"is not an image file the kit reads ({', '.join(IMAGE_SUFFIXES)}) nor a DICOM folder")
    return InputScan(read_image(path), path, kind_of(path))


def _tags(reader: sitk.ImageFileReader, *keys: str) -> list[str]:
    return [reader.GetMetaData(k).strip() if reader.HasMetaDataKey(k) else "" for k in keys]


@dataclass
class _Series:
    uid: str
    files: list[str]
    description: str
    modality: str
    orientation: tuple[float, ...]
    sizes: set[tuple[str, str]]
    orientations: set[tuple[float, ...]]

    @property
    def sagittal(self) -> bool:
        """Slices whose normal runs left-right (patient x), as SPIDER's series."""
        if len(self.orientation) != 6:
            return False
        normal = np.cross(self.orientation[:3], self.orientation[3:])
        return bool(np.argmax(np.abs(normal)) == 0)

    @property
    def localiser(self) -> bool:
        return len(self.files) < MIN_SLICES or any(w in self.description.lower() for w in LOCALISER_WORDS)

    @property
    def weighting(self) -> str:
        text = self.description.lower().replace(" ", "").replace("_", "")
        return "t2" if "t2" in text else "t1" if "t1" in text else ""

    def label(self) -> str:
        return f"'{self.description or 'no description'}' ({len(self.files)} images, UID {self.uid})"


def _series_in(folder: Path) -> list[_Series]:
    found = []
    for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or []:
        files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
        reader = sitk.ImageFileReader()
        sizes, orientations = set(), set()
        description = modality = ""
        orientation: tuple[float, ...] = ()
        for name in files:
            reader.SetFileName(name)
            try:
                reader.ReadImageInformation()
            except RuntimeError:
                continue
            rows, cols, iop, desc, mod = _tags(reader, "0028|0010", "0028|0011", "0020|0037", "0008|103e", "0008|0060")
            sizes.add((rows, cols))
            values = tuple(round(float(v), 3) for v in iop.split("\\") if v.strip()) if iop else ()
            orientations.add(values)
            orientation, description, modality = orientation or values, description or desc, modality or mod
        found.append(_Series(uid, files, description, modality, orientation, sizes, orientations))
    return found


def choose_series(found: list[_Series], folder: Path, series: str = "") -> tuple[_Series, str]:
    """The series to segment, and why: the named one, else the only volume, else a sagittal T2 (the canal is
    bright), else a sagittal T1."""
    if series:
        named = [s for s in found if s.uid == series or series.lower() in s.description.lower()]
        if len(named) != 1:
            listing = "; ".join(s.label() for s in found)
            raise DataError(folder, f"{len(named)} series match {series!r}; the series here: {listing}")
        return named[0], f"the series named {series!r}"
    volumes = [s for s in found if not s.localiser]
    if not volumes:
        raise DataError(folder, "holds only localisers or single images (" + "; ".join(s.label() for s in found)
                        + f"); a 3D series of at least {MIN_SLICES} slices is needed")
    if len(volumes) == 1:
        return volumes[0], "the only volume in the folder" + (" (a localiser set aside)" if len(found) > 1 else "")
    sagittal = [s for s in volumes if s.sagittal]
    for weighting in ("t2", "t1"):
        picked = [s for s in sagittal if s.weighting == weighting]
        if picked:
            best = max(picked, key=lambda s: len(s.files))
            others = [s.label() for s in volumes if s is not best]
            return best, (f"the sagittal {weighting.upper()} series (SPIDER's kind of input); also here: "
                          + "; ".join(others) + ". Name another with --series")
    raise DataError(folder, "holds several series and none is a sagittal T1 or T2 (" +
                    "; ".join(s.label() for s in volumes) + "); name one with --series UID")


@keeps_locale
def read_dicom_series(folder: Path, series: str = "") -> InputScan:
    """The chosen series of a DICOM folder as one 3D image, its files in slice order."""
    found = _series_in(folder)
    if not found:
        raise DataError(folder, "holds no readable DICOM series (no files with a series UID); give the folder of one "
                                "series, or an image file")
    chosen, why = choose_series(found, folder, series)
    if len(chosen.sizes) > 1 or len(chosen.orientations) > 1:
        raise DataError(folder, f"series {chosen.label()} mixes images of different sizes or orientations "
                                f"({len(chosen.sizes)} sizes, {len(chosen.orientations)} orientations); export one "
                                "acquisition at a time")
    if len(chosen.files) < MIN_SLICES:
        raise DataError(folder, f"series {chosen.label()} has {len(chosen.files)} image(s): a 2D image, not a volume")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(chosen.files)
    try:
        image = reader.Execute()
    except RuntimeError as e:
        raise DataError(folder, f"series {chosen.label()} cannot be read ({str(e).strip()[:160]})") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(folder, f"series {chosen.label()} is not a greyscale image")
    image = sitk.Cast(image, sitk.sitkFloat32)
    return InputScan(image, folder, "dicom", chosen.files, chosen.uid, chosen.description, why)


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
            "0010|0020": "KIT-1", "0008|0020": "20261205", "0008|0030": "120000", "0020|0052": generate_uid(),
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
