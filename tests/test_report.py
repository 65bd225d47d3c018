"""The report's text follows the run's own config (helpers/report.py), whatever the recipe."""

from dataclasses import asdict

from helpers.report import _fmt_number, preprocessing_lines
from helpers.resample import ResampleSettings
from helpers.seed import SEED_PREPROCESSING


def test_preprocessing_text_follows_the_config():
    kit = "\n".join(preprocessing_lines({**asdict(ResampleSettings()), "spacing": (3.3, 1.0, 1.0)}))
    assert "spacing 3.3 x 1 x 1 mm (LR x SI x AP)" in kit and "(no CT window)" in kit
    assert "0 background, 1 vertebra, 2 disc, 3 canal" in kit and "reorientation to PIR" in kit
    seed = "\n".join(preprocessing_lines(asdict(ResampleSettings(**SEED_PREPROCESSING))))
    assert "no CT window" not in seed and "CT window [-1000, 3096]" in seed
    assert "3 canal" not in seed and "20 instance classes" in seed and "32 x 128 x 128 voxels" in seed


def test_one_number_is_rounded():
    assert _fmt_number(0.0870580259846191) == "0.087"
    assert _fmt_number(None) == "n/a" and _fmt_number(float("nan")) == "n/a"


def test_html_renders_the_report_markdown():
    from helpers.report import _html

    page = _html("# Results\n\n> **Synthetic data.** a <b>note</b>\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\n"
                 "![curves](figures/curves.png)\n\n- one\n- two\n")
    assert "<h1>Results</h1>" in page and "<strong>Synthetic data.</strong>" in page and "&lt;b&gt;" in page
    assert page.count("<table>") == 1 and "<td>1</td>" in page and "<li>one</li>" in page
    assert 'src="figures/curves.png"' in page and page.startswith("<!doctype html>")
