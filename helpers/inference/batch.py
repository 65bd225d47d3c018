"""Many scans at once: every image file and DICOM study inside a folder predicted with one model load, a progress
bar, one line per scan that could not be done (the others go on), resumable (a scan whose mask, picture and record
are still intact and whose input and model are unchanged is skipped), and one table, `OUT/summary.csv`: per scan,
the series used, the levels found by name, each structure's volume in mL, and what to check.

Outputs per scan, beside each other in OUT: `<name>.nii.gz` (the mask, SPIDER's values on the scan's own grid),
`<name>.png` (its picture, drawn by the caller: helpers/figures/contact_sheet.py), `<name>.dcm` with `seg` (DICOM SEG,
DICOM input), and `<name>.json` (the record a rerun trusts: what went in, what came out and their checksums).

Used by notebook 07 and `python -m helpers predict INPUT_FOLDER --out OUT_FOLDER`.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from helpers.core.atomic import digest, still_intact, write_image_atomic, write_text_atomic
from helpers.core.errors import DataError, KitError
from helpers.data.dicom_series import ScanSource, scans_in

SUMMARY = "summary.csv"
SHEET = "index.html"
COLUMNS = ["scan", "status", "input", "series", "series_uid", "levels", "vertebrae", "discs", "vertebra_ml",
           "disc_ml", "canal_ml", "warnings", "mask", "picture", "seg", "seconds", "error"]
RECORD_VERSION = 1


@dataclass
class BatchResult:
    """What a batch did: one row per scan (COLUMNS), and where the table and the sheet are."""

    rows: list[dict]
    out: Path
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> Path:
        return self.out / SUMMARY

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "failed"]

    def counts(self) -> str:
        done = sum(r["status"] == "predicted" for r in self.rows)
        kept = sum(r["status"] == "done before" for r in self.rows)
        warned = sum(bool(r["warnings"]) for r in self.rows if r["status"] != "failed")
        return (f"{len(self.rows)} scans: {done} predicted, {kept} done before and kept, {len(self.failed)} failed; "
                f"{warned} with something to check")


def model_fingerprint(predictor_or_run) -> dict:
    """The checkpoint a prediction came from (name, size, time): a rerun with another model redoes every scan."""
    from helpers.core.paths import RunFiles

    run = Path(getattr(predictor_or_run, "run_dir", predictor_or_run))
    files = RunFiles(run)
    path = files.checkpoint("best") if files.checkpoint("best").is_file() else files.checkpoint("last")
    if not path.is_file():
        raise DataError(run, "holds no checkpoint yet; train first")
    return {"checkpoint": str(path.resolve()), "bytes": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns}


def _finished(source: ScanSource, out: Path, model: dict, seg: bool) -> dict | None:
    """The row of a scan done before, when its record, input, model and outputs all still check out; else None."""
    record_path = out / f"{source.name}.json"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("version") != RECORD_VERSION or record.get("input") != source.fingerprint() or \
            record.get("model") != model or (seg and source.series and "seg" not in record.get("outputs", {})):
        return None
    for name, recorded in record.get("outputs", {}).items():
        if not still_intact(out / record["row"][name], recorded):
            return None
    return dict(record["row"], status="done before")


def predict_folder(folder: str | Path, run_dir: str | Path, out: str | Path, series: str = "", seg: bool = False,
                   picture: Callable | None = None, progress: bool = True, log: Callable[[str], None] = print,
                   predictor=None) -> BatchResult:
    """Predict every scan inside `folder` (helpers.data.dicom_series.scans_in: image files and DICOM studies) with
    the run's model, loaded once, into `out`; write `out/summary.csv` and return the rows. `picture(image, spider_map,
    path, title, names, note)` draws each scan's PNG (helpers.figures.contact_sheet.scan_picture); `seg` also writes
    DICOM SEG for DICOM studies. A scan that cannot be read or predicted gets one line (`log`) and a `failed` row;
    the others go on. Rerun the same call to finish what is missing: verified results are kept."""
    from tqdm.auto import tqdm

    from helpers.core.lock import folder_lock
    from helpers.core.places import writable_folder

    folder, out = Path(folder), Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "is a file; --out names the folder for the results of a folder of scans")
    sources, notes = scans_in(folder, skip=out)
    if not sources:
        raise DataError(folder, "holds no scans (no image files .nii.gz, .nii, .mha, .nrrd and no DICOM study in it "
                                "or its subfolders)")
    writable_folder(out)
    model = model_fingerprint(predictor or run_dir)
    rows: list[dict] = []
    loaded = [predictor]

    def the_predictor():
        if loaded[0] is None:
            from helpers.inference.predict import Predictor

            loaded[0] = Predictor(run_dir)  # once, and only when a scan read well needs it
        return loaded[0]

    with folder_lock(out, "predict (a folder of scans)", log=log):
        bar = tqdm(sources, desc="predict", unit="scan", disable=not progress)
        for source in bar:
            bar.set_postfix_str(source.name[-30:], refresh=False)
            row = _finished(source, out, model, seg)
            if row is None:
                row = _predict_one(source, the_predictor, out, model, series, seg, picture)
                if row["status"] == "failed":
                    (bar.write if progress else log)(f"FAILED {source.name}: {row['error']}")
            rows.append(row)
        write_text_atomic(out / SUMMARY, _csv(rows))
    return BatchResult(rows, out, notes)


def _predict_one(source: ScanSource, the_predictor: Callable, out: Path, model: dict, series: str, seg: bool,
                 picture: Callable | None) -> dict:
    """One scan: read, predict, write the mask (and SEG, picture), record; a failed row for a KitError."""
    from helpers.data.spider import require_usable
    from helpers.inference.predict import predict_scan

    start = time.perf_counter()
    row = dict.fromkeys(COLUMNS, "")
    row.update(scan=source.name, input=str(source.path))
    try:
        scan = source.read(series)
        require_usable(scan.image, source.path)
        predictor = the_predictor()
        result = predict_scan(scan, predictor)
        row.update(result.summary_row())
        outputs = {"mask": write_image_atomic(result.spider, out / f"{source.name}.nii.gz")}
        row["mask"] = f"{source.name}.nii.gz"
        if seg and scan.kind == "dicom":
            from helpers.inference.dicom_seg import write_dicom_seg

            write_dicom_seg(result.spider, scan.files, out / f"{source.name}.dcm", predictor.config["model"],
                            frames=scan.frames, log=None)
            row["seg"] = f"{source.name}.dcm"
            outputs["seg"] = digest(out / row["seg"])
        if picture is not None:
            picture(scan.image, result.spider, out / f"{source.name}.png", source.name, result.names,
                    result.check())
            row["picture"] = f"{source.name}.png"
            outputs["picture"] = digest(out / row["picture"])
    except KitError as e:
        row.update(status="failed", error=str(e), seconds=round(time.perf_counter() - start, 1))
        return row
    except Exception as e:  # noqa: BLE001 (one scan's unforeseen failure must not stop the other 199)
        row.update(status="failed", error=f"{source.path}: unexpected {type(e).__name__}: {e} (a bug in the kit? the "
                   "other scans went on)", seconds=round(time.perf_counter() - start, 1))
        return row
    row.update(status="predicted", seconds=round(time.perf_counter() - start, 1))
    record = {"version": RECORD_VERSION, "input": source.fingerprint(), "model": model, "outputs": outputs,
              "row": row}
    write_text_atomic(out / f"{source.name}.json", json.dumps(record, indent=1))
    return row


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_summary(out: str | Path) -> list[dict]:
    """The rows of `out/summary.csv`, as predict_folder wrote them."""
    path = Path(out) / SUMMARY
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        raise DataError(path, f"cannot be read ({e.strerror}); run predict on the folder first") from None
