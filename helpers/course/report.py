"""The report of a run, built from its artifacts only (config, metrics, evaluation), never from typed numbers.

Used by notebook 06 (and `python -m helpers report`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers.core.atomic import write_text_atomic
from helpers.core.errors import DataError
from helpers.core.paths import ROOT, RunFiles
from helpers.core.profiles import NETWORK_NAMES
from helpers.data.axes import CANONICAL_ORIENTATION
from helpers.data.labels import FOREGROUND, STRUCTURES
from helpers.data.predecessor import CT_WINDOW, PREDECESSOR_MAX_LEVEL, PREDECESSOR_REPORTED, instance_classes
from helpers.data.resample import ResampleSettings
from helpers.evaluation.stats import mean_sd

# SPIDER challenge hidden test set (van der Graaf et al. 2024; ../shared/spider-format.md): mean +- sd Dice
REFERENCE_RESULTS = {
    "official baseline (iterative instance segmentation)": {"vertebra": (0.93, 0.05), "disc": (0.84, 0.10),
                                                            "canal": (0.92, 0.04)},
    "nnU-Net (as reported with the paper)": {"vertebra": (0.92, 0.05), "disc": (0.86, 0.09), "canal": (0.92, 0.03)},
}


def markdown_table(frame: pd.DataFrame) -> str:
    rows = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * len(frame.columns)]
    rows += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(rows)


PREDECESSOR_CLASSES = (f"{len(instance_classes())} instance classes (vertebrae 1-{PREDECESSOR_MAX_LEVEL}, canal, "
                f"discs 201-{200 + PREDECESSOR_MAX_LEVEL})")


def _fmt_number(value: float | None) -> str:
    """One number as the report prints it: three decimals, or n/a."""
    return "n/a" if value is None or value != value else f"{value:.3f}"


def _challenge_view(summary: dict) -> list[str]:
    """View 2: the challenge's instance figures (both variants) and what numbering alone costs."""
    c, k = summary.get("challenge"), summary.get("challenge_corrected")
    if not c:
        return ["### View 2: the SPIDER challenge's instance scoring", "", "Not in this run's summary.json; "
                "evaluate again (notebook 06) to add it.", ""]
    lines = ["### View 2: the SPIDER challenge's instance scoring", "",
             "Each reference vertebra, disc and the canal matched to the predicted label it overlaps most (SPIDER "
             "values, numbered by the kit); Dice per instance, a vertebra or disc below 0.1 missed; symmetric average "
             "surface distance (ASD, mm) per instance. `challenge`: as the challenge's public code computes it "
             "(its leaderboard's numbers); `corrected`: spacing in the right axis order, and a series with a missed "
             "instance keeps its ASD, and all-missed is Dice 0 instead of n/a (see `helpers/evaluation/challenge.py`). Same "
             "figures: `eval/<part>/challenge.json`, or `python -m helpers score`.", "",
             "| structure | Dice | detection rate | ASD (mm), challenge | Dice, corrected | ASD (mm), corrected |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label, suffix in (("vertebrae", "Vertebrae"), ("discs", "Discs"), ("spinal canal", "SpinalCanal"),
                          ("overall", None)):
        dice = "OveralDiceScore" if suffix is None else f"DiceScore{suffix}"
        asd = "OveralASD" if suffix is None else f"ASD{suffix}"
        rate = mean_sd(c[f"DetectionRate{suffix}"]) if suffix in ("Vertebrae", "Discs") else ""
        lines.append(f"| {label} | {mean_sd(c[dice])} | {rate} | {mean_sd(c[asd])} | {mean_sd(k[dice]) if k else 'n/a'} "
                     f"| {mean_sd(k[asd]) if k else 'n/a'} |")
    n = summary.get("numbering_cost")
    if n:
        lines += ["", "What numbering alone costs here: the reference masks of these series, reduced to structures and "
                  "numbered by the kit, score Dice " + ", ".join(f"{name} {mean_sd(n[key])}" for name, key in (
                      ("vertebrae", "DiceScoreVertebrae"), ("discs", "DiceScoreDiscs"))) + "; detection " + ", ".join(
                      f"{name} {mean_sd(n[key])}" for name, key in (("vertebrae", "DetectionRateVertebrae"),
                                                                  ("discs", "DetectionRateDiscs"))) + "."]
    return lines + [""]


def preprocessing_lines(record: dict) -> list[str]:
    """The report's preprocessing section, from a run's preprocessing record (kit's or predecessor's recipe)."""
    pre = ResampleSettings.from_record(record, "the run's config.json")
    if pre.mode == "fixed_size":
        grid = f"size {' x '.join(map(str, pre.size))} voxels (AP x SI x LR), spacing per series"
    else:
        grid = "spacing " + (" x ".join(f"{v:g}" for v in pre.spacing) + " mm (AP x SI x LR)" if pre.spacing
                             else "n/a")
    if pre.intensity == "ct_window":
        lo, hi = CT_WINDOW
        intensity = f"the predecessor's fixed CT window [{lo:g}, {hi:g}] scaled to [0, 1], the same for every image"
    else:
        intensity = (f"each image clipped to its own {pre.percentiles[0]}-{pre.percentiles[1]} percentiles "
                     "and scaled to [0, 1] (no CT window)")
    if pre.labels == "instances":
        labels = f"the predecessor's {PREDECESSOR_CLASSES} and background; predictions scored as structures"
    else:
        labels = ", ".join(f"{index} {name}" for index, name in enumerate(STRUCTURES))
    return ["## Preprocessing", "",
            f"- reorientation to {CANONICAL_ORIENTATION} from the direction cosines; resampling mode `{pre.mode}`, {grid}",
            f"- intensity: {intensity}", f"- labels: `{pre.labels}` ({labels})", ""]


def _run_lines(run_dir: Path, part: str, config: dict, summary: dict, datalist: dict, entries: list[dict]) -> list[str]:
    """Title, provenance, data and split, preprocessing and training: what the run was."""
    from helpers.data.datalist import split_table

    synthetic = bool(config.get("data", {}).get("synthetic"))
    best = max((e for e in entries if e["kind"] == "validation" and "dice_mean" in e),
               key=lambda e: e["dice_mean"], default=None)
    lines = ["# Results of a training run", ""]
    if synthetic:
        lines += ["> **Synthetic data.** This run trained and was scored on the kit's synthetic SPIDER-format data,",
                  "> not on the real dataset. Its numbers check the pipeline; they say nothing about real spines.", ""]
    shown = run_dir.resolve().relative_to(ROOT) if ROOT in run_dir.resolve().parents else run_dir
    lines += [f"Built by `python -m helpers report --run {shown}` from the run's own files "
              f"(`config.json`, `metrics.jsonl`, `eval/{part}/`). Profile `{config['profile']}`, model "
              f"`{config['model']}`, {config['max_iterations']} iterations, checkpoint `{summary.get('checkpoint')}`.", ""]
    lines += ["## Data and split", "", datalist.get("split", ""), "",
              markdown_table(split_table(datalist).reset_index()), ""]
    lines += preprocessing_lines(config["preprocessing"])
    lines += ["## Training", "",
              f"{NETWORK_NAMES.get(config['model'], config['model'])} recipe: patches of {' x '.join(map(str, config['patch_size']))} voxels (AP x SI x LR), "
              f"{config['batch_size']} volumes x {config.get('samples_per_volume', 2)} patches per step, patch centres per "
              f"class (background, vertebra, disc, canal) {config.get('class_ratios') or 'half on a structure, half anywhere'}, "
              f"loss `{config.get('loss', 'dicece')}`, AdamW lr {config['lr']:g} with warmup and cosine decay.", "",
              "![training curves](figures/curves.png)", ""]
    if best:
        lines += [f"Best validation mean Dice {best['dice_mean']:.3f} at iteration {best['iteration']} "
                  f"(vertebra {best['dice_vertebra']:.3f}, disc {best['dice_disc']:.3f}, canal {best['dice_canal']:.3f}).", ""]
    return lines


def _cleanup_line(summary: dict) -> str:
    """Which post-processing the predictions carry, chosen per structure on the validation patients."""
    chosen = summary.get("cleanup")
    if chosen is None:
        return "Predictions as the network made them (no post-processing recorded)."
    kept = ", ".join(chosen) if chosen else "none"
    return ("Post-processing, chosen per structure on the validation patients (`helpers/training/postprocess.py`): the "
            "largest canal component, and vertebra and disc components of at least a tenth of the largest, are "
            f"kept for the structures where that raised the validation Dice: {kept}.")


def _metrics_lines(part: str, summary: dict, cases: bool = False) -> list[str]:
    """The metrics section: view 1 (per structure), view 2 (the challenge's), view 3 (the predecessor's)."""
    m = summary["metrics"]
    lines = [f"## Metrics on the `{part}` part ({summary['cases']} series, never used to choose the model)", "",
             "The same predictions scored three ways, each on every series' original grid; mean ± sd over series.", "",
             "**Which number to quote.** To compare with the SPIDER challenge (0.93 / 0.84 / 0.92 for vertebrae / "
             "discs / canal), quote view 2, the challenge's instance Dice with its detection rates, on held-out "
             "patients. View 1 is the kit's own per-structure Dice (no instances); view 3 is the predecessor's number and "
             "is comparable with neither.", "",
             "### View 1: semantic, per structure (the kit's Dice, HD95, ASSD)", "",
             "All vertebrae together are one structure, likewise discs and canal; background excluded; mm.", "",
             _cleanup_line(summary), "",
             "| structure | Dice | HD95 (mm) | ASSD (mm) | Dice, cleanup on all three |", "| --- | --- | --- | --- | --- |"]
    for name in FOREGROUND:
        lines.append(f"| {name} | {mean_sd(m[f'dice_{name}'])} | {mean_sd(m[f'hd95_{name}'])} | {mean_sd(m[f'assd_{name}'])} "
                     f"| {mean_sd(m[f'clean_dice_{name}'])} |")
    lines += ["", "![Dice, HD95 and ASSD per structure over the series](figures/boxplots.png)"]
    if cases:
        lines += ["", "Best, median and worst series (mean Dice over the structures); blue: missed, red: extra:", "",
                  "![best, median and worst series](figures/cases.png)"]
    lines += ["", f"Inference: {summary['seconds_per_case']:.2f} s per series on this machine"
              + (f"; scoring {summary['scoring_seconds_per_case']:.2f} s per series." if summary.get("scoring_seconds_per_case")
                 is not None else "."), ""]
    lines += _challenge_view(summary)
    lines += ["### View 3: the predecessor's single number", "",
              f"One mean Dice over {PREDECESSOR_CLASSES} with the background "
              f"included, as the predecessor project computed it, on the same predictions: {mean_sd(summary['predecessor_score'])}.", ""]
    return lines


def _level_lines(part: str, instances: pd.DataFrame | None, gallery: bool) -> list[str]:
    """Level by level: which reference vertebra or disc was found, renumbered, merged or missed, and the worst."""
    from helpers.evaluation.levels import describe, level_table, numbering_shifts, worst_instances

    lines = ["## Level by level: what was missed or merged", ""]
    if instances is None:
        return lines + [f"No `eval/{part}/instances.csv` in this run: evaluate again (notebook 06) to add it.", ""]
    lines += ["Every reference instance of every series, as the challenge matches it (view 2): **found**; "
              "**renumbered** (found, but the prediction gives it another number, so its level would be named "
              "wrongly); **merged** (one predicted label is the best match of two reference instances); **missed** "
              "(Dice below 0.1). Levels are named (L5, L4/L5, ...) where the reference has the disc on the sacrum "
              "(`helpers/data/labels.py`, `name_levels`). Per instance: `eval/<part>/instances.csv`.", "",
              markdown_table(level_table(instances)), ""]
    shifts = numbering_shifts(instances)
    if shifts:
        lines += [f"Numbered off by the same step throughout in {len(shifts)} of {instances['series'].nunique()} "
                  "series (" + ", ".join(f"{k} {v:+d}" for k, v in shifts.items()) + "): one level too many (+) or too "
                  "few (-) below the lowest reference vertebra, most often the unlabelled sacrum painted as a vertebra "
                  "or a partly visible bottom vertebra. The challenge's Dice does not see it (it matches by overlap); a "
                  "level's name and the predecessor's instance-class score do.", ""]
    lines += ["The worst instances (lowest Dice):", ""]
    lines += [f"- {describe(row)}, ASD {row['asd']:.1f} mm" for _, row in worst_instances(instances).iterrows()]
    if gallery:
        lines += ["", "![the worst instances](figures/instances.png)"]
    return lines + [""]


def comparison_table(summary: dict, part: str, synthetic: bool, others: dict[str, dict] | None = None) -> pd.DataFrame:
    """This run's numbers scored three ways beside the challenge's published ones and the predecessor's (notebook 06 shows
    it, the report prints it): mean ± sd Dice per structure and one number where a source gives one. `others` (label:
    evaluation summary on the same part) adds views 1 and 2 of other runs, e.g. notebook 05's same-time CNN."""
    n = len(instance_classes())
    rows = _views(summary, "this run", f"{'synthetic' if synthetic else 'SPIDER'} {part}")
    for label, other in (others or {}).items():
        rows += _views(other, label, "same series")
    rows.append({"source": f"this run, view 3: the predecessor's way ({n} instance classes, background in)",
                 "data": "same predictions", "one number": mean_sd(summary["predecessor_score"])})
    rows += [{"source": name, "data": "SPIDER hidden test set",
              **{s: mean_sd({"mean": ref[s][0], "sd": ref[s][1]}, digits=2) for s in ("vertebra", "disc", "canal")}}
             for name, ref in REFERENCE_RESULTS.items()]
    rows.append({"source": "predecessor project (reported)", "data": "its validation split, by series",
                 "one number": str(PREDECESSOR_REPORTED)})
    columns = ["source", "data", "vertebra", "disc", "canal", "one number"]
    return pd.DataFrame(rows, columns=columns).fillna("")


def _views(summary: dict, source: str, data: str) -> list[dict]:
    """View 1 (per structure) and, where scored, view 2 (the challenge's instance Dice) of one evaluation."""
    m, c = summary["metrics"], summary.get("challenge")
    rows = [{"source": f"{source}, view 1: per structure (background excluded)", "data": data,
             "vertebra": mean_sd(m["dice_vertebra"]), "disc": mean_sd(m["dice_disc"]), "canal": mean_sd(m["dice_canal"]),
             "one number": _fmt_number(summary.get("dice_mean_structures"))}]
    if c:
        rows.append({"source": f"{source}, view 2: the challenge's instance Dice", "data": "same predictions",
                     "vertebra": mean_sd(c["DiceScoreVertebrae"]), "disc": mean_sd(c["DiceScoreDiscs"]),
                     "canal": mean_sd(c["DiceScoreSpinalCanal"]), "one number": mean_sd(c["OveralDiceScore"])})
    return rows


def _comparison_lines(part: str, summary: dict, synthetic: bool, others: dict[str, dict] | None = None) -> list[str]:
    """How this run's numbers compare with the challenge's and the predecessor's, and why they differ."""
    lines = ["## How these numbers compare", "", markdown_table(comparison_table(summary, part, synthetic, others)), "",
              "Why these are different numbers:",
              f"- The predecessor's {PREDECESSOR_REPORTED} is one mean over {len(instance_classes())} instance classes **with background included**, on a validation "
              "split made by series in which 36 of 44 validation patients also had series in training. Background "
              "Dice is close to 1 for any sensible model, and leaked patients are easy: both lift that number. "
              "Instance classes also punish every numbering slip (a vertebra called 3 instead of 4 scores 0 on both), "
              "which lowers it. So it is neither comparable with a per-structure Dice nor with the challenge; the row "
              "above computes it on this run's predictions to show the size of the gap.",
              "- The challenge numbers come from its hidden test set of 39 patients and are per instance: each reference "
              "vertebra and disc is matched to the predicted label it overlaps most, a vertebra or disc below Dice 0.1 "
              "counts as missed (it lowers the detection rate and is left out of the mean Dice). View 2 computes exactly "
              f"that on the `{part}` patients; view 1 is per structure (semantic).", ""]
    return lines


MERGED_GAP = 0.15  # view 2's vertebrae this far below view 1's: the numbering merged levels (docs/scoring.md)


def _merged_vertebrae(summary: dict) -> str | None:
    """A line when the challenge's instance Dice of the vertebrae lies far below the semantic one: vertebrae
    merged into one label (joined behind the canal, the numbering's known limitation); None otherwise."""
    semantic = summary["metrics"]["dice_vertebra"].get("mean")
    instance = (summary.get("challenge") or {}).get("DiceScoreVertebrae", {}).get("mean")
    if semantic is None or instance is None or instance > semantic - MERGED_GAP:
        return None
    return (f"- View 2's vertebrae ({instance:.3f}) lie far below view 1's ({semantic:.3f}): the prediction joins "
            "vertebrae into one label where the numbering cannot part them (typically a band drawn behind the "
            "canal; the level table's \"merged\" column). A known limitation of `helpers.inference.numbering`, "
            "docs/scoring.md.")


def _limitations_lines(config: dict, synthetic: bool, summary: dict | None = None) -> list[str]:
    """What the numbers cannot say."""
    lines = ["## Limitations", "",
             "- " + ("Synthetic data: shapes and contrasts imitate SPIDER, but real anatomy and pathology vary more. "
                     if synthetic else "") + (f"The smoke profile trains {config['max_iterations']} iterations on a CPU: "
             "enough for clean, simple synthetic anatomy, not for real spines. Use the `gpu` profile on the real "
             "data for real numbers." if config["profile"] == "smoke" else ""),
             "- Instance numbering (SPIDER values) comes from connected components (`helpers.inference.numbering`); view 2 "
             "scores it the challenge's way, and the numbering cost above says how much of view 2's loss is numbering.",
             "- Surface distances are NaN for a series where a structure is missing on either side; such series are "
             "left out of that mean."]
    merged = _merged_vertebrae(summary) if summary else None
    return lines + ([merged] if merged else []) + [""]


def _evaluated_comparisons(run_dir: Path, part: str) -> dict[str, dict]:
    """Notebook 05's same-time comparison runs that notebook 06 evaluated on `part`: their summaries by label."""
    from helpers.course.networks import compared_runs

    found = {}
    for label, run in compared_runs(run_dir).items():
        summary = RunFiles(run).evaluation(part).summary
        if summary.is_file():
            found[label] = json.loads(summary.read_text())
    return found


def build_report(run_dir: str | Path, out: str | Path, part: str = "test") -> Path:
    """Write `out/README.md` and `out/index.html` with their figures, from RUN_DIR's files only (through
    `helpers.core.paths.RunFiles`): the curves, box plots, best / median / worst series and the worst instances are drawn
    here, so a report built from the command line has them all."""
    import matplotlib.pyplot as plt

    from helpers.evaluation.evaluate import read_evaluation
    from helpers.evaluation.levels import worst_instances
    from helpers.figures.charts import plot_curves, plot_metric_boxes
    from helpers.figures.gallery import pick_cases, show_cases, show_instances
    from helpers.training.run_log import read_metrics
    from helpers.training.run_record import read_run_record

    run_dir, out = Path(run_dir), Path(out)
    files = RunFiles(run_dir)
    for needed in (files.config, files.evaluation(part).summary, files.evaluation(part).metrics):
        if not needed.is_file():
            raise DataError(needed, "not found; train (notebook 05) and evaluate (notebook 06) first")
    config = read_run_record(run_dir)
    result = read_evaluation(run_dir, part)
    datalist = json.loads(Path(config["datalist"]).read_text())
    prep = datalist.get("data", {}).get("prep_dir")
    prep_dir = (Path(config["datalist"]).parent / prep).resolve() if prep else Path(config["datalist"]).parent
    entries = read_metrics(run_dir)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    plot_curves(entries, save=figures / "curves.png")
    plot_metric_boxes(result.table, save=figures / "boxplots.png")
    drawn = {"boxplots"}
    if "dice_vertebra" in result.table and (prep_dir / "manifest.json").is_file():
        show_cases(pick_cases(result.table), prep_dir, result.files.root, save=figures / "cases.png")
        drawn.add("cases")
    if len(result.instances) and (prep_dir / "manifest.json").is_file():
        show_instances(worst_instances(result.instances), prep_dir, result.files.root, save=figures / "instances.png")
        drawn.add("instances")
    plt.close("all")
    synthetic = bool(config.get("data", {}).get("synthetic"))
    instances = result.instances if len(result.instances) else None

    lines = (_run_lines(run_dir, part, config, result.summary, datalist, entries)
             + _metrics_lines(part, result.summary, cases="cases" in drawn)
             + _level_lines(part, instances, gallery="instances" in drawn)
             + _comparison_lines(part, result.summary, synthetic, _evaluated_comparisons(run_dir, part))
             + _limitations_lines(config, synthetic, result.summary))
    markdown = "\n".join(lines)
    write_text_atomic(out / "README.md", markdown)
    write_text_atomic(out / "index.html", _html(markdown))
    return out / "README.md"


def _html(markdown: str) -> str:
    """The report as one HTML page: its Markdown rendered by mistune (Jupyter's own Markdown library)."""
    import mistune

    body = mistune.create_markdown(escape=True, plugins=["table"])(markdown)
    style = ("body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px}img{max-width:100%}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Report</title><style>{style}</style></head><body>" \
           + body + "</body></html>\n"
