"""Benchmarks: how fast and how good, beside the predecessor project's recipe, measured in one run.

`python -m tools.bench [--quick] [--out DIR]` writes `benchmarks.json` and `benchmarks.md` (rendered by
tools/bench_markdown.py). Figures only: targets are compared and reported, never asserted.

Used by no notebook: `python -m tools.bench`; its figures are in report/benchmarks.md.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import re
import resource
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from helpers.core.atomic import write_text_atomic
from helpers.core.paths import EvalFiles, RunFiles
from helpers.core.profiles import get_profile
from tools.bench_markdown import NOTES, RECIPES, TARGETS, to_markdown


def cpu_info() -> dict:
    """The CPU's model, the vector instructions that decide a step's speed, and the precision the kit trains in."""
    from helpers.training.models import cpu_has_native_bf16, cpu_precision

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = set(re.search(r"^flags\s*:\s*(.+)$", text, re.M).group(1).split()) if "flags" in text else set()
    return {"cpu": model.group(1).strip() if model else platform.processor() or platform.machine(),
            "avx2": "avx2" in flags, "avx512": "avx512f" in flags, "native_bf16": cpu_has_native_bf16(),
            "precision": cpu_precision()}


def machine() -> dict:
    import monai
    import torch

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "ram_gib": round(ram, 1), "torch": torch.__version__, "monai": monai.__version__,
            "threads": torch.get_num_threads(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            **cpu_info()}
    return info


def _isolated(fn, *args):
    """Run fn(*args) in a fresh process; returns (result, peak resident memory of that process in MB)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_with_peak, fn, *args).result()


def _with_peak(fn, *args):
    """fn's result and this process's own peak memory (VmHWM; ru_maxrss would carry the parent's over exec)."""
    result = fn(*args)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return result, int(line.split()[1]) / 1024
    return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- preprocessing
def bench_preprocessing(tmp: Path, patients: int) -> dict:
    from helpers.data.predecessor import predecessor_preprocess
    from helpers.data.resample import resample_dataset
    from helpers.data.synth import write_dataset

    t0 = time.perf_counter()
    data = write_dataset(tmp / "spider_sized", cases=patients, seed=11, scale=1.0, progress=False)
    synth_s = time.perf_counter() - t0
    n = len(list((data / "images").glob("*.mha")))
    out = {"series": n, "synth_seconds": synth_s}
    shapes = [sitk.ReadImage(str(p)).GetSize() for p in sorted((data / "images").glob("*.mha"))]
    out["median_voxels_millions"] = float(np.median([np.prod(s) for s in shapes]) / 1e6)
    for workers in (1, 2):
        t0 = time.perf_counter()
        resample_dataset(data, tmp / f"prep_w{workers}", workers=workers, progress=False)
        out[f"kit_series_per_s_{workers}w"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    resample_dataset(data, tmp / "prep_w2", workers=2, progress=False)
    out["kit_rerun_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    predecessor_preprocess(data, tmp / "predecessor_prep")
    out["predecessor_series_per_s"] = n / (time.perf_counter() - t0)
    out["ratio_2w_vs_predecessor"] = out["kit_series_per_s_2w"] / out["predecessor_series_per_s"]
    from helpers.data.resample import read_manifest

    out["kit_output_voxels_millions"] = float(np.median([np.prod(r["resampled"]["size"])
                                                         for r in read_manifest(tmp / "prep_w1")["series"]]) / 1e6)
    out["ratio_1w_vs_predecessor"] = out["kit_series_per_s_1w"] / out["predecessor_series_per_s"]
    return out


# ---------------------------------------------------------------- data path, steps, inference
def _smoke_data(tmp: Path) -> Path:
    from helpers.core.profiles import get_profile
    from helpers.data.datalist import write_datalist
    from helpers.data.resample import resample_dataset
    from helpers.data.synth import write_dataset

    p = get_profile("smoke")
    data = tmp / "smoke_data"
    if not (data / "overview.csv").is_file():
        write_dataset(data, cases=p.synth_patients, seed=0, scale=p.synth_scale, progress=False)
    resample_dataset(data, tmp / "smoke_prep", progress=False)
    write_datalist(tmp / "smoke_prep", tmp / "smoke_datalist.json")
    return tmp / "smoke_datalist.json"


def _loader(datalist: Path, patch, batch_size: int):
    from monai.data import CacheDataset, DataLoader

    from helpers.data.datalist import load_datalist
    from helpers.training.transforms import transforms

    items = load_datalist(datalist)["training"]
    ds = CacheDataset(items, transforms(patch, 2, True), cache_rate=1.0, progress=False)
    return DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0)


def step_worker(model_name: str, options: dict, patch_size, datalist: str, steps: int) -> dict:
    """Seconds per training step (forward, backward, AdamW) and per loader batch, on this CPU."""
    import torch
    from monai.losses import DiceCELoss

    from helpers.training.models import build_model, parameter_count

    patch = tuple(int(v) for v in patch_size)  # (AP, SI, LR), the network's order
    loader = _loader(Path(datalist), patch, 2)
    batches = []
    t0 = time.perf_counter()
    while len(batches) < steps:
        for b in loader:
            batches.append(b)
            if len(batches) >= steps:
                break
    data_s = (time.perf_counter() - t0) / steps
    model = build_model(model_name, patch, options)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    times = []
    for b in batches:
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(b["image"]), b["label"]).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return {"model": model_name, "parameters_m": parameter_count(model) / 1e6, "patch": list(patch),
            "batch_patches": int(batches[0]["image"].shape[0]), "step_s": float(np.median(times[1:] or times)),
            "loader_batch_s": data_s}


def inference_worker(run_dir: str, images: list[str]) -> dict:
    from helpers.inference.predict import Predictor

    predictor = Predictor(run_dir)
    times = []
    for path in images:
        image = sitk.ReadImage(path)
        t0 = time.perf_counter()
        predictor.structures(image)
        times.append(time.perf_counter() - t0)
    return {"series": len(images), "seconds_per_series": float(np.mean(times)), "max_seconds": float(max(times))}


# ---------------------------------------------------------------- quality at equal wall time


def _recipe(name: str):
    """(preprocessing settings, training options) of the kit's recipe or the predecessor's (same model size)."""
    from helpers.core.profiles import PROFILES
    from helpers.data.predecessor import PREDECESSOR_PREPROCESSING, PREDECESSOR_TRAINING
    from helpers.data.resample import ResampleSettings

    if name == "kit":  # the smoke profile's grid and recipe
        return ResampleSettings(min_inplane_mm=PROFILES["smoke"].inplane_mm), {}
    return ResampleSettings(**PREDECESSOR_PREPROCESSING), dict(PREDECESSOR_TRAINING)


def _prepare(tmp: Path, data: Path, recipe: str) -> Path:
    """Resample `data` the recipe's way; returns its datalist (SPIDER's subsets: test = official validation)."""
    from helpers.data.datalist import write_datalist
    from helpers.data.resample import resample_dataset

    prep = tmp / f"{data.name}_{recipe}_prep"
    resample_dataset(data, prep, _recipe(recipe)[0], progress=False)
    write_datalist(prep, tmp / f"{data.name}_{recipe}_datalist.json")
    return tmp / f"{data.name}_{recipe}_datalist.json"


def _leave_one_out(datalist: Path) -> list[Path]:
    """One datalist per series: train on all the others (no validation), test on that one."""
    raw = json.loads(datalist.read_text())
    items = [i for part in ("training", "validation", "test") for i in raw.get(part, [])]
    paths = []
    for held in items:
        fold = {**raw, "training": [i for i in items if i["patient"] != held["patient"]], "validation": [],
                "test": [held], "split": f"leave {held['series']} out"}
        paths.append(datalist.with_name(f"{datalist.stem}_without_{held['series']}.json"))
        write_text_atomic(paths[-1], json.dumps(fold, indent=1))
    return paths


def timed_run(datalist: Path, run_dir: Path, recipe: str, budget_s: float) -> dict:
    """Train a recipe for about `budget_s` seconds (iterations from a measured 10-step run), then score the
    datalist's test part the kit's way (Dice per structure, original grid)."""
    from helpers.evaluation.evaluate import evaluate
    from helpers.training.loop import TrainConfig, train
    from helpers.training.run_log import read_metrics

    options = _recipe(recipe)[1]
    calibration = run_dir.with_name(run_dir.name + "_calibration")
    train(TrainConfig(str(datalist), str(calibration), max_iterations=10, val_every=10, **options), progress=False)
    speed = [e["iterations_per_s"] for e in read_metrics(calibration) if e["kind"] == "train"][-1]
    iterations = max(10, int(budget_s * speed))
    t0 = time.perf_counter()
    train(TrainConfig(str(datalist), str(run_dir), max_iterations=iterations, val_every=iterations, **options),
          progress=False)
    seconds = time.perf_counter() - t0
    table = evaluate(run_dir, part="test", progress=False).table
    return {"iterations": iterations, "train_seconds": seconds, "test_series": len(table),
            **{f"dice_{s}": float(table[f"dice_{s}"].mean()) for s in ("vertebra", "disc", "canal")}}


def bench_quality(tmp: Path, budget_s: float, real_samples: Path | None, patients: int = 6) -> dict:
    """The kit's recipe against the predecessor's at equal wall time: synthetic data at SPIDER's real sizes, and
    the real samples (train on three, test on the fourth, each in turn)."""
    from helpers.data.synth import write_dataset

    data = write_dataset(tmp / "real_size", cases=patients, seed=5, scale=1.0, progress=False)
    from helpers.training.models import cpu_precision

    out = {"budget_s": budget_s, "model": "unetr (smoke size) for both", "precision": cpu_precision(),
           "synthetic": {}, "real_samples": {}}
    for recipe in RECIPES:
        out["synthetic"][recipe] = timed_run(_prepare(tmp, data, recipe), tmp / f"synthetic_{recipe}", recipe,
                                             budget_s)
        print(f"  synthetic, {recipe}: {out['synthetic'][recipe]}", flush=True)
    if real_samples is not None:
        for recipe in RECIPES:
            folds = [timed_run(fold, tmp / f"{fold.stem}_run", recipe, budget_s)
                     for fold in _leave_one_out(_prepare(tmp, real_samples, recipe))]
            out["real_samples"][recipe] = {"folds": folds, **{k: float(np.mean([f[k] for f in folds]))
                                                              for k in folds[0] if k.startswith("dice_")}}
            print(f"  real samples, {recipe}: {out['real_samples'][recipe]}", flush=True)
    return out


def course_quality(run: Path) -> dict:
    """Test Dice per structure of a course run (notebook 06's table)."""
    import pandas as pd

    table = pd.read_csv(RunFiles(run / "train").evaluation("test").metrics)
    return {f"dice_{s}": float(table[f"dice_{s}"].mean()) for s in ("vertebra", "disc", "canal")}


# ---------------------------------------------------------------- scoring (evaluate's work after the network)
def fragmented(structures: np.ndarray, rng: np.random.Generator, share: float = 0.01) -> np.ndarray:
    """A scattered prediction: `share` of all voxels turned into a random structure, one stray voxel each."""
    out = structures.copy()
    stray = rng.random(out.shape) < share
    out[stray] = rng.integers(1, 4, int(stray.sum()))
    return out


def bloated(structures: np.ndarray, rng: np.random.Generator, share: float = 0.5, smooth: float = 4.0) -> np.ndarray:
    """A bloated prediction, like an early model's: the `share` of the volume where smoothed noise is highest painted
    with blobs of random structures (where each of three more smoothed noises is the largest)."""
    def noise() -> np.ndarray:
        return ndimage.gaussian_filter(rng.standard_normal(structures.shape).astype(np.float32), smooth)

    field = noise()
    region = field > np.quantile(field, 1 - share)
    paint = (np.argmax(np.stack([noise(), noise(), noise()]), axis=0) + 1).astype(structures.dtype)
    out = structures.copy()
    out[region] = paint[region]
    return out


def _scoring_series(tmp: Path) -> tuple[str, list[Path]]:
    """Reference masks of real-sized series: the real samples where present, else synthetic ones at full size."""
    from helpers.core.paths import REAL_SAMPLES_DIR
    from helpers.data.synth import write_dataset

    real = sorted((REAL_SAMPLES_DIR / "masks").glob("*.mha"))
    if real:
        return "real samples (../shared/real-samples)", real
    data = write_dataset(tmp / "scoring_data", cases=2, seed=5, scale=1.0, progress=False)
    return "synthetic series at SPIDER's size", sorted((data / "masks").glob("*.mha"))[:4]


def bench_scoring(tmp: Path, run_dirs: Sequence[Path] = ()) -> dict:
    """Seconds per real-sized series for everything `evaluate` does after the network (`evaluate_series`:
    numbering, semantic metrics raw and cleaned, the predecessor's number, the challenge's figures in both variants,
    writing both maps, the numbering check), for a good prediction (the reference moved by one voxel in-plane),
    a scattered one (1 % stray voxels), a bloated one (half the volume painted with blobs of random structures)
    and the own prediction of each model in `run_dirs` ("smoke model, N iterations"); and the challenge's figures
    of the references against their own renumbered structures (what numbering costs)."""
    from helpers.data.labels import to_structures
    from helpers.data.spider import read_image
    from helpers.evaluation.challenge import numbering_cost
    from helpers.evaluation.evaluate import evaluate_series
    from helpers.inference.predict import Predictor

    source, paths = _scoring_series(tmp)
    rng = np.random.default_rng(0)
    predictors = {}
    for run_dir in run_dirs:
        predictor = Predictor(run_dir)
        iterations = predictor.config.get("max_iterations")
        predictors[f"{predictor.config['profile']} model, {iterations} iterations"] = predictor
    rows = []
    for path in paths:
        reference = sitk.ReadImage(str(path))
        moved = np.roll(to_structures(sitk.GetArrayFromImage(reference)), (1, 1), (1, 2))
        kinds = {"good": moved, "scattered": fragmented(moved, rng), "bloated": bloated(moved, rng)}
        for name, predictor in predictors.items():
            kinds[name] = predictor.structures(read_image(path.parent.parent / "images" / path.name))
        for kind, prediction in kinds.items():
            if isinstance(prediction, np.ndarray):
                prediction = sitk.GetImageFromArray(prediction)
                prediction.CopyInformation(reference)
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            row, _, _ = evaluate_series(reference, prediction, EvalFiles(tmp / "scoring" / kind), path.stem)
            rows.append({"series": path.stem, "kind": kind, "size": list(reference.GetSize()),
                         "seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
                         "load_before": load, "dice_vertebra": row["dice_vertebra"],
                         "DiceScoreVertebrae": row["DiceScoreVertebrae"]})
    summary = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = [r for r in rows if r["kind"] == kind]
        summary[kind] = {"seconds": float(np.mean([r["seconds"] for r in mine])),
                         "max_seconds": float(max(r["seconds"] for r in mine)),
                         "cpu_seconds": float(np.mean([r["cpu_seconds"] for r in mine]))}
    return {"source": source, "cores": os.cpu_count(), "series": rows, "summary": summary,
            "numbering_cost": numbering_cost(paths)["summary"]}


# ---------------------------------------------------------------- the whole benchmark
SECTIONS = ("preprocessing", "training", "course", "inference", "scoring", "quality", "class", "networks", "gpu")
QUICK_SECTIONS = ("preprocessing", "training", "scoring")  # a few minutes on 2 cores


def class_worker(datalist: str, run_dir: str, iterations: int) -> dict:
    """The gpu profile's resource check, the cache it sizes filled for real, and a short run of its own code."""
    from helpers.training.loop import TrainConfig, _training_chain, _with_data, check_resources_for, train
    from helpers.training.resources import voxels
    from helpers.training.transforms import cached_dataset

    config = TrainConfig(datalist, run_dir, profile="gpu", max_iterations=iterations, val_every=iterations)
    check = check_resources_for(config)
    resolved, data = _with_data(config)
    items = data["training"] + data["validation"]
    filled = cached_dataset(items, _training_chain(resolved), 0, 1.0)
    cached = sum(sum(v.nbytes for v in (x if isinstance(x, list) else [x]) if hasattr(v, "nbytes"))
                 for entry in filled._cache for x in entry.values())
    del filled
    summary = train(config, progress=False)
    return {"parameters_m": check.parameters / 1e6, "volumes": len(items),
            "voxels_millions": sum(voxels(i["image"]) for i in items) / 1e6,
            "cache_planned_gb": check.cache_needed / 1e9, "cache_filled_gb": cached / 1e9,
            "checkpoint_disk_planned_gb": check.disk_needed / 1e9,
            "checkpoint_disk_used_gb": sum(p.stat().st_size for p in RunFiles(Path(run_dir)).checkpoints) / 1e9,
            "iterations": iterations, "measured_iteration_s": summary["measured_iteration_seconds"],
            "predicted_loop_s": summary["measured_iteration_seconds"] * iterations,
            "loop_s": summary["loop_seconds"]}


def bench_class(tmp: Path, quick: bool) -> dict:
    """The real class rehearsed on this machine: SPIDER-sized synthetic series prepared on the gpu profile's 1 mm
    grid (time, disk), then the gpu profile's resource check against what its run measures (cache, disk, time, memory)."""
    from helpers.data.datalist import write_datalist
    from helpers.data.resample import ResampleSettings, resample_dataset
    from helpers.data.synth import write_dataset

    data = tmp / "spider_sized"
    if not (data / "overview.csv").is_file():
        write_dataset(data, cases=2 if quick else 5, seed=11, scale=1.0, progress=False)
    n = len(list((data / "images").glob("*.mha")))
    t0 = time.perf_counter()
    resample_dataset(data, tmp / "class_prep", ResampleSettings(min_inplane_mm=get_profile("gpu").inplane_mm),
                     workers=2, progress=False)
    seconds = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in (tmp / "class_prep").rglob("*") if p.is_file())
    raw = sum(p.stat().st_size for p in data.rglob("*.mha"))
    write_datalist(tmp / "class_prep", tmp / "class_datalist.json")
    result, peak = _isolated(class_worker, str(tmp / "class_datalist.json"), str(tmp / "class_run"), 6 if quick else 12)
    return {"series": n, "prep_series_per_s_2w": n / seconds, "prep_mb_per_series": disk / n / 1e6,
            "raw_mb_per_series": raw / n / 1e6, **result, "peak_rss_gb": peak / 1024}


def bench_training(tmp: Path, quick: bool) -> list[dict]:
    """Seconds per training step, loader wait and peak memory of the smoke patch for a few networks."""
    from helpers.core.profiles import PREDECESSOR_UNETR, SMALL_UNETR

    datalist = str(_smoke_data(tmp))
    patch = get_profile("smoke").patch_size
    models = [("unetr", SMALL_UNETR), ("unet", {})] + ([] if quick else [("unetr", PREDECESSOR_UNETR), ("segresnet", {})])
    rows = []
    for model, options in models:
        result, peak = _isolated(step_worker, model, options, patch, datalist, 4 if quick else 8)
        result["peak_rss_mb"] = peak
        result["data_wait_share"] = result["loader_batch_s"] / (result["loader_batch_s"] + result["step_s"])
        rows.append(result)
    return rows


# what a CPU with AVX2 and no AVX-512 runs (most laptops, Colab's CPU runtimes), on a CPU that has more: torch's own
# kernels and oneDNN's (the convolutions) limited to AVX2
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def course_modes(cpu: dict) -> list[tuple[str, dict]]:
    """The precisions the course is measured in here: float32 always (what a CPU without native bfloat16 runs),
    float32 on AVX2 alone where this CPU has AVX-512, and bfloat16 where this CPU computes it natively."""
    from helpers.training.models import CPU_PRECISION_ENV

    modes = [("float32", {CPU_PRECISION_ENV: "float32"})]
    if cpu["avx512"]:
        modes.append(("float32, AVX2 only", {CPU_PRECISION_ENV: "float32", **AVX2_ONLY}))
    if cpu["native_bf16"]:
        modes.append(("bfloat16 (native)", {CPU_PRECISION_ENV: "auto"}))
    return modes


@contextmanager
def _environment(values: dict):
    """Environment variables set for what starts inside (the notebook kernels), restored after."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def bench_course(tmp: Path) -> tuple[list[dict], dict]:
    """The whole course headless (smoke profile) with its test Dice, once per precision of `course_modes`, each from
    fresh data; then inference with the first run's model."""
    from helpers.course.runner import run_notebooks

    runs = []
    for i, (mode, env) in enumerate(course_modes(cpu_info())):
        print(f"  course in {mode} ...", flush=True)
        with _environment(env):
            t0 = time.perf_counter()
            timings = run_notebooks("smoke", data_dir=str(tmp / f"course_data_{i}"), out=str(tmp / f"course_{i}"))
            runs.append({"mode": mode, "env": env, "seconds": time.perf_counter() - t0, "notebooks": dict(timings),
                         "test": course_quality(tmp / f"course_{i}"), "load_average": os.getloadavg()[0]})
    images = sorted(str(p) for p in (tmp / "course_data_0" / "images").glob("*.mha"))[:4]
    result, peak = _isolated(inference_worker, str(tmp / "course_0" / "train"), images)
    return runs, {**result, "peak_rss_mb": peak}


def run_bench(out: str | Path, quick: bool = False, only: list[str] | None = None,
              real_samples: Path | None = None, run: str | Path | list | None = None) -> dict:
    """Measure the sections in `only` (all by default); sections measured before stay in benchmarks.json.
    `scoring` scores the predictions of each run in `run` (default: the course run's model when `course` runs
    too)."""
    from helpers.core.paths import ROOT

    out = Path(out)
    sections = list(only or (QUICK_SECTIONS if quick else SECTIONS))
    if quick and not only:
        print(f"quick: {', '.join(QUICK_SECTIONS)} at small sizes (the others, minutes to an hour each: "
              f"--only {','.join(s for s in SECTIONS if s not in QUICK_SECTIONS)})", flush=True)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown bench sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    old = out / "benchmarks.json"
    results = json.loads(old.read_text()) if old.is_file() and only else {}
    results.update({"machine": machine(), "quick": quick, "targets": TARGETS})
    real_samples = real_samples or ROOT.parent / "shared" / "real-samples"
    real_samples = real_samples if (real_samples / "images").is_dir() else None
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if "preprocessing" in sections:
            print("preprocessing ...", flush=True)
            results["preprocessing"] = bench_preprocessing(tmp, 2 if quick else 5)
        if "training" in sections:
            print("training steps ...", flush=True)
            results["training"] = bench_training(tmp, quick)
        if "course" in sections or "inference" in sections:
            print("course run, then inference ...", flush=True)
            results["course"], results["inference"] = bench_course(tmp)
        if "scoring" in sections:
            print("scoring ...", flush=True)
            runs = [Path(r) for r in ([run] if isinstance(run, (str, Path)) else run or [])]
            command = "python -m tools.bench" + (" --only scoring" if only else "") + " --run RUN" * len(runs)
            if not runs and (tmp / "course_0" / "train").is_dir():
                runs = [tmp / "course_0" / "train"]
            results["scoring"] = {**bench_scoring(tmp, runs), "command": command, "machine": machine()}
        if "class" in sections:
            print("the real class, rehearsed (gpu profile on the CPU) ...", flush=True)
            results["class"] = bench_class(tmp, quick)
        if "quality" in sections:
            print("quality at equal wall time ...", flush=True)
            results["quality"] = bench_quality(tmp, 30 if quick else 60, real_samples, 3 if quick else 6)
            results["quality"]["load_average"] = os.getloadavg()[0]
        if "networks" in sections:  # tools/compare_networks.py: UNETR beside the CNNs at equal training time
            from tools.compare_networks import bench_networks

            print("networks at equal training time (float32) ...", flush=True)
            with _environment({"SPIDER_KIT_CPU_PRECISION": "float32"}):
                results["networks"] = bench_networks(tmp, 20 if quick else 45, real_samples, _isolated,
                                                     patients=3 if quick else 6)
            results["networks"]["load_average"] = os.getloadavg()[0]
        if "gpu" in sections:  # tools/gpu_check.py: the gpu profile and the networks at its size, on a GPU only
            from tools.gpu_check import bench_gpu

            print("the gpu profile on a GPU ...", flush=True)
            kept = {n["name"]: n["chosen_lr"] for n in results.get("networks", {}).get("networks", []) if "chosen_lr" in n}
            results["gpu"] = bench_gpu(tmp, _isolated, kept)
    results["notes"] = NOTES
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "benchmarks.json", json.dumps(results, indent=1))
    write_text_atomic(out / "benchmarks.md", to_markdown(results))
    return results


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from helpers.core.errors import KitError

    p = argparse.ArgumentParser(prog="python -m tools.bench", description="measure speed and quality beside the "
                                "predecessor's recipe (figures, not tests)")
    p.add_argument("--quick", action="store_true", help="preprocessing, training steps and scoring at small sizes: "
                   "a few minutes")
    p.add_argument("--run", type=Path, action="append",
                   help="with scoring: also score this training run's own predictions (repeat for several runs)")
    p.add_argument("--out", type=Path, help="where benchmarks.json and .md go (default: report/, the committed "
                                            "figures; with --quick: outputs/bench-quick, so they stay)")
    p.add_argument("--only", help="comma-separated sections: preprocessing,training,course,inference,scoring,quality,"
                                  "class,networks,gpu (the others keep their figures already in OUT/benchmarks.json)")
    args = p.parse_args(argv)
    if args.out is None:
        from helpers.core.paths import REPORT_DIR, output_dir

        args.out = output_dir() / "bench-quick" if args.quick and not args.only else REPORT_DIR
    try:
        run_bench(args.out, quick=args.quick, only=args.only.split(",") if args.only else None, run=args.run)
    except KitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print((args.out / "benchmarks.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
