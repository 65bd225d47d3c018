"""DICOM SEG for a prediction on a DICOM series (highdicom): one segment per vertebra, disc and the spinal canal,
SNOMED CT coded, referencing the source series and on its geometry, so that a PACS viewer or 3D Slicer shows it
over the scan it came from. Single-frame series and enhanced multi-frame files alike; a series without a Frame of
Reference UID gets one in the SEG (said), never a traceback.

Used by notebook 07 and `python -m helpers predict` when the input is a DICOM folder and `--out` ends in .dcm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from helpers.core.atomic import atomic_path
from helpers.core.errors import KitError
from helpers.data.labels import label_name, name_levels, structure_of

# SNOMED CT codes of the three structures (CID 7150 category: anatomical structure)
STRUCTURE_CODES = {
    "vertebra": ("51282000", "Vertebra"),
    "disc": ("360499006", "Intervertebral disc structure"),
    "canal": ("61853006", "Spinal canal structure"),
}
SERIES_DESCRIPTION = "Lumbar spine segmentation (spider-unetr-kit, research use)"


def _code(structure: str):
    from pydicom.sr.coding import Code

    value, meaning = STRUCTURE_CODES[structure]
    return Code(value, "SCT", meaning)


def segment_values(spider_map: sitk.Image) -> list[int]:
    """The SPIDER values present in a map, one DICOM segment each, bottom-up within each structure."""
    return [int(v) for v in np.unique(sitk.GetArrayViewFromImage(spider_map)) if v]


def segment_labels(values: list[int]) -> dict[int, str]:
    """Each segment's label: SPIDER's name, with the anatomical level where it can be named (levels.py)."""
    names, _ = name_levels(values)
    return {v: f"{label_name(v)} ({names[v]})" if v in names else label_name(v) for v in values}


def write_dicom_seg(spider_map: sitk.Image, source_files: list[str], out: str | Path, model: str = "UNETR",
                    version: str = "", frames: list[int] | None = None, log=print) -> Path:
    """A DICOM SEG of `spider_map` (SPIDER values on the grid of the series read from `source_files`, in that
    order; or, with `frames`, of the one multi-frame file whose frame frames[k] is the map's slice k) written
    atomically to `out`. A series without a Frame of Reference UID (SimpleITK's own DICOM-writing examples leave it
    out; the SEG's standard requires one) gets one made from its series UID, the same each time, in the SEG only:
    the SEG is tied to its images by their SOP instance UIDs, and the source files are not changed (said in one
    line through `log`)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    arr = sitk.GetArrayFromImage(spider_map)  # (slices, rows, columns): slice i is source_files[i] (or frame)
    sources = [pydicom.dcmread(f) for f in source_files]
    count = len(frames) if frames else len(sources)
    if arr.shape[0] != count or arr.shape[1:] != (sources[0].Rows, sources[0].Columns) or (
            frames and len(sources) != 1):
        raise KitError(f"the mask {arr.shape} is not on the grid of its {count} source images")
    if frames:
        by_frame = np.empty_like(arr)
        by_frame[np.asarray(frames)] = arr  # the file's frame order
        arr = by_frame
    values = segment_values(spider_map)
    if not values:
        raise KitError("the prediction is empty: there is nothing to write as DICOM SEG")
    _frame_of_reference(sources, log)
    labels = segment_labels(values)
    algorithm = hd.AlgorithmIdentificationSequence(name=f"spider-unetr-kit {model}", version=version or "0",
                                                   family=codes.cid7162.ArtificialIntelligence)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=i, segment_label=labels[v], segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=_code(structure_of(v)), algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm, tracking_uid=hd.UID(), tracking_id=f"SPIDER label {v}")
        for i, v in enumerate(values, start=1)]
    pixels = np.stack([arr == v for v in values], axis=-1).astype(np.uint8)  # (frames, rows, columns, segments)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=9000,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="spider-unetr-kit",
        manufacturer_model_name=model, software_versions=version or "0", device_serial_number="0",
        series_description=SERIES_DESCRIPTION)
    out = Path(out)
    with atomic_path(out) as tmp:
        seg.save_as(tmp)
    return out


def _frame_of_reference(sources: list, log) -> None:
    """Give source images without a Frame of Reference UID (in memory only) one made from their series UID."""
    from pydicom.uid import generate_uid

    missing = [ds for ds in sources if not getattr(ds, "FrameOfReferenceUID", "")]
    if not missing:
        return
    series_uid = str(sources[0].SeriesInstanceUID)
    uid = generate_uid(entropy_srcs=[series_uid, "spider-unetr-kit frame of reference"])
    for ds in missing:
        ds.FrameOfReferenceUID = uid
    if log is not None:
        log(f"note: series {series_uid} has no Frame of Reference UID (DICOM SEG requires one): the SEG carries {uid}, "
            "made from the series UID, and is tied to the images by their SOP instance UIDs; your files are unchanged")


def read_dicom_seg(path: str | Path, source_files: list[str], frames: list[int] | None = None
                   ) -> dict[str, np.ndarray]:
    """Each segment of a DICOM SEG as a boolean array in the order of `source_files` (or, for a multi-frame source,
    of `frames`: the file's frame on each slice), keyed by its label."""
    import highdicom as hd
    import pydicom

    seg = hd.seg.segread(str(path))
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in source_files]
    out = {}
    for number in seg.segment_numbers:
        label = seg.get_segment_description(number).segment_label
        if frames:
            volume = seg.get_pixels_by_source_frame(uids[0], source_frame_numbers=[f + 1 for f in frames],
                                                    segment_numbers=[number], combine_segments=False,
                                                    assert_missing_frames_are_empty=True)
        else:
            volume = seg.get_pixels_by_source_instance(uids, segment_numbers=[number], combine_segments=False)
        out[label] = volume[..., 0].astype(bool)
    return out
