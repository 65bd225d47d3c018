"""UNETR against a CNN in the same wall-clock time: the comparison at the end of notebook 05.

`same_time_run` times a few quiet training steps of both networks in the kit's own loop, then trains the CNN on the
same data, loss, sampling and learning rate for the iterations that UNETR's training time buys it (validated as
often, relative to its length), into the run folder's `train_<model>/`. `plot_compared` draws both runs'
validation Dice per structure against training seconds, side by side; `compared_table` their cost and best Dice.
The bench's `networks` section does the same for more networks and budgets (tools/compare_networks.py,
docs/networks.md).

Used by notebook 05 (its last section) and exercise 05.4.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from helpers.core.atomic import save_figure, write_text_atomic
from helpers.core.errors import KitError
from helpers.core.paths import RunFiles
from helpers.core.profiles import NETWORK_NAMES
from helpers.data.labels import FOREGROUND, STRUCTURE_COLOURS

SAME_TIME_FILE = "same_time.json"  # in the CNN's run folder: how its iterations were chosen (kept for a rerun)


def comparison_dir(train_dir: str | Path, model: str) -> Path:
    """Where the comparison run of `model` lives: beside the course's train/ folder."""
    return Path(train_dir).with_name(f"train_{model}")


def compared_runs(train_dir: str | Path) -> dict[str, Path]:
    """The same-time comparison runs trained beside the course's run (notebook 05's last section), by the label
    notebook 06's table and the report give them; empty when none was trained."""
    found = {}
    for run in sorted(Path(train_dir).parent.glob(f"{Path(train_dir).name}_*")):
        config = RunFiles(run).config
        if (run / SAME_TIME_FILE).is_file() and config.is_file() and RunFiles(run).checkpoint("best").is_file():
            model = json.loads(config.read_text()).get("model", run.name)
            found[f"{NETWORK_NAMES.get(model, model)} in UNETR's training time (notebook 05)"] = run
    return found


def step_times(config, steps: int = 10) -> tuple[list[float], int]:
    """Seconds of each training step of `config`'s network in the kit's loop on this machine, steps 3 to `steps`
    (the first two warm up), and its parameter count: `steps` steps on its training data (no validation, a throwaway
    folder). Notebook 05's comparison and the bench's `networks` section (tools/compare_networks.py) both use it."""
    from helpers.training.loop import train
    from helpers.training.run_log import read_metrics

    with tempfile.TemporaryDirectory(prefix="kit-steps-") as tmp:
        datalist = _training_only(Path(config.datalist), Path(tmp) / "datalist.json")
        summary = train(replace(config, datalist=str(datalist), run_dir=str(Path(tmp) / "run"), max_iterations=steps,
                                val_every=steps, log_every=1), progress=False)
        rates = [e["iterations_per_s"] for e in read_metrics(Path(tmp) / "run") if e["kind"] == "train"][2:]
    return [1 / r for r in rates], int(summary["parameters"])


def step_seconds(config, steps: int = 10) -> float:
    """The median seconds of a training step of `config`'s network in the kit's loop on this machine (step_times)."""
    return float(np.median(step_times(config, steps)[0]))


def _training_only(datalist: Path, out: Path) -> Path:
    """A copy of `datalist` with absolute paths and no validation part (timing only)."""
    raw = json.loads(datalist.read_text())

    def absolute(item: dict) -> dict:
        return {**item, **{k: str((datalist.parent / item[k]).resolve()) for k in ("image", "label")}}

    raw["training"] = [absolute(i) for i in raw["training"]]
    raw["validation"] = []
    raw.setdefault("data", {})
    if "prep_dir" in raw["data"]:
        raw["data"] = {**raw["data"], "prep_dir": str((datalist.parent / raw["data"]["prep_dir"]).resolve())}
    write_text_atomic(out, json.dumps(raw))
    return out


def same_time_run(config, other: str = "segresnet", callback=None, progress: bool = True) -> dict:
    """Train `other` for the wall-clock time UNETR's run in `config.run_dir` trained (its steps, not its validation),
    with everything else the same; {model: {"run", "step_s", "iterations", "parameters"}} for both. A rerun reuses
    the step times it measured first (`same_time.json`), so it resumes or returns the finished run."""
    from helpers.training.loop import TrainConfig, train
    from helpers.training.models import PATCH_MULTIPLE, build_model, parameter_count
    from helpers.training.run_record import upgraded

    base = RunFiles(Path(config.run_dir))
    if not base.config.is_file():
        raise KitError(f"{config.run_dir} holds no trained run yet: train UNETR first (section 5 above)")
    done = upgraded(json.loads(base.config.read_text()))
    unetr = TrainConfig(**{k: v for k, v in done.items() if k in TrainConfig.__dataclass_fields__})
    multiple = PATCH_MULTIPLE[other]
    patch = [max(multiple, round(v / multiple) * multiple) for v in unetr.patch_size]
    out_dir = comparison_dir(config.run_dir, other)
    record = out_dir / SAME_TIME_FILE
    if record.is_file():
        plan = json.loads(record.read_text())
    else:
        cnn = replace(unetr, model=other, patch_size=patch, model_options={})
        steps = {unetr.model: step_seconds(unetr), other: step_seconds(cnn)}
        iterations = max(2, round(unetr.max_iterations * steps[unetr.model] / steps[other]))
        plan = {"step_s": steps, "iterations": {unetr.model: unetr.max_iterations, other: iterations},
                "val_every": max(1, round(iterations * unetr.val_every / unetr.max_iterations)),
                "seconds": unetr.max_iterations * steps[unetr.model], "measured_at": time.strftime("%Y-%m-%d %H:%M")}
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(record, json.dumps(plan, indent=1))
    cnn = replace(unetr, model=other, run_dir=str(out_dir), patch_size=patch, model_options={},
                  max_iterations=plan["iterations"][other], val_every=plan["val_every"])
    train(cnn, callback=callback, progress=progress)
    runs = {}
    for model, run_config in ((unetr.model, unetr), (other, cnn)):
        net = build_model(model, tuple(run_config.patch_size), run_config.model_options)
        runs[model] = {"run": Path(run_config.run_dir), "step_s": plan["step_s"][model],
                       "iterations": plan["iterations"][model], "parameters": parameter_count(net)}
    return runs


def best_dice(run_dir: str | Path) -> dict[str, float]:
    """The best validation Dice each structure reached in a run (and the mean's), from its metrics.jsonl."""
    from helpers.training.run_log import read_metrics

    validations = [e for e in read_metrics(run_dir) if e.get("kind") == "validation" and "dice_mean" in e]
    if not validations:
        raise FileNotFoundError(f"{run_dir} has no validation yet (notebook 05 trains it)")
    return {name: max(float(e[f"dice_{name}"]) for e in validations) for name in (*FOREGROUND, "mean")}


def compared_table(runs: dict):
    """One row per network: parameters, step time, iterations, training seconds, best validation Dice."""
    import pandas as pd

    rows = []
    for model, run in runs.items():
        best = best_dice(run["run"])
        rows.append({"network": NETWORK_NAMES.get(model, model), "parameters (M)": round(run["parameters"] / 1e6, 2),
                     "step (s)": round(run["step_s"], 3), "iterations": run["iterations"],
                     "training (s)": round(run["step_s"] * run["iterations"]),
                     **{f"best Dice {name}": round(best[name], 3) for name in (*FOREGROUND, "mean")}})
    return pd.DataFrame(rows)


def plot_compared(runs: dict, save: str | Path | None = None):
    """Validation Dice of each structure against training seconds (iteration x quiet step time), one panel per
    structure, one line per network: the same budget on one axis."""
    import matplotlib.pyplot as plt

    from helpers.training.run_log import read_metrics

    fig, axes = plt.subplots(1, len(FOREGROUND), figsize=(12, 3.6), sharey=True)
    styles = ["o-", "s--", "^:"]
    for (model, run), style in zip(runs.items(), styles):
        val = [e for e in read_metrics(run["run"]) if e.get("kind") == "validation" and "dice_mean" in e]
        seconds = [e["iteration"] * run["step_s"] for e in val]
        for ax, name in zip(axes, FOREGROUND):
            ax.plot(seconds, [e[f"dice_{name}"] for e in val], style, color=STRUCTURE_COLOURS[name],
                    label=NETWORK_NAMES.get(model, model), alpha=0.9 if style == styles[0] else 0.6)
    for ax, name in zip(axes, FOREGROUND):
        ax.set(title=name, xlabel="training seconds (iterations x step time)", ylim=(0, 1), xlim=(0, None))
        ax.legend(fontsize=8)
    axes[0].set_ylabel("validation Dice")
    fig.tight_layout()
    save_figure(fig, save)
    return fig


def structure_gained_most(run_dir: str | Path, other_dir: str | Path) -> str:
    """The structure whose best validation Dice the other network raised most over UNETR's (exercise 05.4)."""
    base, other = best_dice(run_dir), best_dice(other_dir)
    return max(FOREGROUND, key=lambda name: other[name] - base[name])
