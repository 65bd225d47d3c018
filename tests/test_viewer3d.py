"""The optional 3D view: which viewer where, the structure colours, and nothing at all in a headless run.

Whether the widget draws is checked in a real browser by tests/test_browser.py (notebook 01, show_3d=True)."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.core.runtime import HEADLESS_ENV
from helpers.data.labels import FOREGROUND, STRUCTURE_COLOURS
from helpers.data.spider import read_series, scan_dataset
from helpers.figures.viewer3d import choose_viewer, label_colormap, show_3d, structure_mask

HAS_NIIVUE = importlib.util.find_spec("ipyniivue") is not None


def test_headless_run_imports_no_viewer():
    code = ("import sys\nfrom helpers.figures.viewer3d import show_3d\nimport SimpleITK as sitk\n"
            "print(show_3d(sitk.Image(4, 4, 4, sitk.sitkFloat32)))\n"
            "print('ipyniivue' in sys.modules, 'itkwidgets' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, HEADLESS_ENV: "1"})
    assert run.returncode == 0, run.stderr
    assert "headless" in run.stdout and run.stdout.strip().endswith("False False")


def test_label_colours_are_the_kits_structure_colours():
    lut = label_colormap()
    assert lut["A"][0] == 0 and lut["labels"][1:] == list(FOREGROUND)
    for i, name in enumerate(FOREGROUND, 1):
        assert f"#{lut['R'][i]:02x}{lut['G'][i]:02x}{lut['B'][i]:02x}" == STRUCTURE_COLOURS[name]


def test_colab_never_gets_itkwidgets(monkeypatch):
    monkeypatch.delenv(HEADLESS_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    viewer, reason = choose_viewer("itkwidgets")
    assert viewer is None and "#771" in reason
    viewer, reason = choose_viewer("auto")
    assert viewer == ("niivue" if HAS_NIIVUE else None)
    if not HAS_NIIVUE:
        assert "pip install" in reason and "ipyniivue" in reason


@pytest.mark.skipif(not HAS_NIIVUE, reason="ipyniivue not installed (the 3d or browser extra)")
def test_niivue_widget_holds_image_and_coloured_structures(small_dataset, monkeypatch):
    monkeypatch.delenv(HEADLESS_ENV, raising=False)
    image, mask = read_series(scan_dataset(small_dataset).complete[0])
    assert set(np.unique(sitk.GetArrayFromImage(structure_mask(mask)))) <= {0, 1, 2, 3}
    widget = show_3d(image, mask, viewer="niivue")
    assert [v.name for v in widget.volumes] == ["image.nii.gz", "structures.nii.gz"]
    assert widget.volumes[1].colormap_label is not None
