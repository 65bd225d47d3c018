"""The bench's figures as Markdown (report/benchmarks.md), with each target's verdict.

Used by no notebook: `python -m tools.bench` (tools/bench.py) writes it beside benchmarks.json.
"""

from __future__ import annotations

import os

from helpers.data import predecessor
from helpers.data.axes import numpy_order

RECIPES = ("kit", "predecessor")  # the two recipes the bench compares
TARGETS = {"course_seconds": 420, "notebook05_seconds": 240, "course_dice": 0.85, "data_wait_share": 0.05, "preprocessing_ratio": 1.0,
           "scoring_seconds": 3.0}


NOTES = [
    "Why the first smoke model never learned the canal (0.000 even after 1,396 iterations): UNETR decodes from "
    "16-voxel cubes, and the old smoke data put the canal at 3 slices x 5 voxels (6.6 x 2.4 x 2.4 mm voxels) "
    "with a narrowed full-resolution path (feature size 8). The runs that show it, and the fix, are in docs/recipe.md, "
    "'The training recipe, and why the first smoke model never found the canal'.",
    "Then the smoke recipe was made to learn more per second (bfloat16 on CPUs that compute it natively, lr 3e-3, "
    "2 x 1 patches per step, 1,000 iterations, Gaussian-weighted windows overlapping by half, labels back by "
    "sitkLabelLinear) and its post-processing is chosen on validation. What held the vertebrae below 0.8 "
    "(0.72 on 8 patients at 1.6 mm): the posterior elements missed, out of a 100 mm patch centred in a body, and "
    "one of two test patients generalised badly from 4 training patients. A 2 mm grid (the 64-voxel patch spans "
    "128 mm, a whole vertebra front to back, as the gpu profile's) and 16 synthetic patients instead of 8 (free "
    "in steps) fixed both; each step's test Dice is in docs/recipe.md, 'Then: more learning per second'.",
    "The course, inference and training-step sections were measured with the smoke recipe of issue 30 (UNETR "
    "feature size 8, channels-last on the CPU, 700 iterations); the course and inference sections again after the "
    "float32 step was made a fifth cheaper (plain tensors, GroupNorm under channels-last in float32, fused AdamW; "
    "docs/recipe.md, 'the same step, a fifth cheaper'), the training-step section (its own loop) before; the "
    "quality, preprocessing, class and scoring "
    "sections, measured before it, with feature size 16 and 1,000 iterations, were not rerun. The new recipe against "
    "the old on the real samples, in float32, is in docs/recipe.md ('Then: minutes on a CPU without native bfloat16').",
    "Timings on this machine depend on what else runs: with two torch threads on two cores, one other busy "
    "process slows a training step up to ten times. The load average at the end of a section is recorded with it.",
]


def course_runs(course: dict | list) -> list[dict]:
    """The course runs of benchmarks.json: one per precision (a single run in files written before that)."""
    return course if isinstance(course, list) else [{"mode": "as measured then", **course}]


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "missed")


STRUCTS = ("vertebra", "disc", "canal")


def _targets(r: dict) -> list[str]:
    lines = ["## Targets", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    if "course" in r:
        runs = course_runs(r["course"])
        worst = max((c for c in runs if c["mode"].startswith("float32")), key=lambda c: c["seconds"], default=runs[0])
        book = worst["notebooks"].get("05_train_unetr.ipynb", float("nan"))
        lines.append(f"| course smoke run within {TARGETS['course_seconds']} s, in float32 | {worst['seconds']:.0f} s "
                     f"({worst['mode']}) | {_verdict(worst['seconds'] <= TARGETS['course_seconds'])} |")
        lines.append(f"| notebook 05 within {TARGETS['notebook05_seconds']} s, in float32 | {book:.0f} s "
                     f"({worst['mode']}) | {_verdict(book <= TARGETS['notebook05_seconds'])} |")
        for c in runs:
            if "test" in c:
                t = c["test"]
                lines.append(f"| course test Dice at least {TARGETS['course_dice']} for each structure ({c['mode']}) | "
                             + ", ".join(f"{s} {t[f'dice_{s}']:.3f}" for s in STRUCTS)
                             + f" | {_verdict(min(t.values()) >= TARGETS['course_dice'])} |")
    if "training" in r:
        wait = max(t["data_wait_share"] for t in r["training"])
        lines.append(f"| data waiting within {TARGETS['data_wait_share']:.0%} of a step | {wait:.1%} (worst model) | "
                     f"{_verdict(wait <= TARGETS['data_wait_share'])} |")
    if "preprocessing" in r:
        p = r["preprocessing"]
        lines.append(f"| preprocessing at least {TARGETS['preprocessing_ratio']:g}x the predecessor's preprocessing | "
                     f"{p['ratio_2w_vs_predecessor']:.2f}x (2 workers), {p['ratio_1w_vs_predecessor']:.2f}x (1 worker) | "
                     f"{_verdict(p['ratio_2w_vs_predecessor'] >= TARGETS['preprocessing_ratio'])} |")
    q = r.get("quality", {})
    for where, label in (("synthetic", "synthetic data at real sizes"), ("real_samples", "the real samples")):
        if q.get(where):
            kit, old = q[where]["kit"], q[where]["predecessor"]
            ahead = all(kit[f"dice_{s}"] > old[f"dice_{s}"] for s in STRUCTS)
            lines.append(f"| kit's recipe ahead of the predecessor's at equal time on every structure, {label} | "
                         + ", ".join(f"{s} {kit[f'dice_{s}']:.3f} vs {old[f'dice_{s}']:.3f}" for s in STRUCTS)
                         + f" | {_verdict(ahead)} |")
    return lines + [""]


def _quality(q: dict) -> list[str]:
    precision = f", {q['precision']}" if "precision" in q else ""
    lines = [f"## Quality at equal wall time ({q['budget_s']:.0f} s of training each, {q['model']}{precision})", "",
             "Each recipe first runs 10 iterations to measure its speed, then trains for as many iterations as fit "
             "in the budget (cosine schedule over them), and is scored the kit's way: Dice per structure, "
             "background excluded, on each test series' original grid. Kit: spacing-aware resampling, per-image "
             "normalisation, 3 structures, class-balanced patches, augmentation. Predecessor: " + predecessor.describe()
             + ", whole volumes as patches.", "",
             "| data | recipe | iterations | vertebra | disc | canal |", "| --- | --- | --- | --- | --- | --- |"]
    for where, label in (("synthetic", "synthetic, SPIDER's real sizes (test = official-validation patients)"),
                         ("real_samples", "4 real samples, leave one out (mean of 4 folds)")):
        for recipe in RECIPES:
            v = q.get(where, {}).get(recipe)
            if not v:
                continue
            its = v["iterations"] if "iterations" in v else "/".join(str(f["iterations"]) for f in v["folds"])
            lines.append(f"| {label} | {recipe} | {its} | {v['dice_vertebra']:.3f} | {v['dice_disc']:.3f} | "
                         f"{v['dice_canal']:.3f} |")
    if q.get("real_samples"):
        lines += ["", "The real-sample comparison is tiny: 3 training volumes of 13-30 slices each and one test "
                  "volume per fold, all T2 SPACE, 4 folds. It shows the direction on real anatomy, not a "
                  "generalisable number."]
    if q.get("load_average") is not None:
        lines += ["", f"Load average while measuring: {q['load_average']:.1f} on {os.cpu_count()} cores."]
    return lines + [""]


def _scoring_markdown(s: dict) -> str:
    worst = max(v["seconds"] for v in s["summary"].values())
    m = s.get("machine", {})
    where = f" on {m['cpus']} CPUs" if m else ""
    lines = ["", "## Evaluation speed and numbering cost (real-sized series)", "",
             f"Measured by `{s['command']}`{where} on {len(s['series']) // len(s['summary'])} {s['source']}; "
             "everything `evaluate` does for a series after the network (`evaluate_series`: instance numbering, "
             "semantic Dice/HD95/ASSD raw and after cleanup, the predecessor's number, the challenge's instance figures in "
             "both variants, writing both maps, and the numbering check). Wall seconds on a shared machine (the "
             "load average before each series is in benchmarks.json); CPU seconds of this process beside them.", "",
             "| prediction | seconds per series (mean) | max | CPU seconds (mean) | target |", "| --- | --- | --- | --- | --- |"]
    for kind, v in s["summary"].items():
        lines.append(f"| {kind} | {v['seconds']:.2f} | {v['max_seconds']:.2f} | {v['cpu_seconds']:.2f} | "
                     f"{_verdict(v['seconds'] <= TARGETS['scoring_seconds'])} (at most {TARGETS['scoring_seconds']:g} s) |")
    sizes = sorted({"x".join(map(str, numpy_order(r["size"]))) for r in s["series"]})
    lines += ["", f"Series sizes (slices x rows x columns as numpy holds them): {', '.join(sizes)}. Good: the reference "
              "moved by one voxel in-plane. Scattered: that, with 1 % of all voxels turned into a random structure "
              "(each a stray fragment). Bloated: that, with half of the volume painted with blobs of random structures "
              "(smoothed noise), as an early model paints it. Smoke model, N iterations: what a model trained that long by the smoke "
              "profile on synthetic data predicts on these series (`--run RUN`, repeatable; the course's model in the full "
              "benchmark).", "",
              "What numbering alone costs: each reference mask reduced to its three structures, numbered again by the "
              "kit (`helpers.inference.numbering`), and scored against itself the challenge's way (mean over series):", "",
              "| DiceScoreVertebrae | DiceScoreDiscs | DetectionRateVertebrae | DetectionRateDiscs | OveralDiceScore |",
              "| --- | --- | --- | --- | --- |",
              "| " + " | ".join(f"{s['numbering_cost'][k]['mean']:.4f}" for k in (
                  "DiceScoreVertebrae", "DiceScoreDiscs", "DetectionRateVertebrae", "DetectionRateDiscs",
                  "OveralDiceScore")) + " |"]
    if worst > TARGETS["scoring_seconds"]:
        lines += ["", "Where the target is missed: see 'Speed' and 'The band of rows' in docs/scoring.md."]
    return "\n".join(lines) + "\n"


def _class_markdown(c: dict) -> list[str]:
    """The real class rehearsed: preprocessing on the gpu grid, and the resource check's estimates against the run's."""
    return ["## The real class, rehearsed on this machine (gpu profile, SPIDER-sized synthetic series)", "",
            f"Preprocessing on the gpu profile's 1 mm grid, 2 workers: {c['prep_series_per_s_2w']:.2f} series per second; "
            f"{c['prep_mb_per_series']:.1f} MB a series prepared (raw .mha {c['raw_mb_per_series']:.1f} MB) over "
            f"{c['series']} series.", "",
            f"`train` with the gpu profile ({c['parameters_m']:.1f} M parameters) on the CPU for {c['iterations']} "
            f"iterations, {c['volumes']} volumes ({c['voxels_millions']:.0f} M voxels); the resource check it prints before the "
            "first step, against what the run then measured:", "",
            "| figure | estimated before the first step | measured |", "| --- | --- | --- |",
            f"| host memory to cache every volume | {c['cache_planned_gb']:.2f} GB | {c['cache_filled_gb']:.2f} GB (the cache filled) |",
            f"| checkpoint disk | {c['checkpoint_disk_planned_gb']:.2f} GB (best, last, prev) "
            f"| {c['checkpoint_disk_used_gb']:.2f} GB after one save (`checkpoint_prev.pt` comes with the second) |",
            f"| the run's loop (from the first steps' {c['measured_iteration_s']:.1f} s an iteration) "
            f"| {c['predicted_loop_s']:.0f} s without validation | {c['loop_s']:.0f} s, the warm-up step and one "
            "validation included (the estimate adds the validations once the first is timed) |",
            f"| peak resident memory of the process | | {c['peak_rss_gb']:.1f} GB |", ""]


def to_markdown(r: dict) -> str:
    m = r["machine"]
    command = "python -m tools.bench" + (" --quick" if r["quick"] else "")
    lines = ["# Benchmarks", "",
             f"Measured by `{command}` on {m['platform']}, {m['cpus']} CPUs, {m['ram_gib']} GiB RAM, "
             f"GPU: {m['gpu'] or 'none'}; torch {m['torch']}, MONAI {m['monai']}, {m['threads']} torch threads.", ""]
    if "cpu" in m:
        lines += [f"CPU: {m['cpu']}; AVX2 {'yes' if m['avx2'] else 'no'}, AVX-512 {'yes' if m['avx512'] else 'no'}, "
                  f"native bfloat16 {'yes' if m['native_bf16'] else 'no'}; the kit trains here in {m['precision']} "
                  "unless a section says otherwise.", ""]
    lines += _targets(r)
    if "preprocessing" in r:
        p = r["preprocessing"]
        lines += ["## Preprocessing (synthetic series at SPIDER's real sizes)", "",
                  f"{p['series']} series, median {p['median_voxels_millions']:.1f} M voxels.", "",
                  "| pipeline | series per second |", "| --- | --- |",
                  f"| kit, 1 worker | {p['kit_series_per_s_1w']:.2f} |", f"| kit, 2 workers | {p['kit_series_per_s_2w']:.2f} |",
                  f"| the predecessor's (1 process, fixed {'x'.join(map(str, predecessor.PREDECESSOR_FIXED_SIZE))}, no anti-aliasing) "
                  f"| {p['predecessor_series_per_s']:.2f} |",
                  f"| kit rerun, nothing to do | {p['series'] / max(p['kit_rerun_seconds'], 1e-6):.0f} ({p['kit_rerun_seconds']:.2f} s) |", ""]
    if "training" in r:
        lines += ["## Training step on CPU (smoke patches, 2 volumes x 2 patches)", "",
                  "| model | parameters (M) | patch | step (s) | loader batch (s) | data wait share | peak RSS (MB) |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for t in r["training"]:
            lines.append(f"| {t['model']} | {t['parameters_m']:.1f} | {'x'.join(map(str, t['patch']))} | {t['step_s']:.2f} "
                         f"| {t['loader_batch_s']:.3f} | {t['data_wait_share']:.1%} | {t['peak_rss_mb']:.0f} |")
        lines.append("")
    if "inference" in r:
        i = r["inference"]
        lines += ["## Inference (sliding window, smoke model, original grid)", "",
                  f"{i['seconds_per_series']:.2f} s per series on average (max {i['max_seconds']:.2f} s) over {i['series']} "
                  f"series; peak RSS {i['peak_rss_mb']:.0f} MB.", ""]
    if "course" in r:
        runs = course_runs(r["course"])
        lines += ["## Course run (every notebook, smoke profile, headless)", "",
                  "Each column a `make run` from fresh data in one precision: float32 always (what a CPU without "
                  "native bfloat16 runs), float32 on AVX2 alone where this CPU has AVX-512 (torch's and oneDNN's "
                  "kernels limited with `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`: a laptop-class CPU), "
                  "bfloat16 where this CPU computes it natively.", "",
                  "| notebook | " + " | ".join(c["mode"] for c in runs) + " |",
                  "| --- |" + " --- |" * len(runs)]
        for name in runs[0]["notebooks"]:
            lines.append(f"| {name} | " + " | ".join(f"{c['notebooks'].get(name, float('nan')):.1f}" for c in runs) + " |")
        lines.append("| total | " + " | ".join(f"{c['seconds']:.1f}" for c in runs) + " |")
        lines.append("| test Dice vertebra / disc / canal | " + " | ".join(
            " / ".join(f"{c['test'][f'dice_{s}']:.3f}" for s in STRUCTS) if "test" in c else "" for c in runs) + " |")
        lines += ["", "Test Dice: held-out synthetic patients, original grids. Load average at the end of each run: "
                  + ", ".join(f"{c.get('load_average', float('nan')):.1f}" for c in runs) + ".", ""]
    if "quality" in r and "budget_s" in r["quality"]:
        lines += _quality(r["quality"])
    if "class" in r:
        lines += _class_markdown(r["class"])
    if "networks" in r:  # tools/compare_networks.py
        from tools.compare_networks import networks_markdown

        lines += networks_markdown(r["networks"], {**m, **r["networks"].get("machine", {})})
    if "scoring" in r:
        lines += _scoring_markdown(r["scoring"]).splitlines()
    from tools.gpu_check import gpu_markdown

    lines += gpu_markdown(r.get("gpu"))
    notes = r.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
