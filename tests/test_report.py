"""The report's text follows the run's own config (helpers/course/report.py), whatever the recipe."""

from dataclasses import asdict

from helpers.course.report import _fmt_number, preprocessing_lines
from helpers.data.predecessor import PREDECESSOR_PREPROCESSING
from helpers.data.resample import ResampleSettings


def test_preprocessing_text_follows_the_config():
    kit = "\n".join(preprocessing_lines({**asdict(ResampleSettings()), "spacing": (1.0, 1.0, 3.3)}))
    assert "spacing 1 x 1 x 3.3 mm (AP x SI x LR)" in kit and "(no CT window)" in kit
    assert "0 background, 1 vertebra, 2 disc, 3 canal" in kit and "reorientation to PIR" in kit
    predecessor = "\n".join(preprocessing_lines(asdict(ResampleSettings(**PREDECESSOR_PREPROCESSING))))
    assert "no CT window" not in predecessor and "CT window [-1000, 3096]" in predecessor
    assert "3 canal" not in predecessor and "20 instance classes" in predecessor
    assert "128 x 128 x 32 voxels (AP x SI x LR)" in predecessor


def test_one_number_is_rounded():
    assert _fmt_number(0.0870580259846191) == "0.087"
    assert _fmt_number(None) == "n/a" and _fmt_number(float("nan")) == "n/a"


def test_html_renders_the_report_markdown():
    from helpers.course.report import _html

    page = _html("# Results\n\n> **Synthetic data.** a <b>note</b>\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\n"
                 "![curves](figures/curves.png)\n\n- one\n- two\n")
    assert "<h1>Results</h1>" in page and "<strong>Synthetic data.</strong>" in page and "&lt;b&gt;" in page
    assert page.count("<table>") == 1 and "<td>1</td>" in page and "<li>one</li>" in page
    assert 'src="figures/curves.png"' in page and page.startswith("<!doctype html>")


def _fake_run(root, synthetic=True):
    """The files a report is built from, with made-up numbers: no training needed."""
    import json

    stat = {"mean": 0.0870580259846191, "sd": 0.01, "n": 2, "complete": True}
    items = [{"image": "i.nii.gz", "label": "l.nii.gz", "patient": p, "sequence": "t2", "series": f"{p}_t2"}
             for p in (1, 2)]
    (root / "datalist.json").write_text(json.dumps({"training": items[:1], "validation": [], "test": items[1:],
                                                    "split": "by patient"}))
    run = root / "run"
    (run / "eval" / "test").mkdir(parents=True)
    config = {"datalist": str(root / "datalist.json"), "profile": "smoke", "model": "unetr", "max_iterations": 4,
              "patch_size": [32, 32, 16], "batch_size": 2, "lr": 2e-4, "data": {"synthetic": synthetic},
              "preprocessing": {**asdict(ResampleSettings()), "spacing": [3.3, 1.0, 1.0]}}
    (run / "config.json").write_text(json.dumps(config))
    metrics = {f"{k}_{s}": stat for k in ("dice", "hd95", "assd", "clean_dice") for s in ("vertebra", "disc", "canal")}
    summary = {"cases": 1, "metrics": metrics, "seconds_per_case": 1.5, "predecessor_score": stat,
               "dice_mean_structures": 0.0870580259846191, "checkpoint": "checkpoint_best.pt"}
    (run / "eval" / "test" / "summary.json").write_text(json.dumps(summary))
    (run / "eval" / "test" / "metrics.csv").write_text("series\n")
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(e) for e in (
        {"kind": "train", "iteration": 1, "loss": 1.0},
        {"kind": "validation", "iteration": 2, "dice_mean": 0.5, "dice_vertebra": 0.5, "dice_disc": 0.5,
         "dice_canal": 0.5})) + "\n")
    return run


def test_report_from_a_run_folder(tmp_path):
    from helpers.course.report import build_report

    readme = build_report(_fake_run(tmp_path), tmp_path / "report")
    text = readme.read_text()
    assert "Synthetic data" in text and "0.087 |" in text and "0.0870580259846191" not in text
    assert "0.7154" in text and "(no CT window)" in text and "Best validation mean Dice 0.500" in text
    assert (tmp_path / "report" / "index.html").read_text().count("<table>") >= 3


def test_report_command(tmp_path):
    """`python -m helpers report` (in this process): the report of a run folder, or what to do first."""
    from .conftest import kit

    run = _fake_run(tmp_path)
    made = kit("report", "--run", run, "--out", tmp_path / "report")
    assert made.returncode == 0, made.stderr[-2000:]
    assert made.stdout.strip().endswith(f"wrote {tmp_path / 'report' / 'README.md'}")
    assert "Synthetic data" in (tmp_path / "report" / "README.md").read_text()
    missing = kit("report", "--run", tmp_path / "none", "--out", tmp_path / "other")
    assert missing.returncode == 2 and "not found; train (notebook 05) and evaluate (notebook 06)" in missing.stderr
    assert not (tmp_path / "other").exists()


def test_the_executed_course_is_kept_small_beside_the_report(tmp_path):
    """`python -m helpers report` keeps the course's executed notebooks in report/course/: no widget state, a
    progress bar's text kept, a large picture made smaller, each a valid notebook; an index links them."""
    import base64
    import io

    import nbformat
    import numpy as np
    from PIL import Image

    from helpers.course.executed import MAX_IMAGE_BYTES, keep_executed

    noise = np.random.default_rng(0).integers(0, 255, (900, 1800, 3), dtype=np.uint8)  # incompressible
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": {}}}}
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 · A lesson"), nbformat.v4.new_code_cell("plot()", outputs=[
        nbformat.v4.new_output("display_data", {"image/png": base64.b64encode(buffer.getvalue()).decode(),
                                                "text/plain": "<Figure>"}),
        nbformat.v4.new_output("display_data", {"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                                "text/plain": "resampling: 100%|##########| 8/8"})])]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "01_lesson.ipynb")
    [kept] = keep_executed(tmp_path / "notebooks", tmp_path / "report" / "course")
    again = nbformat.read(kept, as_version=4)
    nbformat.validate(again)
    assert "widgets" not in again.metadata
    picture, bar = again.cells[1].outputs
    assert bar["data"] == {"text/plain": "resampling: 100%|##########| 8/8"}
    [(mime, encoded)] = [(k, v) for k, v in picture["data"].items() if k.startswith("image/")]
    assert mime == "image/jpeg" and len(base64.b64decode(encoded)) < len(buffer.getvalue()) / 5  # noise: no PNG fits
    assert MAX_IMAGE_BYTES < len(buffer.getvalue())
    assert Image.open(io.BytesIO(base64.b64decode(encoded))).width <= 1100
    assert "[`01_lesson.ipynb`](01_lesson.ipynb) | 01 · A lesson" in (kept.parent / "README.md").read_text()


def test_the_report_says_when_the_numbering_merged_vertebrae():
    from helpers.course.report import _merged_vertebrae

    def summary(semantic, instance):
        return {"metrics": {"dice_vertebra": {"mean": semantic}},
                "challenge": {"DiceScoreVertebrae": {"mean": instance}}}

    line = _merged_vertebrae(summary(0.743, 0.543))
    assert "(0.543) lie far below view 1's (0.743)" in line and "docs/scoring.md" in line
    assert _merged_vertebrae(summary(0.743, 0.70)) is None  # within the usual gap: nothing to say
    assert _merged_vertebrae({"metrics": {"dice_vertebra": {"mean": 0.7}}}) is None  # no challenge figures
