"""The gpu profile on a GPU, in one short run: what a session that is lent a GPU measures (issues 30 and 33).

`python -m tools.bench --only gpu` (the `gpu` part of report/benchmarks.json and .md). On a machine without a GPU the
section says so and measures nothing; `bench_gpu(..., tiny=True)` runs the same code on the CPU at tiny sizes (its
test, tests/test_gpu_check.py).

1. SPIDER-sized synthetic patients, prepared on the gpu profile's 1 mm grid and split by patient.
2. The gpu profile's own run (UNETR ViT-B, its patch, 2 volumes x 2 patches, AMP) for `iterations`: the resource
   check's lines against what the run measures (seconds a step, the data chain's share of the training time, peak
   allocated GPU memory), one sliding-window validation of the largest series (seconds, peak memory), the length of
   the profile's whole run (its iterations and validations), and whether the peaks fit a 16 GB T4.
3. The networks at the gpu profile's patch, the same iterations each, each at the learning rate it kept in the CPU
   comparison (`networks` section; else the first it tries): seconds a step, peak memory, test Dice, and the
   iterations an hour on this card buys.

A T4's speed is not measured here (no T4 is lent): what the figures say about it is memory, which does not depend on
the card.

On this project's lent GPU machines (Python 3.12 with PyTorch, no MONAI, SimpleITK or nibabel, no network): here,
`pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform
manylinux2014_x86_64 -d .whl monai==1.6.1 SimpleITK==2.5.7 nibabel==5.4.2` (58 MB; `.whl/` ignored through
.git/info/exclude), then there, carrying `.whl`: `pip install -q --no-index --no-deps --target /tmp/site
.whl/*.whl && PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 -m tools.bench --only gpu && cp report/benchmarks.*
$OUT/`, and commit the two files back.

Used by no notebook: tools/bench.py's `gpu` section.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

T4_GIB = 15.0  # of a T4's 16 GB, what a process can allocate (the CUDA context and the allocator's slack take the rest)


def _peak_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def _config(datalist: str, run_dir: str, iterations: int, patch=None, **changes):
    from helpers.training.loop import TrainConfig

    config = TrainConfig(datalist, run_dir, profile="gpu", max_iterations=iterations, val_every=iterations, **changes)
    return replace(config, patch_size=list(patch)) if patch else config


def largest_series(datalist: str) -> dict:
    """The validation or test item with the most voxels (the slowest validation a run does)."""
    from helpers.data.datalist import load_datalist
    from helpers.training.resources import voxels

    raw = load_datalist(Path(datalist))
    items = raw.get("validation", []) + raw.get("test", [])
    return max(items, key=lambda item: voxels(item["image"]))


def window_timing(run_dir: str, item: dict) -> dict:
    """One sliding-window prediction of a preprocessed series, as validation does it: seconds and peak memory."""
    import torch

    from helpers.inference.predict import Predictor
    from helpers.training.batch_guard import plain
    from helpers.training.models import autocast, sliding_window_logits
    from helpers.training.transforms import transforms

    predictor = Predictor(run_dir, checkpoint="last")
    volume = plain(transforms(predictor.patch, 1, False)(item)["image"])[None].to(predictor.device)
    cuda = predictor.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad(), autocast(predictor.device, predictor.config.get("amp", True)):
        sliding_window_logits(predictor.model, volume, predictor.patch)  # warm-up: kernels chosen, memory pooled
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        sliding_window_logits(predictor.model, volume, predictor.patch)
        if cuda:
            torch.cuda.synchronize()
    return {"series": item.get("series", Path(item["image"]).stem), "shape": list(volume.shape[2:]),
            "seconds": time.perf_counter() - t0, "peak_gib": _peak_gib()}


def profile_worker(datalist: str, run_dir: str, iterations: int, patch=None) -> dict:
    """The gpu profile's run for `iterations`: its resource check, what the run measured, one sliding-window
    validation of the largest series, and its test Dice."""
    import torch

    from helpers.core.profiles import get_profile
    from helpers.evaluation.evaluate import evaluate
    from helpers.training.loop import check_resources_for, train
    from helpers.training.run_log import read_metrics
    from tools.compare_networks import scores

    config = _config(datalist, run_dir, iterations, patch)
    check = check_resources_for(config)
    summary = train(config, progress=False)
    peak = _peak_gib()
    window = window_timing(run_dir, largest_series(datalist))
    validation = [e for e in read_metrics(run_dir) if e.get("kind") == "validation" and "seconds" in e]
    profile = get_profile("gpu")
    step = summary["measured_iteration_seconds"]
    val_s = validation[-1]["seconds"] if validation else 0.0
    whole = profile.max_iterations * step + (profile.max_iterations // profile.val_every) * val_s if step else None
    return {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "check": check.lines, "parameters_m": check.parameters / 1e6, "iterations": iterations,
            "patch": list(config.patch_size), "step_s": step, "data_wait_share": summary.get("data_wait_share"),
            "train_peak_gib": peak, "validation_s": val_s, "largest_validation": window,
            "profile_iterations": profile.max_iterations, "profile_val_every": profile.val_every,
            "profile_run_s": whole, "parameters": summary["parameters"],
            "test": scores(evaluate(run_dir, part="test", progress=False).summary)}


def network_worker(datalist: str, run_dir: str, net: dict, lr: float, iterations: int, patch=None) -> dict:
    """`net` at the gpu profile's patch for `iterations` at `lr`: seconds a step, peak memory, test Dice."""
    from helpers.evaluation.evaluate import evaluate
    from helpers.training.loop import train
    from tools.compare_networks import scores

    config = _config(datalist, run_dir, iterations, patch, model=net["model"], model_options=dict(net["options"]),
                     lr=lr)
    summary = train(config, progress=False)
    peak = _peak_gib()
    step = summary["measured_iteration_seconds"]
    return {"name": net["name"], "model": net["model"], "lr": lr, "iterations": iterations,
            "parameters_m": summary["parameters"] / 1e6, "step_s": step, "train_peak_gib": peak,
            "data_wait_share": summary.get("data_wait_share"),
            "iterations_an_hour": int(3600 / step) if step else None,
            "test": scores(evaluate(run_dir, part="test", progress=False).summary)}


def gpu_contenders(kept_lrs: dict[str, float]) -> list[dict]:
    """The networks of the CPU comparison at the gpu profile's size (UNETR only as the gpu profile builds it), each
    with the learning rate it kept there (`kept_lrs` by name), else the first it tries; UNETR at the profile's."""
    from helpers.core.profiles import get_profile
    from tools.compare_networks import contenders

    out = []
    for net in contenders():
        if net["model"] == "unetr" and net["options"] != get_profile("gpu").model:
            continue  # the smoke-size UNETR is the CPU's network
        lr = get_profile("gpu").lr if net["model"] == "unetr" else kept_lrs.get(net["name"], net["lrs"][0])
        out.append({**net, "lr": lr})
    return out


def bench_gpu(tmp: Path, isolated, kept_lrs: dict[str, float] | None = None, tiny: bool = False,
              iterations: int = 300, say=print) -> dict:
    """The figures above; `isolated(fn, *args)` runs fn in a fresh process, returning (result, peak RSS MB).
    Without a GPU: {"skipped": why}, unless `tiny` (the same code on the CPU: 6 small patients, 3 iterations, a
    64 x 64 x 32 patch)."""
    import torch

    from helpers.core.profiles import get_profile
    from helpers.data.datalist import write_datalist
    from helpers.data.resample import ResampleSettings, resample_dataset
    from helpers.data.synth import write_dataset

    if not torch.cuda.is_available() and not tiny:
        return {"skipped": "no GPU on the machine that ran the bench"}
    started = time.perf_counter()
    patients, scale = (6, 0.2) if tiny else (6, 1.0)
    iterations = 3 if tiny else iterations
    patch = [64, 64, 32] if tiny else None
    data = write_dataset(tmp / "gpu_data", cases=patients, seed=21, scale=scale, progress=False)
    t0 = time.perf_counter()
    resample_dataset(data, tmp / "gpu_prep", ResampleSettings(min_inplane_mm=get_profile("gpu").inplane_mm),
                     workers=1 if tiny else 8, progress=False)
    prep_s = time.perf_counter() - t0
    datalist = tmp / "gpu_datalist.json"
    write_datalist(tmp / "gpu_prep", datalist)
    split = json.loads(datalist.read_text())
    out = {"patients": patients, "scale": scale, "prep_s": prep_s, "tiny": tiny,
           "series": {part: len(split.get(part, [])) for part in ("training", "validation", "test")}}
    say(f"  {sum(out['series'].values())} series on the 1 mm grid in {prep_s:.0f} s")
    profile, rss = isolated(profile_worker, str(datalist), str(tmp / "gpu_run"), iterations, patch)
    window = profile["largest_validation"]
    out["profile"] = {**profile, "peak_rss_mb": rss}
    peaks = [p for p in (profile["train_peak_gib"], window["peak_gib"]) if p is not None]
    out["profile"]["fits_t4"] = bool(peaks) and max(peaks) <= T4_GIB
    say(f"  gpu profile on {profile['device']}: {profile['step_s']:.3f} s a step, peak "
        f"{profile['train_peak_gib'] or 0:.1f} GiB; largest series {window['shape']} in {window['seconds']:.2f} s")
    out["networks"] = []
    for net in gpu_contenders(kept_lrs or {}):
        if net["model"] == "unetr":  # the gpu profile's run above is this one
            step = profile["step_s"]
            row = {"name": net["name"], "model": "unetr", "lr": net["lr"], "iterations": iterations,
                   "parameters_m": profile["parameters"] / 1e6, "step_s": step,
                   "train_peak_gib": profile["train_peak_gib"], "data_wait_share": profile["data_wait_share"],
                   "iterations_an_hour": int(3600 / step) if step else None, "test": profile["test"]}
            out["networks"].append({**row, "peak_rss_mb": rss})
            continue
        row, rss = isolated(network_worker, str(datalist), str(tmp / f"gpu_{net['model']}"), net, net["lr"],
                            iterations, patch)
        out["networks"].append({**row, "peak_rss_mb": rss})
        say(f"  {net['name']}: {row['step_s']:.3f} s a step, peak {row['train_peak_gib'] or 0:.1f} GiB, test Dice "
            + " / ".join(f"{row['test'][f'dice_{s}']:.3f}" for s in ("vertebra", "disc", "canal")))
    out["seconds"] = time.perf_counter() - started
    return out


def _f(value, digits: int = 2, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def gpu_markdown(result: dict | None) -> list[str]:
    """The `gpu` section as Markdown: 'not measured' and why, or the figures with the card's name."""
    lines = ["", "## GPU: the gpu profile and the networks at its size", ""]
    if not result or "skipped" in result:
        why = (result or {}).get("skipped", "no GPU was lent to the sessions that ran the bench")
        return lines + [f"Not measured: {why}. A session lent a GPU runs `python -m tools.bench --only gpu` "
                        "(tools/gpu_check.py, sized for a 15-minute GPU session) and these figures appear here."]
    p = result["profile"]
    w = p["largest_validation"]
    whole = p["profile_run_s"]
    tiny = " (tiny sizes on the CPU: a test of the code, not figures)" if result["tiny"] else ""
    lines += [f"Card: **{p['device']}**{tiny}. "
              f"{result['patients']} synthetic patients at {result['scale']:g} x SPIDER's matrix size, prepared on the "
              f"1 mm grid in {result['prep_s']:.0f} s ({result['series']['training']} training, "
              f"{result['series']['validation']} validation, {result['series']['test']} test series).", "",
              f"The gpu profile's run ({p['parameters_m']:.1f} M parameters, patch "
              f"{' x '.join(map(str, p['patch']))}, {p['iterations']} iterations); the resource check it printed:", "",
              "```", *p["check"], "```", "",
              "| figure | measured |", "| --- | --- |",
              f"| seconds a step (AMP) | {_f(p['step_s'], 3)} |",
              f"| data chain's share of the training time | {_f((p['data_wait_share'] or 0) * 100, 0, ' %')} |",
              f"| peak allocated GPU memory, training | {_f(p['train_peak_gib'], 1, ' GiB')} |",
              f"| sliding-window validation of the largest series ({' x '.join(map(str, w['shape']))}) "
              f"| {_f(w['seconds'], 2, ' s')}, peak {_f(w['peak_gib'], 1, ' GiB')} |",
              f"| the profile's {p['profile_iterations']:,} iterations, a validation every {p['profile_val_every']} "
              f"| {_f(whole / 60 if whole else None, 0, ' min')} on this card |",
              f"| fits a 16 GB T4's memory ({T4_GIB:g} GiB allocatable) | {'yes' if p['fits_t4'] else 'no'} |", "",
              f"The networks at the gpu profile's patch, {p['iterations']} iterations each, the learning rate each "
              "kept in the CPU comparison (UNETR: the gpu profile's); test Dice on the held-out synthetic "
              "patients:", "",
              "| network | parameters (M) | lr | s a step | peak GiB | iterations an hour | vertebra | disc | canal "
              "| fits a T4's memory |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n in result["networks"]:
        t, peak = n["test"], n["train_peak_gib"]
        lines.append(f"| {n['name']} | {n['parameters_m']:.1f} | {n['lr']:g} | {_f(n['step_s'], 3)} "
                     f"| {_f(n['train_peak_gib'], 1)} | {n['iterations_an_hour'] or 'n/a'} "
                     f"| {_f(t['dice_vertebra'], 3)} | {_f(t['dice_disc'], 3)} | {_f(t['dice_canal'], 3)} "
                     f"| {'n/a' if peak is None else ('yes' if peak <= T4_GIB else 'no')} |")
    lines += ["", "A T4's speed is not measured (none is lent here): an hour on it buys fewer iterations than on this "
              "card. Memory does not depend on the card, so the last column holds for a T4."]
    return lines
