"""The course as a student meets it: a real JupyterLab in a real headless Chromium, every notebook run through
the Run menu, its outputs checked in the page and in the saved file, the slice slider of notebook 01 moved.

Screenshots go to outputs/browser/ (one per notebook; look at them). Deselect with -m "not browser"."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

from helpers.core.paths import output_dir
from helpers.course.runner import course_notebooks

from .browser import LabServer, Student, find_browser, start_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SHOTS = Path(os.environ.get("SPIDER_KIT_BROWSER_SHOTS", output_dir() / "browser"))
# small settings so the whole course runs in a few minutes on two CPU cores; the notebooks are otherwise unchanged
PARAMETERS = {"profile": "smoke", "max_iterations": 8, "show_3d": True}


def _course_copy(root: Path, data: Path, run: Path) -> list[Path]:
    """The notebooks, each with a papermill-style `injected-parameters` cell, in `root/notebooks`."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    target = root / "notebooks"
    target.mkdir(parents=True)
    books = []
    for book in course_notebooks():
        values = {**PARAMETERS, "data_dir": str(data), "run_dir": str(run)}
        nb = parameterize_notebook(load_notebook_node(str(book)), values)
        nbformat.write(nb, target / book.name)
        books.append(target / book.name)
    return books


def _saved_outputs(path: Path) -> list[dict]:
    nb = json.loads(path.read_text())
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def test_course_in_jupyterlab_and_chromium(tmp_path):
    found = find_browser()
    if isinstance(found, str):
        pytest.skip(found)
    browser, driver_path = found
    data, run = tmp_path / "data", tmp_path / "run"
    books = _course_copy(tmp_path / "lab", data, run)
    for old in SHOTS.glob("[0-9][0-9]_*.png"):  # last run's pictures only; nothing else in the folder
        old.unlink()
    lab = LabServer(tmp_path / "lab", tmp_path / "state").start()
    driver = start_chromium(browser, driver_path)
    timings = {}
    try:
        student = Student(lab, driver)
        for book in books:
            start = time.monotonic()
            student.open(f"notebooks/{book.name}")
            assert list(lab.sessions()) == [f"notebooks/{book.name}"], lab.sessions()  # one kernel at a time
            print(f"{book.name}: open, running all cells", flush=True)
            state = student.run_all(timeout=900)
            print(f"{book.name}: ran in {time.monotonic() - start:.0f} s", flush=True)
            assert not state["widget_errors"], (book.name, state["widget_errors"])
            assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in state["images"]), (book.name, state)
            if book.name.startswith("01"):
                assert state["sliders"] >= 1, "notebook 01 shows no slice slider"
                student.screenshot(SHOTS / f"{book.stem}_before_slider.png")
                before, after = student.move_slider(steps=3)
                assert before["image"] and before["loaded"], before.get("readout")
                assert after["readout"] != before["readout"], "the slider did not move"
                assert after["image"] != before["image"], "moving the slider did not redraw the slice"
                assert int(after["readout"]) == int(before["readout"]) + 3
                # the 3D cell (show_3d=True): ipyniivue draws into a WebGL canvas. itkwidgets, preferred in
                # JupyterLab when installed, loads its viewer from the network: not checked here.
                if importlib.util.find_spec("itkwidgets"):
                    print("itkwidgets is installed: its 3D view (fetched from the network) is not checked")
                elif importlib.util.find_spec("ipyniivue"):
                    assert any(w > 0 and h > 0 for w, h in state["canvases"]), "the 3D viewer drew nothing"
                else:
                    print("no 3D viewer installed (pip install -e '.[browser]'): the 3D cell is not exercised")
            student.save()
            student.screenshot(SHOTS / f"{book.stem}.png")
            student.close()
            timings[book.name] = time.monotonic() - start
            outputs = _saved_outputs(book)
            errors = [f"{o['ename']}: {o['evalue']}" for o in outputs if o["output_type"] == "error"]
            assert not errors, (book.name, errors)
            pngs = [o for o in outputs if "image/png" in o.get("data", {})]
            assert len(state["images"]) >= len(pngs), (book.name, len(state["images"]), len(pngs))
            if book.name.startswith("01"):  # the widget path ran, not the headless strip
                assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    finally:
        driver.quit()
        lab.stop()
        print("seconds per notebook:", {k: round(v) for k, v in timings.items()})
    assert len(timings) == len(books)
    assert (run / "train" / "checkpoint_best.pt").is_file()  # the course ended with a trained model
    shots = sorted(p.name for p in SHOTS.glob("[0-9][0-9]_*.png"))
    assert len(shots) == len(books) + 1, shots
