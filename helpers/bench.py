"""Benchmarks: how fast and how good, beside the seed project's recipe, measured in one run.

`python -m helpers bench [--quick] [--out DIR]` writes `benchmarks.json` and `benchmarks.md`. Figures only:
targets are compared and reported, never asserted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import write_text_atomic

TARGETS = {"course_seconds": 300, "data_wait_share": 0.05, "preprocessing_ratio": 3.0, "scoring_seconds": 3.0}


def machine() -> dict:
    import monai
    import torch

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "ram_gib": round(ram, 1), "torch": torch.__version__, "monai": monai.__version__,
            "threads": torch.get_num_threads(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
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
def seed_style_preprocess(data_dir: Path, out: Path) -> int:
    """The seed's preprocessing, for comparison: one process, reorient to RPS, resample to 32x128x128
    (linear, no anti-aliasing), CT window to [0, 1], nearest-neighbour masks."""
    from .spider import read_series, scan_dataset

    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for s in scan_dataset(data_dir).complete:
        image, mask = read_series(s)
        image, mask = sitk.DICOMOrient(image, "RPS"), sitk.DICOMOrient(mask, "RPS")
        size = (128, 128, 32)
        spacing = [sz * sp / n for sz, sp, n in zip(image.GetSize(), image.GetSpacing(), size)]
        img = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), spacing,
                            image.GetDirection(), 0.0, sitk.sitkFloat32)
        img = sitk.Clamp((img + 1000.0) / 4096.0, sitk.sitkFloat32, 0.0, 1.0)
        lab = sitk.Resample(mask, size, sitk.Transform(), sitk.sitkNearestNeighbor, image.GetOrigin(), spacing,
                            image.GetDirection(), 0, mask.GetPixelID())
        sitk.WriteImage(img, str(out / f"{s.stem}_image.nii.gz"))
        sitk.WriteImage(lab, str(out / f"{s.stem}_label.nii.gz"))
        count += 1
    return count


def bench_preprocessing(tmp: Path, patients: int) -> dict:
    from .resample import resample_dataset
    from .synth import write_dataset

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
    seed_style_preprocess(data, tmp / "seed_prep")
    out["seed_series_per_s"] = n / (time.perf_counter() - t0)
    out["ratio_2w_vs_seed"] = out["kit_series_per_s_2w"] / out["seed_series_per_s"]
    from .resample import read_manifest

    out["kit_output_voxels_millions"] = float(np.median([np.prod(r["resampled"]["size"])
                                                         for r in read_manifest(tmp / "prep_w1")["series"]]) / 1e6)
    out["ratio_1w_vs_seed"] = out["kit_series_per_s_1w"] / out["seed_series_per_s"]
    return out


# ---------------------------------------------------------------- data path, steps, inference
def _smoke_data(tmp: Path) -> Path:
    from .datalist import write_datalist
    from .profiles import get_profile
    from .resample import resample_dataset
    from .synth import write_dataset

    p = get_profile("smoke")
    data = tmp / "smoke_data"
    if not (data / "overview.csv").is_file():
        write_dataset(data, cases=p.synth_patients, seed=0, scale=p.synth_scale, progress=False)
    resample_dataset(data, tmp / "smoke_prep", progress=False)
    write_datalist(tmp / "smoke_prep", tmp / "smoke_datalist.json")
    return tmp / "smoke_datalist.json"


def _loader(datalist: Path, patch, batch_size: int):
    from monai.data import CacheDataset, DataLoader

    from .train import load_datalist, transforms

    items = load_datalist(datalist)["training"]
    ds = CacheDataset(items, transforms(patch, 2, True), cache_rate=1.0, progress=False)
    return DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0)


def step_worker(model_name: str, options: dict, patch_canonical, datalist: str, steps: int) -> dict:
    """Seconds per training step (forward, backward, AdamW) and per loader batch, on this CPU."""
    import torch
    from monai.losses import DiceCELoss

    from .models import build_model, monai_order, parameter_count

    patch = monai_order(patch_canonical)
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
    return {"model": model_name, "parameters_m": parameter_count(model) / 1e6, "patch": list(patch_canonical),
            "batch_patches": int(batches[0]["image"].shape[0]), "step_s": float(np.median(times[1:] or times)),
            "loader_batch_s": data_s}


def inference_worker(run_dir: str, images: list[str]) -> dict:
    from .evaluate import Predictor

    predictor = Predictor(run_dir)
    times = []
    for path in images:
        image = sitk.ReadImage(path)
        t0 = time.perf_counter()
        predictor.structures(image)
        times.append(time.perf_counter() - t0)
    return {"series": len(images), "seconds_per_series": float(np.mean(times)), "max_seconds": float(max(times))}


# ---------------------------------------------------------------- quality at equal budget
def _recipe_run(tmp: Path, data: Path, name: str, settings, train_options: dict, iterations: int) -> dict:
    from .datalist import write_datalist
    from .evaluate import evaluate
    from .resample import resample_dataset
    from .train import TrainConfig, train

    resample_dataset(data, tmp / f"{name}_prep", settings, progress=False)
    write_datalist(tmp / f"{name}_prep", tmp / f"{name}_datalist.json")
    t0 = time.perf_counter()
    train(TrainConfig(str(tmp / f"{name}_datalist.json"), str(tmp / f"{name}_run"), max_iterations=iterations,
                      val_every=iterations, **train_options), progress=False)
    seconds = time.perf_counter() - t0
    table = evaluate(tmp / f"{name}_run", part="test", progress=False)
    return {"train_seconds": seconds, "test_series": len(table),
            **{f"dice_{s}": float(table[f"dice_{s}"].mean()) for s in ("vertebra", "disc", "canal")}}


def equal_time_run(tmp: Path, quality: dict) -> dict:
    """The kit's recipe trained for as long as the seed's recipe took (iterations from the measured step times)."""
    from .resample import ResampleSettings

    per_iteration = quality["kit"]["train_seconds"] / quality["iterations"]
    iterations = int(round(quality["seed"]["train_seconds"] / per_iteration))
    _smoke_data(tmp)
    result = _recipe_run(tmp, tmp / "smoke_data", "kit_time", ResampleSettings(), {}, iterations)
    return {"iterations": iterations, **result}


def bench_quality(tmp: Path, iterations: int) -> dict:
    from .resample import SEED_FIXED_SIZE, ResampleSettings

    _smoke_data(tmp)
    data = tmp / "smoke_data"
    kit = _recipe_run(tmp, data, "kit", ResampleSettings(), {}, iterations)
    seed = _recipe_run(tmp, data, "seed", ResampleSettings(mode="fixed_size", labels="instances",
                                                           intensity="ct_window"),
                       {"patch_size": list(SEED_FIXED_SIZE), "augment": False}, iterations)
    ratios = {s: (kit[f"dice_{s}"] / seed[f"dice_{s}"] if seed[f"dice_{s}"] > 0 else None)
              for s in ("vertebra", "disc", "canal")}
    return {"iterations": iterations, "model": "unetr (smoke size) for both", "kit": kit, "seed": seed,
            "ratio_kit_vs_seed": ratios}


# ---------------------------------------------------------------- scoring (evaluate's work after the network)
def fragmented(structures: np.ndarray, rng: np.random.Generator, share: float = 0.01) -> np.ndarray:
    """A scattered prediction: `share` of all voxels turned into a random structure, one stray voxel each."""
    out = structures.copy()
    stray = rng.random(out.shape) < share
    out[stray] = rng.integers(1, 4, int(stray.sum()))
    return out


def _scoring_series(tmp: Path) -> tuple[str, list[Path]]:
    """Reference masks of real-sized series: the real samples where present, else synthetic ones at full size."""
    from .paths import REAL_SAMPLES_DIR
    from .synth import write_dataset

    real = sorted((REAL_SAMPLES_DIR / "masks").glob("*.mha"))
    if real:
        return "real samples (../shared/real-samples)", real
    data = write_dataset(tmp / "scoring_data", cases=2, seed=5, scale=1.0, progress=False)
    return "synthetic series at SPIDER's size", sorted((data / "masks").glob("*.mha"))[:4]


def bench_scoring(tmp: Path, run_dir: Path | None = None) -> dict:
    """Seconds per real-sized series for everything `evaluate` does after the network (`evaluate_series`:
    numbering, semantic metrics raw and cleaned, the seed's number, the challenge's figures in both variants,
    writing both maps, the numbering check), for a good prediction (the reference moved by one voxel in-plane),
    a scattered one (1 % stray voxels) and, when `run_dir` holds a model, that model's own prediction; and the
    challenge's figures of the references against their own renumbered structures (what numbering costs)."""
    from .evaluate import Predictor, evaluate_series
    from .labels import to_structures
    from .numbering import numbering_cost
    from .spider import read_image

    source, paths = _scoring_series(tmp)
    rng = np.random.default_rng(0)
    predictor = Predictor(run_dir) if run_dir and (run_dir / "config.json").is_file() else None
    rows = []
    for path in paths:
        reference = sitk.ReadImage(str(path))
        moved = np.roll(to_structures(sitk.GetArrayFromImage(reference)), (1, 1), (1, 2))
        kinds = {"good": moved, "scattered": fragmented(moved, rng)}
        if predictor is not None:
            kinds["smoke model"] = predictor.structures(read_image(path.parent.parent / "images" / path.name))
        for kind, prediction in kinds.items():
            if isinstance(prediction, np.ndarray):
                prediction = sitk.GetImageFromArray(prediction)
                prediction.CopyInformation(reference)
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            row, _, _ = evaluate_series(reference, prediction, tmp / "scoring" / kind, path.stem)
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
def run_bench(out: str | Path, quick: bool = False, only: str | None = None, run: str | Path | None = None) -> dict:
    """Measure everything (or `only="scoring"`, kept beside the other figures already in OUT, with RUN's model
    predictions scored too when given) and write OUT/benchmarks.json and OUT/benchmarks.md."""
    out = Path(out)
    if only == "scoring":
        previous = out / "benchmarks.json"
        results = json.loads(previous.read_text()) if previous.is_file() else {"machine": machine(), "quick": quick}
        results["targets"] = TARGETS
        with tempfile.TemporaryDirectory() as name:
            print("scoring ...", flush=True)
            command = "python -m helpers bench --only scoring" + (" --run RUN" if run else "")
            results["scoring"] = {**bench_scoring(Path(name), Path(run) if run else None), "command": command,
                                  "machine": machine()}
    else:
        results = _run_all(quick)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "benchmarks.json", json.dumps(results, indent=1))
    write_text_atomic(out / "benchmarks.md", to_markdown(results))
    return results


def _run_all(quick: bool) -> dict:
    from .profiles import SEED_UNETR, SMALL_UNETR
    from .runner import run_notebooks

    results = {"machine": machine(), "quick": quick, "targets": TARGETS}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        print("preprocessing ...", flush=True)
        results["preprocessing"] = bench_preprocessing(tmp, 2 if quick else 5)
        print("training steps ...", flush=True)
        datalist = str(_smoke_data(tmp))
        steps = 4 if quick else 8
        models = [("unetr", SMALL_UNETR, (16, 64, 64)), ("unet", {}, (16, 64, 64))]
        if not quick:
            models += [("unetr", SEED_UNETR, (16, 64, 64)), ("segresnet", {}, (16, 64, 64))]
        results["training"] = []
        for model, options, patch in models:
            result, peak = _isolated(step_worker, model, options, patch, datalist, steps)
            result["peak_rss_mb"] = peak
            result["data_wait_share"] = result["loader_batch_s"] / (result["loader_batch_s"] + result["step_s"])
            results["training"].append(result)
        print("course run ...", flush=True)
        t0 = time.perf_counter()
        timings = run_notebooks("smoke", data_dir=str(tmp / "course_data"), out=str(tmp / "course"))
        results["course"] = {"seconds": time.perf_counter() - t0, "notebooks": dict(timings)}
        print("inference ...", flush=True)
        images = sorted(str(p) for p in (tmp / "course_data" / "images").glob("*.mha"))[:4]
        result, peak = _isolated(inference_worker, str(tmp / "course" / "train"), images)
        results["inference"] = {**result, "peak_rss_mb": peak}
        print("scoring ...", flush=True)
        results["scoring"] = {**bench_scoring(tmp, tmp / "course" / "train"), "command": "python -m helpers bench"}
        print("quality at equal budget ...", flush=True)
        results["quality"] = bench_quality(tmp, 30 if quick else 120)
        if not quick:
            print("quality at equal time ...", flush=True)
            results["quality"]["kit_equal_time"] = equal_time_run(tmp, results["quality"])
    return results


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "missed")


def to_markdown(r: dict) -> str:
    """The benchmarks as Markdown: the course-wide sections when measured, then the scoring section."""
    text = _course_markdown(r) if "course" in r else "# Benchmarks\n"
    return text + (_scoring_markdown(r["scoring"]) if "scoring" in r else "")


def _scoring_markdown(s: dict) -> str:
    worst = max(v["seconds"] for v in s["summary"].values())
    m = s.get("machine", {})
    where = f" on {m['cpus']} CPUs" if m else ""
    lines = ["", "## Evaluation speed and numbering cost (real-sized series)", "",
             f"Measured by `{s['command']}`{where} on {len(s['series']) // len(s['summary'])} {s['source']}; "
             "everything `evaluate` does for a series after the network (`evaluate_series`: instance numbering, "
             "semantic Dice/HD95/ASSD raw and after cleanup, the seed's number, the challenge's instance figures in "
             "both variants, writing both maps, and the numbering check). Wall seconds on a shared machine (the "
             "load average before each series is in benchmarks.json); CPU seconds of this process beside them.", "",
             "| prediction | seconds per series (mean) | max | CPU seconds (mean) | target |", "| --- | --- | --- | --- | --- |"]
    for kind, v in s["summary"].items():
        lines.append(f"| {kind} | {v['seconds']:.2f} | {v['max_seconds']:.2f} | {v['cpu_seconds']:.2f} | "
                     f"{_verdict(v['seconds'] <= TARGETS['scoring_seconds'])} (at most {TARGETS['scoring_seconds']:g} s) |")
    sizes = sorted({"x".join(map(str, r["size"][::-1])) for r in s["series"]})
    lines += ["", f"Series sizes (slices x rows x columns as numpy holds them): {', '.join(sizes)}. Good: the reference "
              "moved by one voxel in-plane. Scattered: that, with 1 % of all voxels turned into a random structure "
              "(each a stray fragment). Smoke model: what a model trained by the smoke profile on synthetic data "
              "predicts on these series (with `--run`, or in the full benchmark).", "",
              "What numbering alone costs: each reference mask reduced to its three structures, numbered again by the "
              "kit (`helpers.numbering`), and scored against itself the challenge's way (mean over series):", "",
              "| DiceScoreVertebrae | DiceScoreDiscs | DetectionRateVertebrae | DetectionRateDiscs | OveralDiceScore |",
              "| --- | --- | --- | --- | --- |",
              "| " + " | ".join(f"{s['numbering_cost'][k]['mean']:.4f}" for k in (
                  "DiceScoreVertebrae", "DiceScoreDiscs", "DetectionRateVertebrae", "DetectionRateDiscs",
                  "OveralDiceScore")) + " |"]
    if worst > TARGETS["scoring_seconds"]:
        lines += ["", "Where the target is missed: see the note under the table in the README's scoring section."]
    return "\n".join(lines) + "\n"


def _course_markdown(r: dict) -> str:
    m, p, c, q = r["machine"], r["preprocessing"], r["course"], r["quality"]
    command = "python -m helpers bench" + (" --quick" if r["quick"] else "")
    lines = ["# Benchmarks", "",
             f"Measured by `{command}` on {m['platform']}, {m['cpus']} CPUs, {m['ram_gib']} GiB RAM, "
             f"GPU: {m['gpu'] or 'none'}; torch {m['torch']}, MONAI {m['monai']}, {m['threads']} torch threads.", "",
             "## Targets", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    wait = max(t["data_wait_share"] for t in r["training"])
    lines += [f"| course smoke run within {TARGETS['course_seconds']} s | {c['seconds']:.0f} s | "
              f"{_verdict(c['seconds'] <= TARGETS['course_seconds'])} |",
              f"| data waiting within {TARGETS['data_wait_share']:.0%} of a step | {wait:.1%} (worst model) | "
              f"{_verdict(wait <= TARGETS['data_wait_share'])} |",
              f"| preprocessing at least {TARGETS['preprocessing_ratio']:g}x the seed-style baseline | "
              f"{p['ratio_2w_vs_seed']:.2f}x (2 workers), {p['ratio_1w_vs_seed']:.2f}x (1 worker) | "
              f"{_verdict(p['ratio_2w_vs_seed'] >= TARGETS['preprocessing_ratio'])} |"]
    ahead = [v is not None and v > 1 for v in q["ratio_kit_vs_seed"].values()]
    lines += ["| kit's recipe ahead of the seed's on every structure | "
              + ", ".join(f"{k} " + (f"{v:.2f}x" if v is not None else "seed 0") for k, v in q["ratio_kit_vs_seed"].items())
              + f" | {_verdict(all(ahead))} |", ""]
    lines += ["## Preprocessing (synthetic series at SPIDER's real sizes)", "",
              f"{p['series']} series, median {p['median_voxels_millions']:.1f} M voxels.", "",
              "| pipeline | series per second |", "| --- | --- |",
              f"| kit, 1 worker | {p['kit_series_per_s_1w']:.2f} |", f"| kit, 2 workers | {p['kit_series_per_s_2w']:.2f} |",
              f"| seed-style (1 process, fixed 32x128x128, no anti-aliasing) | {p['seed_series_per_s']:.2f} |",
              f"| kit rerun, nothing to do | {p['series'] / max(p['kit_rerun_seconds'], 1e-6):.0f} ({p['kit_rerun_seconds']:.2f} s) |", ""]
    lines += ["## Training step on CPU (smoke patches, 2 volumes x 2 patches)", "",
              "| model | parameters (M) | patch | step (s) | loader batch (s) | data wait share | peak RSS (MB) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for t in r["training"]:
        lines.append(f"| {t['model']} | {t['parameters_m']:.1f} | {'x'.join(map(str, t['patch']))} | {t['step_s']:.2f} "
                     f"| {t['loader_batch_s']:.3f} | {t['data_wait_share']:.1%} | {t['peak_rss_mb']:.0f} |")
    i = r["inference"]
    lines += ["", "## Inference (sliding window, smoke model, original grid)", "",
              f"{i['seconds_per_series']:.2f} s per series on average (max {i['max_seconds']:.2f} s) over {i['series']} "
              f"series; peak RSS {i['peak_rss_mb']:.0f} MB.", "",
              "## Course run (every notebook, smoke profile, headless)", "", "| notebook | seconds |", "| --- | --- |"]
    lines += [f"| {k} | {v:.1f} |" for k, v in c["notebooks"].items()] + [f"| total | {c['seconds']:.1f} |", ""]
    lines += [f"## Quality at equal budget ({q['iterations']} iterations, {q['model']}, held-out test patients)", "",
              "Both scored the kit's way: Dice per structure, background excluded, on each series' original grid.", "",
              "| recipe | vertebra | disc | canal | training (s) |", "| --- | --- | --- | --- | --- |"]
    for name, label in (("kit", "kit: spacing, per-image normalisation, 3 structures, augmentation"),
                        ("seed", "seed: fixed 32x128x128, CT window, 20 instance classes, no augmentation")):
        v = q[name]
        lines.append(f"| {label} | {v['dice_vertebra']:.3f} | {v['dice_disc']:.3f} | {v['dice_canal']:.3f} | "
                     f"{v['train_seconds']:.0f} |")
    if "kit_equal_time" in q:
        v = q["kit_equal_time"]
        lines += ["", f"At equal training time instead: the kit's recipe for {v['iterations']} iterations (as long as the "
                  "seed's recipe took for its iterations):", "", "| recipe | vertebra | disc | canal | training (s) |",
                  "| --- | --- | --- | --- | --- |",
                  f"| kit, equal time | {v['dice_vertebra']:.3f} | {v['dice_disc']:.3f} | {v['dice_canal']:.3f} | "
                  f"{v['train_seconds']:.0f} |"]
    notes = []
    if p["ratio_2w_vs_seed"] < TARGETS["preprocessing_ratio"]:
        notes.append(f"- **Preprocessing target missed.** The kit does more per series than the seed-style baseline: "
                     f"Gaussian anti-aliasing before downsampling, per-label voting for masks (one linear resampling per "
                     f"label instead of nearest neighbour), per-image percentiles, and a finer output grid "
                     f"({p['kit_output_voxels_millions']:.1f} M voxels per series against 0.5 M for 32x128x128), so more to "
                     "compute and to compress. Two workers on two cores also pay process start-up. What the kit buys for "
                     "that time is undistorted anatomy and masks without aliasing; where it is much faster is a rerun, "
                     "which skips up-to-date series.")
    if wait > TARGETS["data_wait_share"]:
        notes.append("- **Data-wait target missed on CPU.** The figure is the loader alone (cached volumes, random "
                     "patches and augmentation, `num_workers=0` as the smoke profile uses on 2 cores) against one "
                     "training step, so nothing overlaps. The cheaper the model step (UNet), the larger the share. The "
                     "`gpu` and `full` profiles load with worker processes that run beside the step.")
    if not all(ahead):
        seconds = q["seed"]["train_seconds"] / max(q["kit"]["train_seconds"], 1e-9)
        notes.append(f"- **Equal-budget target missed** on {sum(not a for a in ahead)} of 3 structures. One iteration is "
                     "not one unit of work: the seed's recipe trains on whole 32x128x128 volumes, 16 times the voxels of "
                     f"a smoke patch, and its {q['iterations']} iterations took {seconds:.1f} times as long. On this "
                     "small, already coarse synthetic set the seed's fixed grid is about as coarse as the kit's, so it "
                     "distorts little, and most series are in the convention its CT window was made for. The "
                     "equal-time row shows the comparison at the same cost.")
    if "kit_equal_time" in q:
        unlearned = [n for n in ("vertebra", "disc", "canal") if q["kit_equal_time"][f"dice_{n}"] < 0.01]
        if unlearned:
            notes.append(f"- **Open finding:** at equal time the kit's recipe still scores ~0 on {', '.join(unlearned)} "
                         "while the seed's recipe scores above 0 there; the structure reaches the training patches, "
                         "so the cause is not yet known (see the issue's closing note).")
    if notes:
        lines += ["", "## Why a target was missed", ""] + notes
    return "\n".join(lines) + "\n"
