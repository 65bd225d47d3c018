"""Every notebook, executed headless with papermill on a small synthetic set, as the course run does."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.core.paths import NOTEBOOK_DIR
from helpers.core.runtime import HEADLESS_ENV
from helpers.course.runner import course_notebooks, run_notebooks
from tools.links import SETUP_CELL, repository_url

from .conftest import kit, tree_digest

# these tests check that every notebook runs, not how well the model learns (the course run and
# `python -m tools.bench` measure that): a few training iterations are enough
PLUMBING = {"max_iterations": 20}
WALK = {"max_iterations": 4}  # the fast tier's walk: on the session's small dataset, fewer still


@pytest.fixture(scope="module")
def walk(small_dataset, tmp_path_factory):
    """Every notebook, run once for the tests below, on the session's small dataset (6 small patients: resampling,
    training and evaluation take seconds) with a few iterations: notebook 00 given a copy of it as a folder of one's
    own (the smoke profile's synthetic data, which it would make, is made by the slow walk), then notebooks 01 to 07
    by `python -m helpers run-notebooks` (in this process) from the run's parent folder, the data given relative to
    it. (root, what the command printed, digest of the small dataset before)."""
    root = tmp_path_factory.mktemp("walk")
    own = Path(shutil.copytree(small_dataset, root / "own"))
    (own / ".synthetic.json").unlink()  # a SPIDER-layout folder that notebook 00 takes as it is
    before = tree_digest(small_dataset)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(HEADLESS_ENV, "1")  # what run_notebooks sets for its kernels, undone afterwards
        timings = run_notebooks("smoke", only=["00"], data_dir=str(own), out=str(root / "run"), extra=WALK)
    assert [name for name, _ in timings] == [course_notebooks()[0].name]
    rest = [b.name[:2] for b in course_notebooks()[1:]]
    ran = kit("run-notebooks", "--only", ",".join(rest), "--data-dir", os.path.relpath(small_dataset, root), "--out",
              "run", "--max-iterations", WALK["max_iterations"], cwd=root)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert f"ran {len(rest)} notebooks in" in ran.stdout
    return root, ran.stdout, before


def test_every_notebook_runs_on_small_data(walk):
    root, printed, _ = walk
    out = root / "run"
    assert [line.split()[1] for line in printed.splitlines() if line.startswith("running ")] == [
        b.name for b in course_notebooks()[1:]]
    for book in course_notebooks():
        executed = json.loads((out / "notebooks" / book.name).read_text())
        errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, book.name
        assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])


def test_the_walk_leaves_what_each_notebook_makes(walk, small_dataset):
    root, _, before = walk
    out = root / "run"
    assert "found a dataset in" in _printed(out / "notebooks" / "00_data.ipynb")
    assert {"00_first_look.png", "01_t1_t2_overlay.png", "02_spacing_intensity.png", "03_before_after.png",
            "03_intensities.png", "05_curves.png", "07_prediction.png"} <= {p.name for p in (out / "figures").iterdir()}
    assert (out / "tables" / "inspection.csv").is_file()
    assert (out / "prep" / "manifest.json").is_file() and (out / "datalist.json").is_file()
    assert (out / "train" / "checkpoint_best.pt").is_file()
    assert json.loads((out / "train" / "config.json").read_text())["max_iterations"] == WALK["max_iterations"]
    assert (out / "train" / "eval" / "test" / "metrics.csv").is_file()
    report = (out / "report" / "README.md").read_text()
    assert "Synthetic data" in report and "per structure" in report
    assert (out / "your_scan" / "prediction.dcm").is_file()
    assert (out / "bundle" / "configs" / "inference.json").is_file()
    assert tree_digest(small_dataset) == before  # the notebooks write into the run folder only


def test_relative_data_dir_is_taken_from_where_the_command_runs(walk, small_dataset):
    root, _, _ = walk
    assert (root / "run" / "figures" / "01_t1_t2_overlay.png").is_file()  # notebook 01 of the walk found the data
    datalist = json.loads((root / "run" / "datalist.json").read_text())
    assert datalist["data"]["data_dir"] == str(small_dataset)


def _printed(book) -> str:
    nb = json.loads(book.read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")


@pytest.mark.slow
def test_course_runs_headless(tmp_path):
    data, out = tmp_path / "data", tmp_path / "run"
    timings = run_notebooks("smoke", data_dir=str(data), out=str(out), extra=PLUMBING)
    assert [name for name, _ in timings] == [b.name for b in course_notebooks()]
    for book in course_notebooks():
        executed = json.loads((out / "notebooks" / book.name).read_text())
        errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, book.name
        assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    assert {"00_first_look.png", "01_t1_t2_overlay.png", "02_spacing_intensity.png", "03_before_after.png",
            "03_intensities.png"} <= {p.name for p in (out / "figures").iterdir()}
    assert (out / "tables" / "inspection.csv").is_file()
    assert (out / "prep" / "manifest.json").is_file() and (out / "datalist.json").is_file()
    assert (out / "train" / "checkpoint_best.pt").is_file() and (out / "figures" / "05_curves.png").is_file()
    assert (out / "train" / "eval" / "test" / "metrics.csv").is_file()
    report = (out / "report" / "README.md").read_text()
    assert "Synthetic data" in report and "per structure" in report
    # `make report`: `python -m helpers report` (a process: the real entry point) rebuilds it from the run
    again = subprocess.run([sys.executable, "-m", "helpers", "report", "--run", str(out / "train"), "--out",
                            str(tmp_path / "report")], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "report" / "README.md").read_text() == report
    # a rerun of notebook 00 with the same settings leaves the data alone
    before = tree_digest(data)
    run_notebooks("smoke", only=["00"], data_dir=str(data), out=str(out), extra=PLUMBING)
    assert tree_digest(data) == before


@pytest.mark.slow
def test_course_runs_on_real_samples(real_samples, tmp_path):
    before = tree_digest(real_samples)
    run_notebooks("smoke", data_dir=str(real_samples), out=str(tmp_path), extra=PLUMBING)  # real anatomy
    assert (tmp_path / "figures" / "01_t1_t2_overlay.png").is_file()
    datalist = json.loads((tmp_path / "datalist.json").read_text())
    assert [i["patient"] for i in datalist["test"]] == [209]  # the official validation patient
    report = (tmp_path / "report" / "README.md").read_text()
    assert "Synthetic data" not in report and "1 series" in report
    assert tree_digest(real_samples) == before


@pytest.mark.slow
def test_notebook_01_runs_under_plain_papermill_and_nbconvert(small_dataset, tmp_path):
    """As an instructor runs it without the kit's runner or its environment variable: papermill three times and
    `jupyter nbconvert --execute` once, each within its time limit (the slice slider used to hang them: an
    `interactive` widget's Output made the executor answer the kernel; jupyter/nbclient#312)."""
    book = NOTEBOOK_DIR / "01_data_display.ipynb"
    env = {k: v for k, v in os.environ.items() if k != HEADLESS_ENV}
    params = ["-p", "data_dir", str(small_dataset), "-p", "run_dir", str(tmp_path / "run")]
    for attempt in range(3):
        out = tmp_path / f"papermill_{attempt}.ipynb"
        try:
            run = subprocess.run([sys.executable, "-m", "papermill", str(book), str(out), *params, "--no-progress-bar"],
                                 env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
        except subprocess.TimeoutExpired:
            pytest.fail(f"plain papermill hung on notebook 01 (attempt {attempt + 1})")
        assert run.returncode == 0, run.stderr[-2000:]
        widgets = json.loads(out.read_text())["metadata"].get("widgets", {})
        state = next(iter(widgets.values()), {}).get("state", {})
        assert any(m["model_name"] == "ImageModel" for m in state.values()), "no slice picture in the widget state"
        assert not any(m["model_name"] == "OutputModel" for m in state.values())
    prepared = tmp_path / "prepared.ipynb"  # nbconvert takes no parameters: papermill writes them in, runs nothing
    subprocess.run([sys.executable, "-m", "papermill", str(book), str(prepared), *params, "--prepare-only"],
                   env=env, check=True, capture_output=True, cwd=tmp_path)
    try:
        run = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                              str(prepared), "--output", "nbconvert.ipynb"],
                             env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("jupyter nbconvert --execute hung on notebook 01")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "nbconvert.ipynb").is_file()


def test_runner_names_the_failing_notebook_and_cell(tmp_path):
    """`python -m helpers run-notebooks` as a process: the real entry point."""
    run = subprocess.run([sys.executable, "-m", "helpers", "run-notebooks", "--only", "01",
                          "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "run")],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "01_data_display.ipynb failed in cell" in run.stderr and "does not exist" in run.stderr


def test_setup_cell_is_harmless_locally():
    code = SETUP_CELL.format(url=repository_url())
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    assert "GPU" in run.stdout


def test_setup_on_colab_puts_runs_on_drive_and_data_on_the_runtime(tmp_path):
    """Colab itself cannot run here: a stand-in google.colab records the mount; the kit's logic is real. The paths
    module is imported before setup() runs: where things go must not depend on import order."""
    fake = tmp_path / "fake"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "drive.py").write_text(
        "import os\ndef mount(path):\n    open(os.environ['MOUNT_LOG'], 'w').write(path)\n")
    code = ("import sys, google.colab\nfrom helpers.core import paths\n"
            "from helpers.course.notebook_setup import setup\nsetup()\n"
            "layout = paths.run_layout()\nprint('OUT', layout.root)\nprint('PREP', layout.prep)\n"
            "print('DATA', paths.synthetic_data_dir())\n")
    env = {**os.environ, "PYTHONPATH": str(fake), "MOUNT_LOG": str(tmp_path / "mounted"),
           "SPIDER_KIT_DRIVE_ROOT": str(tmp_path / "drive"), "SPIDER_KIT_LOCAL_ROOT": str(tmp_path / "local")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "mounted").read_text() == "/content/drive"
    assert "Google Drive mounted" in run.stdout
    assert f"OUT {tmp_path / 'drive' / 'outputs'}\n" in run.stdout  # the run survives a disconnect
    assert f"PREP {tmp_path / 'local' / 'outputs' / 'prep'}\n" in run.stdout  # volumes on the runtime's disk
    assert f"DATA {tmp_path / 'local' / 'data' / 'synthetic'}\n" in run.stdout


def test_each_notebook_gets_only_the_parameters_it_declares():
    from helpers.course.runner import course_notebooks, notebook_parameters

    book = course_notebooks(["03"])[0]
    given = {"profile": "smoke", "run_dir": "/tmp/run", "data_dir": "", "mode": "fixed_size", "part": "test"}
    assert notebook_parameters(book, given) == {k: given[k] for k in ("profile", "run_dir", "data_dir", "mode")}
