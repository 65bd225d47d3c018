"""Command line: `python -m helpers <command> ...`; each command calls the same functions as the notebooks.

Used by no notebook: `python -m helpers --help` lists the commands (docs/kit.md, "The command line").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from helpers.core.errors import KitError
from helpers.core.profiles import LOSSES, MODELS, PROFILES


def _synth(args) -> None:
    from helpers.data.synth import write_dataset

    write_dataset(args.out, cases=args.cases, seed=args.seed, scale=args.scale)
    print(f"wrote {args.cases} synthetic patients to {args.out}")


def _inspect(args) -> None:
    import pandas as pd

    from helpers.core.atomic import write_text_atomic
    from helpers.data.inspection import flagged, inspect_dataset

    table = inspect_dataset(_course(data_dir=args.data_dir).data, progress=True)
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_columns", None):
        print(table.drop(columns=["flags"]).to_string(index=False))
    bad = flagged(table)
    unused = int((~table["training"].astype(bool)).sum())
    print(f"\n{len(table)} rows, {len(bad)} flagged, {unused} not used for training")
    for _, row in bad.iterrows():
        print(f"  FLAGGED {row['series']}: {row['flags']}")
    if args.csv:
        write_text_atomic(args.csv, table.to_csv(index=False))
        print(f"table written to {args.csv}")


def _run_notebooks(args) -> None:
    from helpers.course.runner import run_notebooks

    only = args.only.split(",") if args.only else None
    extra = {"max_iterations": args.max_iterations} if args.max_iterations else None
    timings = run_notebooks(args.profile, only, args.data_dir, args.out, extra)
    total = sum(t for _, t in timings)
    print(f"ran {len(timings)} notebooks in {total:.0f} s")


def _resample(args) -> None:
    from helpers.core.profiles import get_profile
    from helpers.data.resample import ResampleSettings, resample_dataset

    course = _course(data_dir=args.data_dir, profile=args.profile)
    spacing = tuple(float(v) for v in args.spacing.split(",")) if args.spacing else None
    settings = ResampleSettings(mode=args.mode, spacing=spacing, labels=args.labels,
                                min_inplane_mm=get_profile(course.profile).inplane_mm)
    print(resample_dataset(course.data, args.out or course.layout.prep, settings, workers=args.workers))


def _datalist(args) -> None:
    from helpers.data.datalist import split_table, write_datalist

    layout = _course().layout if not (args.prep_dir and args.out) else None
    out = args.out or layout.datalist
    datalist = write_datalist(args.prep_dir or layout.prep, out, seed=args.seed, folds=args.folds)
    print(split_table(datalist).to_string())
    for reason in datalist["skipped"]:
        print(f"  NOT USED {reason}")
    print(f"{datalist['split']}; no patient in two parts -> {out}")


def _train(args) -> None:
    from helpers.core.profiles import device_message
    from helpers.training.loop import TrainConfig, require_profile_grid, train

    course = _course(profile=args.profile) if not (args.datalist and args.out and args.profile) else None
    profile = args.profile or course.profile
    print(device_message())
    config = TrainConfig(datalist=str(args.datalist or course.layout.datalist),
                         run_dir=str(args.out or course.layout.train), profile=profile, model=args.model,
                         max_iterations=args.max_iterations, val_every=args.val_every, lr=args.lr, seed=args.seed,
                         loss=args.loss, class_ratios=args.class_ratios, patch_size=args.patch_size)
    require_profile_grid(config)
    train(config)


def _evaluate(args) -> None:
    from helpers.data.predecessor import instance_classes
    from helpers.evaluation.evaluate import evaluate
    from helpers.evaluation.stats import mean_sd

    args.run = args.run or _course().layout.train
    result = evaluate(args.run, args.datalist, args.part)
    summary = result.summary
    for key, stat in summary["metrics"].items():
        if not key.startswith("clean_"):
            print(f"{key:16s} {mean_sd(stat)}")
    print(f"the predecessor's score ({len(instance_classes())} classes, background in): "
          f"{mean_sd(summary['predecessor_score'])}")
    for reason in result.skipped:
        print(f"  SKIPPED {reason}")
    print(f"per-case table: {result.files.metrics}; per instance: {result.files.instances}")


def _score(args) -> None:
    import json

    import pandas as pd

    from helpers.core.atomic import write_text_atomic
    from helpers.evaluation.challenge import CHALLENGE_METRICS, score_folders, structure_table, table

    doc = score_folders(args.reference, args.prediction, progress=True)
    print(f"{len(doc['scans'])} scans scored the SPIDER challenge's way (instances matched by overlap); "
          "mean ± sd over scans")
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_colwidth", 40):
        print(structure_table(doc).to_string(index=False))
    print("Dice, detection rate and ASD: as the challenge's own code computes them (its leaderboard's numbers); "
          "'corrected': spacing in the right axis order, a missed instance no longer drops the scan "
          "(see `python -c \"import helpers.evaluation.challenge; help(helpers.evaluation.challenge)\"`)")
    if args.json:
        write_text_atomic(args.json, json.dumps(doc, indent=1))
        print(f"per-scan figures and summary: {args.json}")
    if args.csv:
        corrected = table(doc, "corrected").rename(columns={m: f"corrected_{m}" for m in CHALLENGE_METRICS})
        frame = table(doc).merge(corrected, on="scan")
        write_text_atomic(args.csv, frame.to_csv(index=False))
        print(f"per-scan table: {args.csv}")


def _predict(args) -> None:
    from helpers.data.dicom_series import kind_of

    run = args.run or _course().layout.train
    if args.image.is_dir() and not kind_of(args.out):
        _predict_folder(args, run)
        return
    from helpers.inference.predict import predict_file

    print(f"wrote {predict_file(args.image, run, args.out, not args.structures, args.series or '')}")


def _predict_folder(args, run: Path) -> None:
    """Every scan and study inside a folder, into a folder: masks, pictures, summary.csv, the contact sheet."""
    from helpers.figures.contact_sheet import contact_sheet, scan_picture
    from helpers.inference.batch import SHEET, predict_folder

    result = predict_folder(args.image, run, args.out, args.series or "", seg=args.seg, picture=scan_picture)
    sheet = contact_sheet(result.rows, args.out / SHEET, f"Predicted scans of {args.image}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"{result.counts()}\ntable: {result.summary}\ncontact sheet: {sheet}")
    if result.failed:
        raise KitError(f"{len(result.failed)} of {len(result.rows)} scans could not be predicted (each said above, "
                       f"and in {result.summary}); the others were written. Rerun the same command after a fix: what "
                       "is done is kept")


def _report(args) -> None:
    from helpers.core.paths import run_layout
    from helpers.course.executed import keep_executed
    from helpers.course.report import build_report

    run = args.run or _course().layout.train
    layout = run_layout(Path(run).parent)
    out = args.out or layout.report
    if any(layout.notebooks.glob("[0-9][0-9]_*.ipynb")):  # the course run's executed notebooks, beside the report
        kept = keep_executed(layout.notebooks, Path(out) / "course")
        print(f"kept {len(kept)} executed notebooks in {Path(out) / 'course'}")
    print(f"wrote {build_report(run, out, args.part)}")


def _export(args) -> None:
    from helpers.inference.bundle import export_bundle

    run = args.run or _course().layout.train
    out = export_bundle(run, args.out)
    print(f"wrote the MONAI bundle {out}; run it with `python -m monai.bundle run --config_file "
          f"{out / 'configs' / 'inference.json'} --bundle_root {out} --dataset_dir DIR_OF_NIFTI`")


def _download(args) -> None:
    from helpers.data.download import ZENODO_FILES_URL, download, read_manifest_file

    manifest = read_manifest_file(args.manifest) if args.manifest else None
    download(args.to, args.base_url or ZENODO_FILES_URL, manifest)
    print(f"SPIDER is ready in {args.to}; next: notebook 00 with data_dir = {str(args.to)!r}")


def _solutions(args) -> None:
    from helpers.course.exercises import context, solutions_text

    print(solutions_text(context(args.data_dir or "", args.run or "", part=args.part), args.notebook))


COURSE_DEFAULT = "dataset folder (default: the course's, chosen in notebook 00; else data/synthetic)"


def _course(data_dir: Path | None = None, profile: str | None = None):
    """The course's choice (notebook 00, `run-notebooks`) with what the command line set; said in one line."""
    from helpers.course.choice import follow_course

    return follow_course(data_dir or "", profile or "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a synthetic dataset in SPIDER's layout")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--cases", type=int, default=10, help="number of patients (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0,
                   help="matrix size relative to SPIDER's (1.0 realistic; 0.25 small and fast)")
    p.set_defaults(func=_synth)

    p = sub.add_parser("inspect", help="table of every series, with flagged ones and why")
    p.add_argument("data_dir", type=Path, nargs="?", help=COURSE_DEFAULT)
    p.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("run-notebooks", help="execute the numbered notebooks headless with papermill")
    p.add_argument("--profile", default="smoke")
    p.add_argument("--only", help="comma-separated notebook numbers, e.g. 00,01,02")
    p.add_argument("--data-dir", help="dataset folder (default: the synthetic one under data/)")
    p.add_argument("--out", help="run folder (default: outputs/)")
    p.add_argument("--max-iterations", type=int, default=0,
                   help="training iterations in notebook 05 (0: the profile's); fewer only checks the plumbing")
    p.set_defaults(func=_run_notebooks)

    _data_commands(sub)
    _model_commands(sub)
    _other_commands(sub)
    return parser


def _data_commands(sub) -> None:
    """resample, datalist."""
    p = sub.add_parser("resample", help="reorient, resample, normalise and write NIfTI training data")
    p.add_argument("data_dir", type=Path, nargs="?", help=COURSE_DEFAULT)
    p.add_argument("--out", type=Path, help="output folder, outside the raw data (default: the course's prep/)")
    p.add_argument("--mode", choices=["spacing", "fixed_size"], default="spacing")
    p.add_argument("--spacing", help="AP,SI,LR in mm, the kit's axis order (default: chosen from the data)")
    p.add_argument("--profile", choices=list(PROFILES),
                   help="the profile to train with (default: the course's): its in-plane grid floor (" + ", ".join(
                       f"{p.name} {p.inplane_mm:g} mm" for p in PROFILES.values()) + ")")
    p.add_argument("--labels", choices=["structures", "instances"], default="structures")
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=_resample)

    p = sub.add_parser("datalist", help="MONAI datalist JSON split by patient, with a leakage check")
    p.add_argument("prep_dir", type=Path, nargs="?", help="default: the course's prep/")
    p.add_argument("--out", type=Path, help="default: the course's datalist.json")
    p.add_argument("--folds", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_datalist)



def _model_commands(sub) -> None:
    """train, evaluate, score, predict."""
    p = sub.add_parser("train", help="train a network on a datalist; rerun to resume")
    p.add_argument("--datalist", type=Path, help="default: the course's datalist.json")
    p.add_argument("--out", type=Path, help="run folder: checkpoints, config, metrics (default: the course's train/)")
    p.add_argument("--profile", choices=list(PROFILES), help="default: the course's")
    p.add_argument("--model", default="unetr", choices=list(MODELS))
    p.add_argument("--max-iterations", type=int)
    p.add_argument("--val-every", type=int)
    p.add_argument("--lr", type=float, help="learning rate (default: the profile's)")
    p.add_argument("--loss", choices=LOSSES, help="default: the profile's")
    p.add_argument("--class-ratios", type=lambda v: [float(x) for x in v.split(",")] if v else [],
                   help="patch centres per class background,vertebra,disc,canal, e.g. 2,1,1,1 (default: the "
                        "profile's; an empty string: half on a structure, half anywhere)")
    p.add_argument("--patch-size", type=lambda v: [int(x) for x in v.split(",")],
                   help="AP,SI,LR voxels, the kit's axis order (default: the profile's), e.g. 64,64,32")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="predict a datalist part and score it on the original grids")
    p.add_argument("--run", type=Path, help="default: the course's train/")
    p.add_argument("--datalist", type=Path, help="default: the run's own")
    p.add_argument("--part", default="test", choices=["validation", "test"])
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("score", help="score a folder of predicted masks the way the SPIDER challenge does")
    p.add_argument("--reference", required=True, type=Path, help="folder of reference masks <stem>.mha")
    p.add_argument("--prediction", required=True, type=Path,
                   help="folder of predictions <stem>.mha with SPIDER's values, on the references' grids")
    p.add_argument("--json", type=Path, help="write per-scan figures and the summary (the challenge's names) here")
    p.add_argument("--csv", type=Path, help="write the per-scan table here")
    p.set_defaults(func=_score)

    p = sub.add_parser("predict", help="segment a scan, a study, or every scan in a folder; masks keep their grid")
    p.add_argument("image", type=Path, help="an image file (.nii.gz, .nii, .mha, .nrrd), a DICOM series, study or "
                                            "export folder (DICOMDIR or not), a multi-frame DICOM file; or, with "
                                            "--out FOLDER, a folder of many scans and studies")
    p.add_argument("--series", help="DICOM: the series to use, by UID, series number or a word of its description "
                                    "(default: the sagittal T2, else T1)")
    p.add_argument("--run", type=Path, help="default: the course's train/")
    p.add_argument("--out", required=True, type=Path,
                   help="the mask: .nii.gz, .nii, .mha or .nrrd (a label image), or .dcm (DICOM SEG, DICOM input); "
                        "or a folder (no suffix) for every scan inside IMAGE: a mask and a picture each, "
                        "summary.csv and index.html (rerun to resume)")
    p.add_argument("--structures", action="store_true", help="write 0-3 structures instead of SPIDER values")
    p.add_argument("--seg", action="store_true", help="with --out FOLDER: also a DICOM SEG for each DICOM study")
    p.set_defaults(func=_predict)



def _other_commands(sub) -> None:
    """report, export, download, solutions (the benchmarks and the links writer are developer tools: tools/)."""
    p = sub.add_parser("report", help="write the report (Markdown and HTML) from a run's artifacts, with the "
                                      "course's executed notebooks beside it (<out>/course)")
    p.add_argument("--run", type=Path, help="default: the course's train/")
    p.add_argument("--out", type=Path, help="default: <run>/../report (the committed report/: `make report`)")
    p.add_argument("--part", default="test", choices=["validation", "test"])
    p.set_defaults(func=_report)

    p = sub.add_parser("export", help="hand a trained run on as a MONAI bundle (configs, weights, licence, docs)")
    p.add_argument("--run", type=Path, help="default: the course's train/")
    p.add_argument("--out", required=True, type=Path, help="a new folder for the bundle")
    p.set_defaults(func=_export)

    p = sub.add_parser("download", help="download, verify and extract the SPIDER dataset (resumable)")
    p.add_argument("--to", required=True, type=Path)
    p.add_argument("--base-url", help="fetch NAME from BASE_URL/NAME (default: Zenodo record 10159290)")
    p.add_argument("--manifest", type=Path, help='JSON {"files": [{"name", "sha256", "size"}]}')
    p.set_defaults(func=_download)

    p = sub.add_parser("solutions", help="for instructors: every exercise, its answer on this data, worked solution")
    p.add_argument("--notebook", help="only this notebook's exercises, e.g. 02")
    p.add_argument("--data-dir", help=COURSE_DEFAULT)
    p.add_argument("--run", help="course run folder (default: the course's)")
    p.add_argument("--part", default="test", choices=["validation", "test"])
    p.set_defaults(func=_solutions)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to continue", file=sys.stderr)
        return 130
    return 0
