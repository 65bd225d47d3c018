"""SPIDER's layout on disk: find series, parse their names, read them, orient them.

A dataset folder holds `images/<pid>_<seq>.mha`, `masks/<pid>_<seq>.mha` and optionally
`overview.csv`. Reading never changes a file; every problem names the file and what is wrong.

Bad values (the kit's one policy, docs/bad-values.md; `value_problems` is its only definition):
an image that holds NaN or infinite voxels, is constant, is a single slice along any axis, or has no
intensity structure (the normalisation percentiles coincide, so it would normalise to a constant) is
never given to a network. No value is replaced or guessed: `inspect` flags such a series as not for
training, `resample` and `evaluate` skip it with the file and the reason and go on with the others,
and `predict` refuses it (`require_usable`).

Used by notebooks 00, 01 and 03, and by every helper that reads a series.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from helpers.core.errors import DataError
from helpers.data.axes import canonical_values, numpy_order, orientation, orientation_of, to_canonical
from helpers.data.labels import to_structures

SEQUENCES = ("t1", "t2", "t2_SPACE")
STEM_PATTERN = re.compile(r"^(\d+)_(t1|t2|t2_SPACE)$")
NORMALISATION_PERCENTILES = (0.5, 99.5)  # per-image intensity range mapped onto [0, 1] (resample.normalise)


@dataclass(frozen=True)
class Series:
    """One SPIDER series: an image and (usually) its mask."""

    stem: str
    patient: int
    sequence: str
    image: Path | None
    mask: Path | None


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Scan:
    """What a dataset folder holds: usable series, problems found, and the overview rows."""

    root: Path
    series: list[Series]
    problems: list[Problem] = field(default_factory=list)
    overview: dict[str, dict] = field(default_factory=dict)
    notes: list[Problem] = field(default_factory=list)  # about the folder, not a series: said once

    @property
    def complete(self) -> list[Series]:
        """Series that have both an image and a mask."""
        return [s for s in self.series if s.image and s.mask]


def parse_stem(name: str) -> tuple[int, str]:
    """'12_t2_SPACE' or '12_t2_SPACE.mha' -> (12, 't2_SPACE'); ValueError for other names."""
    stem = name[:-4] if name.endswith(".mha") else name
    match = STEM_PATTERN.match(stem)
    if not match:
        raise ValueError(f"{name!r} is not a SPIDER series name (<patient>_<t1|t2|t2_SPACE>.mha)")
    return int(match.group(1)), match.group(2)


def read_overview(path: Path) -> dict[str, dict]:
    """Rows of `overview.csv` keyed by series stem (the `new_file_name` column, with or without .mha)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "new_file_name" not in reader.fieldnames:
            raise DataError(path, "has no 'new_file_name' column; is this SPIDER's overview.csv?")
        rows = {}
        for row in reader:
            name = (row.get("new_file_name") or "").strip()
            if name:
                rows[name[:-4] if name.endswith(".mha") else name] = row
    return rows


def _stems(folder: Path, problems: list[Problem]) -> dict[str, Path]:
    found = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if not path.is_file() or path.suffix != ".mha":
            problems.append(Problem(path, "not a .mha file; ignored"))
            continue
        try:
            parse_stem(path.name)
        except ValueError as e:
            problems.append(Problem(path, f"{e}; ignored"))
            continue
        found[path.stem] = path
    return found


def scan_dataset(root: str | Path) -> Scan:
    """Find the series in a SPIDER-layout folder. Raises DataError when there is nothing usable."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "folder does not exist; make data with notebook 00 "
                              "(or `python -m helpers synth --out DIR`)")
    if not (root / "images").is_dir():
        raise DataError(root, "has no images/ folder; a SPIDER dataset holds images/, masks/ "
                              "and overview.csv")
    problems: list[Problem] = []
    images = _stems(root / "images", problems)
    masks = _stems(root / "masks", problems)
    if not images:
        raise DataError(root / "images", "holds no <patient>_<sequence>.mha series")
    series = []
    for stem in sorted(images.keys() | masks.keys(), key=lambda s: parse_stem(s)):
        patient, sequence = parse_stem(stem)
        image, mask = images.get(stem), masks.get(stem)
        if image and not mask:
            problems.append(Problem(image, f"has no mask (expected masks/{stem}.mha)"))
        if mask and not image:
            problems.append(Problem(mask, f"has no image (expected images/{stem}.mha)"))
            continue
        series.append(Series(stem, patient, sequence, image, mask))
    overview, notes = {}, []
    if (root / "overview.csv").is_file():
        overview = read_overview(root / "overview.csv")
        orphans = sorted(set(overview) - images.keys())
        if orphans:
            notes.append(Problem(root / "overview.csv", f"lists {len(orphans)} series with no image in images/ ("
                                 + ", ".join(orphans[:3]) + (", ..." if len(orphans) > 3 else "") + "); ignored"))
    else:
        notes.append(Problem(root / "overview.csv", "not found: each series' SPIDER subset is unknown (the kit splits "
                                                    "by patient anyway)"))
    return Scan(root, series, problems, overview, notes)


def read_image(path: str | Path) -> sitk.Image:
    """Read a 3D image with SimpleITK, or raise DataError naming the file and the reason."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty (0 bytes); copy or download it again")
    from helpers.core.itk import itk_messages

    error = None
    with itk_messages() as messages:  # ITK's warnings are not printed above the kit's line
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as e:
            error = e
    if error is not None:
        raise DataError(path, f"cannot be read as an image: {read_problem(error, messages)}")
    if image.GetDimension() != 3:
        raise DataError(path, f"is a {image.GetDimension()}D image; SPIDER series are 3D volumes")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(path, "has several components per voxel; expected a scalar image")
    return image


def read_problem(error: RuntimeError, messages: list[str] | None = None) -> str:
    """Why ITK could not read a file, in its own words and whole (helpers/core/itk.py), with what its reader printed
    (`messages`, from itk_messages) where that says more, and a hint where the words name the cause."""
    from helpers.core.itk import itk_reason

    reason = itk_reason(error)
    printed = " ".join(messages or [])
    short = re.search(r"data not read completely\s*ideal = (\d+) : actual = (\d+)", printed)
    if short:  # MetaIO's own words; ITK's exception then blames the file's absence
        return (f"truncated: {int(short.group(2)):,} of its {int(short.group(1)):,} bytes of voxel data are there "
                f"(MetaIO: \"{short.group(0)}\"); copy it again")
    lowered = reason.lower()
    if "zero-valued spacing" in lowered:
        return f"{reason} (ITK's words: the header's spacing has a zero; correct the header, e.g. ElementSpacing)"
    if "unable to determine imageio reader" in lowered:
        return f"{reason} (ITK's words: not an image format SimpleITK reads, or the file's start is damaged)"
    extra = f"; the reader printed: {printed}" if printed else ""
    return f"{reason} (ITK's words{extra})"


def grid_difference(a: sitk.Image, b: sitk.Image, tol: float = 1e-3) -> str | None:
    """None when two images share one voxel grid, else what differs."""
    checks = [("size", a.GetSize(), b.GetSize()), ("spacing", a.GetSpacing(), b.GetSpacing()),
              ("origin", a.GetOrigin(), b.GetOrigin()), ("direction", a.GetDirection(), b.GetDirection())]
    for name, x, y in checks:
        if not np.allclose(x, y, atol=tol * max(1.0, float(np.max(np.abs(x))))):
            fmt = lambda v: "(" + ", ".join(f"{t:g}" for t in v) + ")"  # noqa: E731
            return f"{name} {fmt(y)} differs from the image's {fmt(x)}"
    return None


def read_mask(path: str | Path, image: sitk.Image | None = None) -> sitk.Image:
    """Read a mask; check it holds integers and, given its image, that it lies on the image's grid."""
    mask = read_image(path)
    if mask.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        arr = sitk.GetArrayViewFromImage(mask)
        if not np.isfinite(arr).all():
            raise DataError(path, "holds NaN or infinite values; a mask holds SPIDER label values")
        if not np.array_equal(arr, np.round(arr)):
            raise DataError(path, "holds non-integer values; a mask holds SPIDER label values")
    if image is not None:
        diff = grid_difference(image, mask)
        if diff:
            raise DataError(path, f"mask is on another grid than its image: {diff}")
    return mask


def structure_mask(mask: sitk.Image) -> sitk.Image:
    """A SPIDER mask as a structure map (0 background, 1 vertebra, 2 disc, 3 canal) on the same grid."""
    structures = sitk.GetImageFromArray(to_structures(sitk.GetArrayViewFromImage(mask)))
    structures.CopyInformation(mask)
    return structures


def tail_percentiles(values: np.ndarray, q=NORMALISATION_PERCENTILES) -> list[float]:
    """np.percentile(values, q) (finite values, linear interpolation), ~4x less CPU on a whole series when q lies
    in the tails: each percentile's two order statistics are taken from the values beyond a threshold read off
    a strided sample (all values below it are the smallest ones, so this is exact), np.percentile on everything
    when the threshold misses them."""
    flat = np.ravel(values)
    n = flat.size
    sample = flat[:: max(1, n // 100_000)]
    out = []
    for p in q:
        position = p / 100 * (n - 1)
        k = int(position)
        ranks = [k, min(k + 1, n - 1)]
        low = p <= 50  # look below a threshold 1 percentile further in, else above one
        threshold = np.percentile(sample, min(p + 1, 100) if low else max(p - 1, 0))
        tail = flat[flat <= threshold] if low else flat[flat >= threshold]
        first = 0 if low else n - tail.size  # rank of the tail's smallest value
        if tail.size == 0 or ranks[1] >= first + tail.size or ranks[0] < first:
            return [float(v) for v in np.percentile(flat, q)]
        a, b = (float(v) for v in np.partition(tail, [r - first for r in ranks])[[r - first for r in ranks]])
        out.append(a + (position - k) * (b - a))
    return out


def value_problems(image: sitk.Image) -> list[str]:
    """Why an image must not reach a network (empty when it may): the kit's bad-value policy.

    Non-finite voxels (counted), a constant image, a single slice along any axis, and no intensity
    structure: the NORMALISATION_PERCENTILES coincide, so per-image normalisation gives a constant.
    """
    problems = []
    size = image.GetSize()
    if min(size) < 2:
        problems.append(f"a single slice along one axis (size {' x '.join(map(str, size))}); "
                        "a 3D network needs a volume")
    arr = sitk.GetArrayViewFromImage(image)
    values = arr
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        n_bad = arr.size - int(np.count_nonzero(finite))
        if n_bad:
            n_nan = int(np.count_nonzero(np.isnan(arr)))
            kinds = " and ".join(f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_bad - n_nan, "infinite")) if n)
            problems.append(f"holds {kinds} voxels ({100 * n_bad / arr.size:.1f} % of the volume)")
            values = arr[finite]
    if values.size == 0:
        return problems
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        problems.append(f"constant image (every voxel is {lo:g})")
    else:
        p_lo, p_hi = tail_percentiles(values, NORMALISATION_PERCENTILES)
        if p_lo == p_hi:
            share = 100 * np.count_nonzero(values == p_lo) / values.size
            problems.append(f"no intensity structure: {share:.1f} % of the voxels hold {p_lo:g}, so "
                            "normalisation would give a constant image")
    return problems


def require_usable(image: sitk.Image, path: str | Path) -> sitk.Image:
    """`image` if it may reach a network, else DataError naming `path` and every reason."""
    problems = value_problems(image)
    if problems:
        raise DataError(path, "; ".join(problems) + "; not used (see docs/bad-values.md)")
    return image


def read_series(series: Series) -> tuple[sitk.Image, sitk.Image | None]:
    """Image and mask of one series, geometry kept; mask is None when the series has none."""
    image = read_image(series.image)
    mask = read_mask(series.mask, image) if series.mask else None
    return image, mask


def read_header(path: str | Path) -> sitk.ImageFileReader:
    """A reader holding a file's header (size, spacing, direction), without reading its voxels."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return reader


def file_orientation(path: str | Path) -> str:
    """Orientation from a file's header only."""
    return orientation_of(read_header(path).GetDirection())


def header_spacing(path: str | Path) -> tuple[float, float, float]:
    """Spacing in mm in the kit's order (AP, SI, LR), from a file's header only (fast)."""
    reader = read_header(path)
    return tuple(float(v) for v in canonical_values(reader.GetSpacing(), orientation_of(reader.GetDirection())))


def canonical_array(image: sitk.Image) -> np.ndarray:
    """Array (sagittal slice, row, column): each [k] shows superior up and anterior left."""
    return sitk.GetArrayFromImage(to_canonical(image))


def canonical_spacing(image: sitk.Image) -> tuple[float, float, float]:
    """Spacing in mm along the axes of `canonical_array` (left-right, superior-inferior, anterior-posterior)."""
    return tuple(float(v) for v in numpy_order(canonical_values(image.GetSpacing(), orientation(image))))
