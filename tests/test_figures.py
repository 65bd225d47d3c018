"""The figures and case picks that notebooks 02, 03 and 06 call: on small synthetic data, as the notebooks make it."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from helpers.core.errors import KitError
from helpers.data.inspection import inspect_dataset
from helpers.data.predecessor import CT_WINDOW
from helpers.data.resample import ResampleSettings, read_manifest, resample_dataset
from helpers.data.spider import scan_dataset
from helpers.evaluation.evaluate import reference_structures
from helpers.figures.dataset import (
    MAPPED_BELOW,
    convention_examples,
    plot_grids,
    plot_intensities,
    plot_spacing_intensity,
)
from helpers.figures.gallery import mean_dice, pick_cases, show_cases


@pytest.fixture(scope="module")
def grids(small_dataset, default_prep, tmp_path_factory):
    """The kit's grid (the session's default_prep) and the predecessor's fixed size of the small dataset, as notebook 03
    makes them: {"prep": folder, "prep_fixed_size": folder}."""
    fixed = tmp_path_factory.mktemp("grids") / "prep_fixed_size"
    resample_dataset(small_dataset, fixed, ResampleSettings(mode="fixed_size"), progress=False)
    return {"prep": default_prep / "prep", "prep_fixed_size": fixed}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_spacing_intensity_figure_shows_every_sequence_and_convention(small_dataset, tmp_path):
    table = inspect_dataset(small_dataset)
    fig = plot_spacing_intensity(table, save=tmp_path / "figures" / "02.png")
    spacing, intensity = fig.axes[:2]
    assert sorted(t.get_text() for t in spacing.get_legend().get_texts()) == sorted(table["sequence"].unique())
    assert len(spacing.collections) == table["sequence"].nunique()
    assert {t.get_text() for t in intensity.get_legend().get_texts()} == set(table["convention"].dropna())
    assert (tmp_path / "figures" / "02.png").stat().st_size > 0


def test_convention_examples_pick_one_series_of_each():
    records = [{"series": "1_t1", "normalisation": {"value_low": 12.0}},
               {"series": "2_t2", "normalisation": {"value_low": -1000.0}},
               {"series": "3_t2", "normalisation": {"value_low": -1000.0}}]
    assert convention_examples(records) == {"mapped": "2_t2", "raw": "1_t1"}
    assert convention_examples(records[1:]) == {"mapped": "2_t2", "raw": None}


def test_intensity_figure_uses_the_predecessors_window_and_the_kits_normalisation(small_dataset, grids, tmp_path):
    records = read_manifest(grids["prep"])["series"]
    examples = convention_examples(records)
    assert examples["mapped"] and examples["raw"], "the synthetic set holds both conventions"
    low = {r["series"]: r["normalisation"]["value_low"] for r in records}
    assert low[examples["mapped"]] < MAPPED_BELOW and low[examples["raw"]] >= 0
    fig = plot_intensities(scan_dataset(small_dataset), grids["prep"], save=tmp_path / "03_intensities.png")
    stored, window, kit = fig.axes
    assert [t.get_text() for t in stored.get_legend().get_texts()] == [examples["mapped"], examples["raw"]]
    assert window.get_title() == f"predecessor: CT window [{CT_WINDOW[0]:g}, {CT_WINDOW[1]:g}] -> [0, 1]"
    for ax in (window, kit):  # both map onto [0, 1]
        edges = [p.get_x() for p in ax.patches]
        assert min(edges) >= 0 and max(edges) < 1
    assert (tmp_path / "03_intensities.png").is_file()


def test_grids_figure_draws_one_series_three_ways(small_dataset, grids, tmp_path):
    first = read_manifest(grids["prep"])["series"][0]
    fig = plot_grids(scan_dataset(small_dataset), grids["prep"], grids["prep_fixed_size"],
                     save=tmp_path / "03_before_after.png")
    assert fig._suptitle.get_text().startswith(first["series"])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("original") and "kit: by spacing" in titles[1]
    assert "predecessor: fixed size" in titles[2]
    fixed = fig.axes[2].images[0].get_array().shape  # voxels as squares: the predecessor's 128 x 128 sagittal slice
    assert fixed == (128, 128)
    assert (tmp_path / "03_before_after.png").is_file()


def _scores() -> pd.DataFrame:
    return pd.DataFrame({"series": ["a", "b", "c", "d", "e", "f"],
                         "dice_vertebra": [0.8, 0.2, 0.5, 0.4, 0.2, np.nan],
                         "dice_disc": [0.6, 0.2, 0.5, 0.4, 0.2, np.nan],
                         "dice_canal": [np.nan, 0.2, 0.5, 0.4, 0.2, np.nan]})


def test_cases_are_ranked_by_mean_dice_over_the_structures():
    table = _scores()
    assert mean_dice(table).round(3).tolist()[:3] == [0.7, 0.2, 0.5]  # a missing structure is left out
    cases = pick_cases(table)
    assert {k: v["series"] for k, v in cases.items()} == {"best": "a", "median": "d", "worst": "b"}  # tie: b first
    assert cases["best"]["dice_mean"] == pytest.approx(0.7)
    assert "dice_mean" not in table  # the caller's table is left as it was
    worst_by_hand = table.series[table[["dice_vertebra", "dice_disc", "dice_canal"]].mean(axis=1).idxmin()]
    assert cases["worst"]["series"] == worst_by_hand  # what a student computes for exercise 06.2
    with pytest.raises(KitError, match="nothing to rank"):
        pick_cases(table[table.series == "f"])  # no Dice at all


def test_cases_figure_shows_reference_prediction_and_errors(grids, tmp_path):
    records = read_manifest(grids["prep"])["series"][:3]
    for record in records:  # a perfect "prediction": the reference itself
        _, reference = reference_structures(record)
        (tmp_path / "eval" / "structures").mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(reference, str(tmp_path / "eval" / "structures" / f"{record['series']}.mha"))
    table = pd.DataFrame({"series": [r["series"] for r in records], "dice_vertebra": [0.9, 0.5, 0.1],
                          "dice_disc": [0.9, 0.5, 0.1], "dice_canal": [0.9, 0.5, 0.1]})
    fig = show_cases(pick_cases(table), grids["prep"], tmp_path / "eval", save=tmp_path / "cases.png")
    assert len(fig.axes) == 9
    titles = [fig.axes[i].get_title() for i in (0, 3, 6)]
    assert [t.split(":")[0] for t in titles] == ["best", "median", "worst"]
    assert records[0]["series"] in titles[0] and "(Dice 0.90)" in titles[0]
    errors = fig.axes[2].images[-1].get_array()  # a perfect prediction: no error drawn
    assert not np.asarray(errors)[..., 3].any()
    assert (tmp_path / "cases.png").is_file()


def test_the_slice_slider_redraws_a_png_without_an_output_widget(small_dataset, monkeypatch):
    """In a notebook (not the kit's headless run) the slider is a slider and a PNG `Image`, redrawn on a move:
    no `Output` widget, which could hang papermill and nbconvert (tests/test_notebooks.py runs them)."""
    import ipywidgets as widgets

    from helpers.core.runtime import HEADLESS_ENV
    from helpers.data.spider import read_series
    from helpers.figures.series import SeriesView, slice_slider

    monkeypatch.delenv(HEADLESS_ENV, raising=False)
    view = SeriesView(*read_series(scan_dataset(small_dataset).complete[0]), "t")
    box = slice_slider(view)
    parts = [box.children[0].children[0], box.children[0].children[1], box.children[1]]
    index, overlay, picture = parts
    assert isinstance(index, widgets.IntSlider) and isinstance(picture, widgets.Image)
    assert not any(isinstance(w, widgets.Output) for w in parts)
    first = bytes(picture.value)
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    index.value += 1  # the next slice, still through the spine (the slider starts in its middle)
    assert bytes(picture.value) != first, "moving the slider did not redraw the slice"
    moved = bytes(picture.value)
    overlay.value = False
    assert bytes(picture.value) != moved, "the overlay checkbox did not redraw the slice"
