"""Every DICOM series in what a user hands over (a series folder, a study or patient folder, a nested PACS or CD
export such as DICOM/PA000001/ST000001/SE000002/IM000001, a folder with a DICOMDIR, one enhanced multi-frame
file), listed and chosen: the sagittal T2, else T1, said by description and UID with the reason; read as one volume.

Files are found by their content, not their names (exports often have no suffix); a DICOMDIR, where present, says
which files make the export. Headers are read with pydicom; pixels with SimpleITK (GDCM), so every transfer syntax
GDCM decodes is read (JPEG, JPEG 2000, JPEG-LS, RLE). Single-frame series are sorted along their slice normal;
enhanced multi-frame MR (one file holding every slice, what current scanners export) is read as the volume it is,
each frame tied to its slice. ITK's warnings never reach the terminal (helpers/core/itk.py): what they mean is
said in the kit's own words.

Used by notebook 07 and `python -m helpers predict` (through helpers/data/dicom_series.py `read_scan`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.core.errors import DataError

LOCALISER_WORDS = ("loc", "scout", "survey", "localizer", "localiser", "3-plane", "3plane", "tripilot", "aahead",
                   "aascout", "pilot")
MIN_SLICES = 3  # fewer images in a series: a localiser or a single slice, not a volume
NOT_DICOM_SUFFIXES = {".txt", ".xml", ".json", ".csv", ".md", ".html", ".htm", ".pdf", ".png", ".jpg", ".jpeg",
                      ".gif", ".bmp", ".exe", ".dll", ".ini", ".inf", ".bat", ".sh", ".zip", ".gz", ".nii", ".mha",
                      ".mhd", ".nrrd", ".nhdr", ".raw", ".py", ".ipynb", ".js", ".css", ".jar", ".log"}
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
HEADER_TAGS = ["SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "Modality",
               "SeriesDescription", "SeriesNumber", "ImageType", "Rows", "Columns", "ImageOrientationPatient",
               "ImagePositionPatient", "NumberOfFrames", "SliceThickness", "SpacingBetweenSlices", "PixelSpacing",
               "EchoTime", "RepetitionTime", "InversionTime", "ScanningSequence", "SequenceName",
               "FrameOfReferenceUID", "SamplesPerPixel", "SharedFunctionalGroupsSequence", "StudyDescription",
               "StudyDate"]
PLANES = ("sagittal", "coronal", "axial")  # the slice normal along patient x (left-right), y (AP), z (SI)
OBLIQUE_DEGREES = 20.0  # a slice normal further than this from the nearest patient axis: an oblique acquisition


@dataclass
class FoundSeries:
    """One DICOM series as its headers describe it (files not yet in slice order)."""

    uid: str
    files: list[Path]
    description: str = ""
    number: str = ""
    modality: str = ""
    study_uid: str = ""
    study: str = ""  # the study's description and date, for a listing
    patient: str = ""
    orientation: tuple[float, ...] = ()  # ImageOrientationPatient: row and column direction cosines
    sizes: set[tuple[int, int]] = field(default_factory=set)
    orientations: set[tuple[float, ...]] = field(default_factory=set)
    positions: dict[Path, tuple[float, ...]] = field(default_factory=dict)  # single-frame: ImagePositionPatient
    frames: int = 0  # images in the series: files, or the multi-frame file's frames
    multiframe: bool = False
    image_type: str = ""
    thickness: float = 0.0  # SliceThickness, mm (0: not given)
    echo_time: float = 0.0
    repetition_time: float = 0.0
    inversion_time: float = 0.0
    sequence: str = ""  # ScanningSequence / SequenceName
    frame_of_reference: str = ""
    samples_per_pixel: int = 1

    @property
    def normal(self) -> np.ndarray | None:
        if len(self.orientation) != 6:
            return None
        n = np.cross(self.orientation[:3], self.orientation[3:])
        return n / (np.linalg.norm(n) or 1.0)

    @property
    def plane(self) -> str:
        """'sagittal', 'coronal', 'axial', 'oblique sagittal' (etc., the normal > 20 degrees off the nearest axis), or
        '' (no orientation in the headers)."""
        return plane_of(self.normal)

    @property
    def sagittal(self) -> bool:
        return self.plane.endswith("sagittal")

    @property
    def localiser(self) -> bool:
        text = f"{self.description} {self.image_type}".lower()
        return self.frames < MIN_SLICES or any(w in text for w in LOCALISER_WORDS) or len(self.orientations) > 2

    @property
    def mr(self) -> bool:
        return self.modality in ("MR", "")

    @property
    def weighting(self) -> str:
        """'T2', 'T1', 'PD', 'STIR', 'FLAIR', 'DWI' or '' from the description, else from TR/TE (ms)."""
        text = self.description.lower().replace(" ", "").replace("_", "").replace("-", "")
        for word, name in (("stir", "STIR"), ("tirm", "STIR"), ("flair", "FLAIR"), ("dwi", "DWI"), ("diff", "DWI"),
                           ("adc", "DWI"), ("t2", "T2"), ("t1", "T1"), ("pd", "PD")):
            if word in text:
                return name
        if self.inversion_time and self.inversion_time < 300:
            return "STIR"
        tr, te = self.repetition_time, self.echo_time
        if tr and te:
            if tr < 1000 and te < 30:
                return "T1"
            if tr >= 1500 and te >= 60:
                return "T2"
            if tr >= 1500 and te < 40:
                return "PD"
        return ""

    def folder(self, root: Path) -> str:
        """Where its files are, relative to `root` ('.' for root itself)."""
        parents = {f.parent for f in self.files}
        common = Path(os.path.commonpath([str(p) for p in parents])) if parents else root
        try:
            rel = common.relative_to(root)
        except ValueError:
            return str(common)
        return str(rel) if str(rel) != "." else "."

    def label(self) -> str:
        """"series 2 'T2 TSE SAG' (15 sagittal images, UID 1.2.3...)": by number, description and UID, as a
        radiographer checks it."""
        kind = f"{self.plane} " if self.plane else ""
        what = "frames in one file" if self.multiframe else "images"
        number = f"series {self.number} " if self.number else "series "
        return f"{number}'{self.description or 'no description'}' ({self.frames} {kind}{what}, UID {self.uid})"

    def row(self, root: Path) -> dict:
        """One line of a listing: where, what, orientation, images, UID."""
        return {"folder": self.folder(root), "series": self.number, "description": self.description,
                "modality": self.modality, "orientation": self.plane or "?", "weighting": self.weighting,
                "images": self.frames, "multi-frame": self.multiframe, "localiser": self.localiser, "uid": self.uid}


def plane_of(normal: np.ndarray | None) -> str:
    """The plane whose normal is `normal` (patient LPS): 'sagittal', 'coronal', 'axial', 'oblique ...' or ''."""
    if normal is None or not np.isfinite(normal).all() or not np.any(normal):
        return ""
    n = np.abs(np.asarray(normal, dtype=float)) / np.linalg.norm(normal)
    axis = int(np.argmax(n))
    angle = float(np.degrees(np.arccos(min(1.0, n[axis]))))
    return ("oblique " if angle > OBLIQUE_DEGREES else "") + PLANES[axis]


def is_dicom_file(path: Path) -> bool:
    """A DICOM file by its content (the 'DICM' marker at byte 128), whatever its name."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _floats(value, count: int = 0) -> tuple[float, ...]:
    """A DICOM number or multi-value as floats; () where absent, unreadable, or not `count` long."""
    if value is None:
        return ()
    try:
        values = tuple(round(float(v), 4) for v in ([value] if isinstance(value, str | int | float) else value))
    except (TypeError, ValueError):
        return ()
    return values if not count or len(values) == count else ()


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _first(ds, *path: str):
    """A nested value: _first(ds, 'SharedFunctionalGroupsSequence', 'PlaneOrientationSequence',
    'ImageOrientationPatient') -> the first item's value at each level, or None."""
    node = ds
    for key in path:
        node = getattr(node, key, None) if node is not None else None
        if node is None:
            return None
        if key.endswith("Sequence"):
            node = node[0] if len(node) else None
    return node


def _candidate_files(folder: Path) -> list[Path]:
    """Every file under `folder` that may be DICOM (hidden files and known other kinds left out), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or name.upper() == "DICOMDIR" or _suffix(path) in NOT_DICOM_SUFFIXES:
                continue
            found.append(path)
    return found


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def dicomdir_of(path: Path) -> Path | None:
    """The DICOMDIR `path` is, or that lies in the folder `path`."""
    if path.is_file() and path.name.upper() == "DICOMDIR":
        return path
    if path.is_dir():
        return next((p for p in path.iterdir() if p.name.upper() == "DICOMDIR" and p.is_file()), None)
    return None


def files_of_dicomdir(dicomdir: Path) -> tuple[list[Path], list[str]]:
    """The image files a DICOMDIR lists (pydicom's FileSet), and notes on what it lists that is not there."""
    from pydicom.fileset import FileSet

    try:
        with warnings.catch_warnings():  # pydicom warns of each listed file that is missing: said once, below
            warnings.simplefilter("ignore")
            fileset = FileSet(dicomdir)
    except Exception as e:  # noqa: BLE001 (pydicom raises many kinds for a damaged DICOMDIR)
        return [], [f"{dicomdir}: not a readable DICOMDIR ({type(e).__name__}: {e}); the folder was searched instead"]
    files, missing = [], []
    for instance in fileset:
        path = Path(instance.path)
        (files if path.is_file() else missing).append(path)
    notes = [f"{dicomdir}: lists {len(missing)} file(s) that are not there (e.g. {missing[0]}); the folder was "
             "searched instead"] if missing else []
    return files, notes


def find_series(path: str | Path) -> tuple[list[FoundSeries], list[str]]:
    """Every DICOM series in a folder and its subfolders (or those a DICOMDIR lists), and notes on what was passed
    over. The DICOMDIR is used where it lists every file that is there; else every file is looked at."""
    path = Path(path)
    root = path.parent if path.is_file() else path
    notes: list[str] = []
    dicomdir = dicomdir_of(path)
    files: list[Path] = []
    if dicomdir is not None:
        files, notes = files_of_dicomdir(dicomdir)
    if not files or notes:
        files = [path] if path.is_file() and dicomdir is None else _candidate_files(root)
    by_uid: dict[str, FoundSeries] = {}
    unreadable = 0
    seen: dict[str, Path] = {}  # SOP instance UID -> the first file holding it
    copies = []
    for name in files:
        ds = _header(name)
        if ds is None:
            unreadable += 1
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "") or "")
        if not uid or str(getattr(ds, "SOPClassUID", "")) == DICOMDIR_CLASS:
            continue
        instance = str(getattr(ds, "SOPInstanceUID", "") or "")
        if instance and instance in seen:
            copies.append(name)
            continue
        seen[instance] = name
        series = by_uid.setdefault(uid, FoundSeries(uid, []))
        _add(series, name, ds)
    found = sorted(by_uid.values(), key=lambda s: (s.study_uid, _series_number(s), s.uid))
    if unreadable and found:
        notes.append(f"{unreadable} file(s) that are not DICOM images were passed over")
    if copies:
        notes.append(f"{len(copies)} file(s) are copies of images already found (the same SOP instance UID, e.g. "
                     f"{copies[0]}) and were passed over")
    return found, notes


def _series_number(s: FoundSeries) -> float:
    try:
        return float(s.number)
    except ValueError:
        return float("inf")


def _header(path: Path):
    """The header of a DICOM file (no pixels), or None for a file that is not one."""
    import pydicom

    marked = is_dicom_file(path)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=HEADER_TAGS, force=not marked)
    except Exception:  # noqa: BLE001 (any file may be here: pydicom raises many kinds on what is not DICOM)
        return None
    if not marked and not (getattr(ds, "SeriesInstanceUID", None) and getattr(ds, "Rows", None)):
        return None
    return ds


def _add(series: FoundSeries, path: Path, ds) -> None:
    series.files.append(path)
    frames = int(_number(getattr(ds, "NumberOfFrames", 1)) or 1)
    iop = _floats(getattr(ds, "ImageOrientationPatient", None), 6) or _floats(
        _first(ds, "SharedFunctionalGroupsSequence", "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
    if frames > 1:
        series.multiframe = True
    series.frames += frames
    series.sizes.add((int(_number(getattr(ds, "Rows", 0))), int(_number(getattr(ds, "Columns", 0)))))
    series.orientations.add(tuple(round(v, 3) for v in iop))
    position = _floats(getattr(ds, "ImagePositionPatient", None), 3)
    if position and frames == 1:
        series.positions[path] = position
    if series.description or len(series.files) > 1:
        return  # the series' own attributes: from its first file
    series.description = str(getattr(ds, "SeriesDescription", "") or "").strip()
    series.number = str(getattr(ds, "SeriesNumber", "") or "").strip()
    series.modality = str(getattr(ds, "Modality", "") or "").strip()
    series.study_uid = str(getattr(ds, "StudyInstanceUID", "") or "")
    series.study = " ".join(str(getattr(ds, k, "") or "") for k in ("StudyDescription", "StudyDate")).strip()
    series.patient = str(getattr(ds, "PatientID", "") or "")
    series.orientation = iop
    series.image_type = "\\".join(getattr(ds, "ImageType", []) or [])
    series.thickness = _number(getattr(ds, "SliceThickness", 0)) or _number(
        _first(ds, "SharedFunctionalGroupsSequence", "PixelMeasuresSequence", "SliceThickness"))
    series.echo_time = _number(getattr(ds, "EchoTime", 0)) or _number(
        _first(ds, "SharedFunctionalGroupsSequence", "MREchoSequence", "EffectiveEchoTime"))
    series.repetition_time = _number(getattr(ds, "RepetitionTime", 0)) or _number(
        _first(ds, "SharedFunctionalGroupsSequence", "MRTimingAndRelatedParametersSequence", "RepetitionTime"))
    series.inversion_time = _number(getattr(ds, "InversionTime", 0))
    series.sequence = " ".join(str(getattr(ds, k, "") or "") for k in ("ScanningSequence", "SequenceName")).strip()
    series.frame_of_reference = str(getattr(ds, "FrameOfReferenceUID", "") or "")
    series.samples_per_pixel = int(_number(getattr(ds, "SamplesPerPixel", 1)) or 1)


# ---------------------------------------------------------------- the choice
def choose_series(found: list[FoundSeries], where: Path, series: str = "") -> tuple[FoundSeries, str]:
    """The series to segment, and why: the one `series` names (its UID, its series number, or a word of its
    description), else the only MR volume, else the sagittal T2 (the canal is bright, as in most of SPIDER), else the
    sagittal T1; a study where none fits names the ones to choose from."""
    choose = ("Choose with --series and its UID, its series number or a word of its description (in notebook 07: "
              "`series`)")
    if series:
        named = [s for s in found if s.uid == series] or [s for s in found if s.number == series] or [
            s for s in found if series.lower() in s.description.lower()]
        if len(named) != 1:
            raise DataError(where, f"{len(named)} series match {series!r}; the series here: {_listing(found)}. "
                                   + choose.replace("Choose with", "Name one by"))
        return named[0], f"the series named by {series!r}"
    volumes = [s for s in found if s.mr and not s.localiser]
    if not volumes:
        raise DataError(where, f"holds only localisers or single images, or no MR ({_listing(found)}); "
                               f"a 3D MR series of at least {MIN_SLICES} slices is needed")
    set_aside = _set_aside(found, volumes)
    if len(volumes) == 1:
        return volumes[0], "the only MR volume here" + set_aside
    for weighting in ("T2", "T1"):
        picked = [s for s in volumes if s.plane == "sagittal" and s.weighting == weighting]
        if picked:
            best = max(picked, key=lambda s: s.frames)
            also = f" with the most slices of {len(picked)}" if len(picked) > 1 else ""
            return best, (f"the sagittal {weighting} series{also} (SPIDER's kind of input"
                          f"{'; T2 first: the canal is bright' if weighting == 'T2' else ', T2 missing'})"
                          + set_aside)
    raise DataError(where, f"holds {len(volumes)} MR volumes and none is a sagittal T1 or T2 ({_listing(volumes)}). "
                           + choose)


def _set_aside(found: list[FoundSeries], volumes: list[FoundSeries]) -> str:
    others = [s for s in found if s not in volumes]
    return f"; {len(others)} localiser(s) or non-MR series set aside" if others else ""


def _listing(found: list[FoundSeries]) -> str:
    return "; ".join(s.label() for s in found)


def listing(found: list[FoundSeries], root: Path, chosen: FoundSeries | None = None) -> str:
    """Every series found, one line each (folder, series number, description, orientation, images, UID), the one
    used marked."""
    lines = []
    for s in found:
        mark = "used ->" if s is chosen else "       "
        what = ("localiser" if s.localiser else f"not MR ({s.modality})" if not s.mr else s.weighting or "?")
        kind = f"{s.frames} {'frames (multi-frame)' if s.multiframe else 'images'}"
        lines.append(f"  {mark} {s.folder(root)}: series {s.number or '?'} '{s.description or 'no description'}', "
                     f"{s.plane or 'orientation ?'}, {what}, {kind}, UID {s.uid}")
    return "\n".join(lines)


# ---------------------------------------------------------------- reading one series
@dataclass
class SeriesImage:
    """A chosen series read as one volume: the image, its files in slice order (single-frame), or its one file and
    the frame shown on each slice (multi-frame), and what the reading found worth saying."""

    image: object  # sitk.Image
    files: list[str]
    frames: list[int]  # multi-frame: the file's frame (0-based) on each image slice; [] for single-frame
    notes: list[str] = field(default_factory=list)


def read_found(series: FoundSeries, where: Path) -> SeriesImage:
    """The series as one float32 volume; DataError naming `where` and the series for what cannot be a volume."""
    if series.samples_per_pixel != 1:
        raise DataError(where, f"{series.label()} is not a greyscale image")
    if len(series.sizes) > 1 or len({o for o in series.orientations if o}) > 1:
        raise DataError(where, f"{series.label()} mixes images of different sizes or orientations "
                               f"({len(series.sizes)} sizes, {len(series.orientations)} orientations); export one "
                               "acquisition at a time")
    if series.frames < MIN_SLICES:
        raise DataError(where, f"{series.label()} has {series.frames} image(s): a 2D image, not a volume")
    if series.multiframe:
        if len(series.files) != 1:
            raise DataError(where, f"{series.label()} is spread over {len(series.files)} files, some of them "
                                   "multi-frame; export one acquisition at a time")
        return _read_multiframe(series, where)
    return _read_single_frames(series, where)


def _read_single_frames(series: FoundSeries, where: Path) -> SeriesImage:
    import SimpleITK as sitk

    from helpers.core.itk import itk_messages, itk_reason

    files, notes = _in_slice_order(series, where)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    with itk_messages():
        try:
            image = reader.Execute()
        except RuntimeError as e:
            raise DataError(where, f"{series.label()} cannot be read: {itk_reason(e)}") from None
    return SeriesImage(_greyscale(image, series, where), [str(f) for f in files], [], notes)


def _in_slice_order(series: FoundSeries, where: Path) -> tuple[list[Path], list[str]]:
    """The files sorted along the slice normal; DataError where two lie at one position (several echoes or times in
    one series); a note where the slices are unevenly spaced (missing slices)."""
    normal = series.normal
    if normal is None or len(series.positions) != len(series.files):
        return sorted(series.files), ["the images carry no position: taken in file-name order"]
    where_along = {f: float(np.dot(series.positions[f], normal)) for f in series.files}
    files = sorted(series.files, key=lambda f: (where_along[f], str(f)))
    steps = np.diff([where_along[f] for f in files])
    if (np.abs(steps) < 1e-3).any():
        positions = len({round(v, 3) for v in where_along.values()})
        raise DataError(where, f"{series.label()} holds {len(files)} images at {positions} positions (several "
                               "echoes, contrasts or time points in one series); export one of them as its own series")
    notes = []
    if len(steps) and steps.max() - steps.min() > 0.1 * np.median(steps):
        notes.append(f"slices unevenly spaced ({steps.min():.2f} to {steps.max():.2f} mm apart: missing slices?); "
                     "the volume assumes even spacing")
    return files, notes


def _read_multiframe(series: FoundSeries, where: Path) -> SeriesImage:
    """One enhanced (or legacy-converted) multi-frame file as a volume (GDCM orders the frames by position); each
    frame's position (per-frame functional groups) is mapped onto the volume's slices."""
    import pydicom
    import SimpleITK as sitk

    from helpers.core.itk import itk_messages, itk_reason

    path = series.files[0]
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    with itk_messages():
        try:
            image = reader.Execute()
        except RuntimeError as e:
            raise DataError(path, f"{series.label()} cannot be read: {itk_reason(e)}") from None
    if image.GetDimension() != 3 or image.GetDepth() != series.frames:
        raise DataError(path, f"{series.label()} reads as {image.GetSize()} voxels, not {series.frames} "
                              "slices; this multi-frame file cannot be read as one volume")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    frames = []
    for item in getattr(ds, "PerFrameFunctionalGroupsSequence", []) or []:
        position = _floats(_first(item, "PlanePositionSequence", "ImagePositionPatient"), 3)
        if not position:
            break
        index = image.TransformPhysicalPointToContinuousIndex(position)[2]
        frames.append(index)
    order = [int(round(v)) for v in frames]
    if len(order) != series.frames or sorted(order) != list(range(series.frames)) or max(
            abs(a - b) for a, b in zip(frames, order, strict=True)) > 0.1:
        raise DataError(path, f"{series.label()}: its frames' positions do not make one evenly spaced stack; "
                              "export the series as single images (classic DICOM) instead")
    by_slice = [0] * series.frames
    for frame, slice_index in enumerate(order):
        by_slice[slice_index] = frame
    return SeriesImage(_greyscale(image, series, path), [str(path)], by_slice, [])


def _greyscale(image, series: FoundSeries, where: Path):
    import SimpleITK as sitk

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(where, f"{series.label()} is not a greyscale image")
    return sitk.Cast(image, sitk.sitkFloat32)
