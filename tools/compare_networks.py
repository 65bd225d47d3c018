"""UNETR beside the networks that beat it in published comparisons, at equal training time on this machine.

`python -m tools.bench --only networks` (figures into report/benchmarks.json and .md; docs/networks.md reads them).

Fair on a shared machine: each network's step time is measured quietly first (the kit's own loop, 12 steps with a
log line per step, under the bench's lock; the lower quartile of steps 3-12, so a step another process slowed
does not count), and each run then trains for the number of iterations that `budget_s` seconds of such steps buy.
Contention during training changes how long a run takes, not what it learns.

The recipe is the kit's smoke recipe for every network (its grid, 2 volumes x 1 patch a step, patch centres
2:1:1:1, Dice + cross-entropy, AdamW with 5 % warmup then cosine decay, augmentation): only the network, its
patch (SwinUNETR needs every side a multiple of 32) and its learning rate differ. Tuning: the same effort for
each, two learning rates, the one with the higher validation Dice on the synthetic data kept (and used on the real
samples). Data: synthetic patients at SPIDER's real matrix size (train / validation / test by patient), and the real
samples, leave-one-out (train on three, test on the fourth, each in turn; no validation part: the last checkpoint).
Test figures as `evaluate` computes them on each series' own grid: Dice per structure, and the challenge's instance
view (instance Dice and detection rates of vertebrae and discs).

Used by no notebook: tools/bench.py's `networks` section.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from helpers.core.atomic import write_text_atomic

STRUCTURES = ("vertebra", "disc", "canal")
CHALLENGE = ("DiceScoreVertebrae", "DiceScoreDiscs", "DiceScoreSpinalCanal", "DetectionRateVertebrae",
             "DetectionRateDiscs")


def contenders() -> list[dict]:
    """The networks compared: name shown, --model, its options, its patch (AP, SI, LR), the two learning rates
    tried, and whether it runs on the real samples too."""
    from helpers.core.profiles import get_profile

    smoke = list(get_profile("smoke").patch_size)
    return [
        {"name": "UNETR (smoke size)", "model": "unetr", "options": get_profile("smoke").model, "patch": smoke,
         "lrs": [3e-3, 1e-3], "real": True},
        {"name": "UNETR (gpu size, ViT-B)", "model": "unetr", "options": get_profile("gpu").model, "patch": smoke,
         "lrs": [6e-4, 2e-4], "real": False},  # a 93 M-parameter transformer: 1e-3 and above is not its range
        {"name": "SegResNet", "model": "segresnet", "options": {}, "patch": smoke, "lrs": [3e-3, 1e-3], "real": True},
        {"name": "DynUNet (nnU-Net's U-Net)", "model": "dynunet", "options": {}, "patch": smoke, "lrs": [3e-3, 1e-3],
         "real": True},
        {"name": "SwinUNETR", "model": "swinunetr", "options": {}, "patch": [64, 64, 32], "lrs": [3e-3, 1e-3],
         "real": True},
    ]


def _config(datalist: Path, run_dir: Path, net: dict, lr: float, iterations: int, **extra):
    from helpers.training.loop import TrainConfig

    return TrainConfig(str(datalist), str(run_dir), profile="smoke", model=net["model"], patch_size=net["patch"],
                       model_options=dict(net["options"]), lr=lr, max_iterations=iterations,
                       val_every=iterations, **extra)


def calibrate_worker(datalist: str, net: dict, steps: int = 12) -> dict:
    """The quiet time of one training step of `net` in the kit's loop (helpers.course.networks.step_times: `steps`
    iterations on the training part, the first two warming up): the lower quartile and the median."""
    from helpers.course.networks import step_times

    seconds, parameters = step_times(_config(Path(datalist), Path("unused"), net, net["lrs"][0], steps), steps)
    return {"step_s": float(np.percentile(seconds, 25)), "step_median_s": float(np.median(seconds)),
            "parameters_m": parameters / 1e6}


def train_worker(datalist: str, run_dir: str, net: dict, lr: float, iterations: int, part: str | None) -> dict:
    """Train `iterations` and, when `part` is given, score it (evaluate: Dice per structure and the challenge's
    figures); the validation Dice of the last validation."""
    from helpers.evaluation.evaluate import evaluate
    from helpers.training.loop import train
    from helpers.training.run_log import read_metrics

    t0 = time.perf_counter()
    train(_config(Path(datalist), Path(run_dir), net, lr, iterations), progress=False)
    out = {"lr": lr, "iterations": iterations, "train_wall_s": time.perf_counter() - t0,
           "load_average": os.getloadavg()[0]}
    validations = [e for e in read_metrics(run_dir) if e["kind"] == "validation" and "dice_mean" in e]
    if validations:
        out["validation"] = {k: validations[-1][k] for k in ("dice_mean", *(f"dice_{s}" for s in STRUCTURES))}
    if part:
        out["test"] = scores(evaluate(run_dir, part=part, progress=False).summary)
    return out


def scores(summary: dict) -> dict:
    """The figures compared: Dice per structure (the kit's view) and the challenge's instance view, in its corrected
    variant (a missed instance no longer makes the whole scan's figure NaN: with a short budget nearly every scan
    misses one) and, prefixed `as_challenge_`, as the challenge's own code computes it."""
    out = {f"dice_{s}": summary["metrics"][f"dice_{s}"]["mean"] for s in STRUCTURES}
    out.update({k: summary.get("challenge_corrected", {}).get(k, {}).get("mean") for k in CHALLENGE})
    out.update({f"as_challenge_{k}": summary.get("challenge", {}).get(k, {}).get("mean") for k in CHALLENGE})
    out["series"] = summary["cases"]
    return out


def _prepare(data: Path, tmp: Path, name: str) -> Path:
    """`data` on the smoke profile's grid and its datalist (split by patient)."""
    from helpers.core.profiles import get_profile
    from helpers.data.datalist import write_datalist
    from helpers.data.resample import ResampleSettings, resample_dataset

    resample_dataset(data, tmp / f"{name}_prep", ResampleSettings(min_inplane_mm=get_profile("smoke").inplane_mm),
                     progress=False)
    write_datalist(tmp / f"{name}_prep", tmp / f"{name}_datalist.json")
    return tmp / f"{name}_datalist.json"


def leave_one_out(datalist: Path) -> list[Path]:
    """One datalist per patient: train on all the others (no validation), test on that one."""
    raw = json.loads(datalist.read_text())
    items = [i for part in ("training", "validation", "test") for i in raw.get(part, [])]
    paths = []
    for patient in sorted({i["patient"] for i in items}, key=str):
        fold = {**raw, "training": [i for i in items if i["patient"] != patient], "validation": [],
                "test": [i for i in items if i["patient"] == patient], "split": f"leave patient {patient} out"}
        paths.append(datalist.with_name(f"{datalist.stem}_without_{patient}.json"))
        write_text_atomic(paths[-1], json.dumps(fold, indent=1))
    return paths


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None and r[key] == r[key]]
    return float(np.mean(values)) if values else None


def bench_networks(tmp: Path, budget_s: float, real_samples: Path | None, isolated, patients: int = 6,
                   say=print) -> dict:
    """Each contender: quiet step time, peak memory and parameters; two learning rates on synthetic patients at
    SPIDER's size (the better on validation kept and scored on the test patients); then the real samples,
    leave-one-out, at that learning rate. `isolated(fn, *args)` runs fn in a fresh process and returns (its
    result, that process's peak memory in MB)."""
    from helpers.data.synth import write_dataset
    from helpers.training.models import cpu_precision

    started = time.perf_counter()
    data = write_dataset(tmp / "networks_real_size", cases=patients, seed=5, scale=1.0, progress=False)
    synthetic = _prepare(data, tmp, "networks_synthetic")
    folds = leave_one_out(_prepare(real_samples, tmp, "networks_real")) if real_samples is not None else []
    split = json.loads(synthetic.read_text())
    out = {"budget_s": budget_s, "precision": cpu_precision(), "patients": patients,
           "split": {part: len({i["patient"] for i in split[part]}) for part in ("training", "validation", "test")},
           "real_folds": len(folds), "networks": []}
    for net in contenders():
        row = {k: net[k] for k in ("name", "model", "options", "patch", "lrs")}
        timing, peak = isolated(calibrate_worker, str(synthetic), net)
        row.update(timing, peak_rss_mb=peak)
        iterations = max(10, int(budget_s / timing["step_s"]))
        row["iterations"] = iterations
        say(f"  {net['name']}: {timing['step_s']:.2f} s a step (median {timing['step_median_s']:.2f}), "
            f"{iterations} iterations in {budget_s:g} s, peak {peak:.0f} MB")
        tries = []
        for i, lr in enumerate(net["lrs"]):
            result, peak = isolated(train_worker, str(synthetic), str(tmp / f"synthetic_{net['name']}_{i}"), net, lr,
                                    iterations, None)
            tries.append({**result, "peak_rss_mb": peak})
            say(f"    lr {lr:g}: validation Dice {result.get('validation', {}).get('dice_mean', float('nan')):.3f} "
                f"({result['train_wall_s']:.0f} s)")
        row["tries"] = tries
        best = max(range(len(tries)), key=lambda i: tries[i].get("validation", {}).get("dice_mean", -1.0))
        row["chosen_lr"] = net["lrs"][best]
        from helpers.evaluation.evaluate import evaluate

        row["synthetic"] = scores(evaluate(tmp / f"synthetic_{net['name']}_{best}", part="test",
                                           progress=False).summary)
        say(f"    synthetic test (lr {row['chosen_lr']:g}): " + _line(row["synthetic"]))
        if folds and net["real"]:
            runs = [isolated(train_worker, str(fold), str(tmp / f"real_{net['name']}_{fold.stem}"), net,
                             row["chosen_lr"], iterations, "test")[0] for fold in folds]
            row["real"] = {"folds": runs, **{k: _mean([r["test"] for r in runs], k)
                                              for k in (*(f"dice_{s}" for s in STRUCTURES), *CHALLENGE)}}
            say("    real samples, leave-one-out: " + _line(row["real"]))
        out["networks"].append(row)
    out["seconds"] = time.perf_counter() - started
    return out


def _line(figures: dict) -> str:
    return ", ".join(f"{s} {figures[f'dice_{s}']:.3f}" if figures.get(f"dice_{s}") is not None else f"{s} n/a"
                     for s in STRUCTURES)


# ---------------------------------------------------------------- Markdown
def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def networks_markdown(result: dict, machine: dict) -> list[str]:
    """The section of benchmarks.md: the recipe, then one table per data set."""
    if not result:
        return []
    budget = result["budget_s"]
    lines = ["## Networks at equal training time (`--only networks`)", "",
             f"{machine.get('cpu', 'this CPU')}, {machine.get('cpus')} cores shared with other work, "
             f"{result['precision']}. Each network trains for the iterations that {budget:g} s of its quiet steps "
             "buy (the lower quartile of 10 steps of the kit's loop, timed under the bench's lock), so other "
             "processes slow a run down but do not change what it learns. The kit's smoke recipe for every "
             "network (2 mm in-plane grid, 2 patches a step, centres 2:1:1:1, Dice + cross-entropy, AdamW, 5 % "
             "warmup then cosine, augmentation); only the network, its patch and its learning rate differ. "
             "Tuning, the same for each: two learning rates on the synthetic data, the one with the higher "
             "validation Dice kept (and used on the real samples). Test figures as `evaluate` computes them on each "
             "series' own grid; instance Dice and detection rates as the SPIDER challenge computes them, in the kit's "
             "corrected variant (a missed instance no longer makes a scan's figure NaN; the challenge's own variant is "
             "in benchmarks.json).", "",
             f"Synthetic data: {result['patients']} patients at SPIDER's real matrix size, by patient "
             f"{result['split']['training']} training / {result['split']['validation']} validation / "
             f"{result['split']['test']} test.", "",
             "| network | parameters (M) | patch (AP x SI x LR) | quiet step (s) | peak memory (MB) | iterations "
             "| lr tried: validation Dice | test Dice vertebra / disc / canal | challenge instance Dice vertebrae / "
             "discs / canal | detection vertebrae / discs |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in result["networks"]:
        tries = ", ".join(f"{t['lr']:g}: {_f(t.get('validation', {}).get('dice_mean'))}"
                          + (" (kept)" if t["lr"] == row["chosen_lr"] else "") for t in row["tries"])
        s = row["synthetic"]
        lines.append(f"| {row['name']} | {row['parameters_m']:.1f} | {' x '.join(map(str, row['patch']))} "
                     f"| {row['step_s']:.2f} | {row['peak_rss_mb']:.0f} | {row['iterations']} | {tries} "
                     f"| {_f(s['dice_vertebra'])} / {_f(s['dice_disc'])} / {_f(s['dice_canal'])} "
                     f"| {_f(s['DiceScoreVertebrae'])} / {_f(s['DiceScoreDiscs'])} / {_f(s['DiceScoreSpinalCanal'])} "
                     f"| {_f(s['DetectionRateVertebrae'])} / {_f(s['DetectionRateDiscs'])} |")
    real = [row for row in result["networks"] if row.get("real")]
    if real:
        lines += ["", f"Real samples (../shared/real-samples, {result['real_folds']} patients), leave-one-out: each "
                  "network trained on three at its kept learning rate and tested on the fourth, in turn; mean over "
                  "the folds.", "",
                  "| network | iterations | test Dice vertebra / disc / canal | challenge instance Dice vertebrae / "
                  "discs / canal | detection vertebrae / discs | per fold (mean Dice of the three structures) |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for row in real:
            r = row["real"]
            per = ", ".join(_f(np.nanmean([f["test"][f"dice_{s}"] if f["test"][f"dice_{s}"] is not None else np.nan
                                           for s in STRUCTURES])) for f in r["folds"])
            lines.append(f"| {row['name']} | {row['iterations']} "
                         f"| {_f(r['dice_vertebra'])} / {_f(r['dice_disc'])} / {_f(r['dice_canal'])} "
                         f"| {_f(r['DiceScoreVertebrae'])} / {_f(r['DiceScoreDiscs'])} / "
                         f"{_f(r['DiceScoreSpinalCanal'])} | {_f(r['DetectionRateVertebrae'])} / "
                         f"{_f(r['DetectionRateDiscs'])} | {per} |")
    lines += ["", f"Measured in {result['seconds'] / 60:.0f} min. What it means, and its caveats: "
              "[docs/networks.md](../docs/networks.md).", ""]
    return lines
