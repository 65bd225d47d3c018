"""How fast `python -m helpers predict FOLDER --out FOLDER` goes, and how much memory it takes, on this machine:
SPIDER-sized series (the real samples in ../shared/real-samples, each written twice: once as the .mha file, once as
a DICOM series; and the series of two real-size synthetic patients) and one large series (1024 x 1024 in-plane x 60
slices of 0.3 x 0.3 x 1.5 mm, resampled from a real-size synthetic series). Each batch runs as its own process under
`/usr/bin/time -v` (peak resident memory); scans a minute are counted from the per-scan seconds in summary.csv (the
model's load and Python's start apart), and from the wall time.

`python -m tools.predict_speed [--run RUN] [--out DIR]`; figures only, printed and written to DIR/predict_speed.json.
Used by no notebook: its figures are in docs/your-scan.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

from helpers.core.paths import REAL_SAMPLES_DIR, ROOT


def cpu_model() -> str:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    match = re.search(r"Model name:\s*(.+)", text)
    return match.group(1).strip() if match else platform.processor()


def spider_sized(folder: Path) -> dict[str, list[int]]:
    """SPIDER-sized scans into `folder`: each real sample as .mha and as a DICOM study (640 x 512 in-plane, 13 to 30
    slices: the samples are central slabs of SPIDER's T2 SPACE series), and every series of two real-size synthetic
    patients (T1 and T2 2D TSE with thick slices, T2 SPACE near-isotropic, SPIDER's grids); {scan name: size}."""
    from helpers.data.dicom_series import write_dicom_series
    from helpers.data.synth import write_dataset

    sizes = {}
    for path in sorted((REAL_SAMPLES_DIR / "images").glob("*.mha")):
        image = sitk.ReadImage(str(path))
        sitk.WriteImage(image, str(folder / path.name))
        whole = sitk.Cast(sitk.Round(sitk.DICOMOrient(image, "PIR")), sitk.sitkFloat32)
        write_dicom_series(whole, folder / f"{path.stem}_dicom" / "SE000001", "T2 SAG")
        sizes[path.stem] = sizes[f"{path.stem}_dicom_SE000001"] = list(image.GetSize())
    data = write_dataset(folder.parent / "synth", cases=2, seed=0, scale=1.0, progress=False)
    for path in sorted((data / "images").glob("*.mha")):
        image = sitk.ReadImage(str(path))
        sitk.WriteImage(image, str(folder / f"synthetic_{path.name}"))
        sizes[f"synthetic_{path.stem}"] = list(image.GetSize())
    return sizes


def large(folder: Path, size: tuple[int, int, int] = (1024, 1024, 60), spacing=(0.3, 0.3, 1.5)) -> str:
    """One large sagittal series as a scanner could acquire it: 1024 x 1024 pixels of 0.3 mm (307 mm square) and 60
    slices 1.5 mm apart (90 mm from side to side), resampled from a real-size synthetic T2 SPACE series (whose field
    covers the whole lumbar spine) about its centre."""
    from helpers.data.synth import write_dataset

    data = write_dataset(folder.parent / "synth_large", cases=2, seed=0, scale=1.0, progress=False)
    path = sorted((data / "images").glob("*_t2_SPACE.mha")) or sorted((data / "images").glob("*_t2.mha"))
    image = sitk.DICOMOrient(sitk.ReadImage(str(path[0])), "PIR")
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    direction = sitk.Image(1, 1, 1, sitk.sitkUInt8)
    direction.SetDirection(image.GetDirection())
    direction.SetSpacing(spacing)
    half = direction.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in size])
    origin = [c - h for c, h in zip(centre, half)]
    big = sitk.Resample(image, list(size), sitk.Transform(), sitk.sitkLinear, origin, spacing,
                        image.GetDirection(), 0.0, sitk.sitkFloat32)
    name = f"large_{'x'.join(map(str, size))}.mha"
    sitk.WriteImage(big, str(folder / name))
    return name


def run_batch(folder: Path, out: Path, run: Path, env: dict) -> dict:
    """The batch as a process under /usr/bin/time -v: wall seconds, peak resident memory, per-scan seconds."""
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "helpers", "predict", str(folder), "--run", str(run),
               "--out", str(out)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    cpu = re.search(r"Percent of CPU this job got: (\d+)%", done.stderr)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    seconds = [float(r["seconds"]) for r in rows if r["status"] == "predicted"]
    return {"scans": len(rows), "predicted": len(seconds), "failed": sum(r["status"] == "failed" for r in rows),
            "wall_s": round(wall, 1), "scan_s_total": round(sum(seconds), 1),
            "scans_per_minute": round(60 * len(seconds) / sum(seconds), 1) if seconds else None,
            "scans_per_minute_wall": round(60 * len(seconds) / wall, 1),
            "peak_rss_gb": round(int(peak.group(1)) / 1e6, 2) if peak else None, "exit": done.returncode,
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
            "cpu_percent": int(cpu.group(1)) if cpu else None,  # of one core: 200 % = both cores busy
            "per_scan_s": {r["scan"]: float(r["seconds"] or 0) for r in rows}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.predict_speed", description=__doc__)
    parser.add_argument("--run", type=Path, default=ROOT / "outputs" / "train")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--precision", choices=["auto", "float32"], default="auto",
                        help="SPIDER_KIT_CPU_PRECISION for the batches (auto: bfloat16 where native)")
    parser.add_argument("--only", choices=["spider_sized", "large"], help="one of the two measurements")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="predict-speed-"))
    env = dict(os.environ, SPIDER_KIT_CPU_PRECISION=args.precision)
    env.pop("OMP_NUM_THREADS", None)  # torch's default threads: every core
    from helpers.training.models import cpu_precision

    os.environ["SPIDER_KIT_CPU_PRECISION"] = args.precision
    result = {"cpu": cpu_model(), "cores": os.cpu_count(), "precision": cpu_precision(), "run": str(args.run)}
    if args.only in (None, "spider_sized"):
        (work / "spider").mkdir()
        count = spider_sized(work / "spider")
        result["spider_sized"] = run_batch(work / "spider", work / "out_spider", args.run, env) | {"sizes": count}
    if args.only in (None, "large"):
        (work / "large").mkdir()
        result["large_name"] = large(work / "large")
        result["large"] = run_batch(work / "large", work / "out_large", args.run, env)
    print(json.dumps(result, indent=1))
    out = args.out or work
    out.mkdir(parents=True, exist_ok=True)
    (out / "predict_speed.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
