"""Google Colab, emulated as closely as this machine allows: a runtime with its own Python (the heavy packages
preinstalled, as on Colab), a stand-in `google.colab` loaded in every kernel whose `drive.mount` links a folder as
MyDrive, the notebooks' own setup cell cloning and installing the kit into /content/kit (the clone served from a
local copy of this repository), a disconnect in the middle of notebook 05 (the kernel killed), a runtime reset
(/content wiped but Drive), and the course rerun: data rebuilt on the runtime's disk, training resumed from Drive.

Needs root (Colab's paths are under /content) and a machine without /content; skipped with the reason otherwise."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from helpers.core.paths import NOTEBOOK_DIR, ROOT
from helpers.core.profiles import get_profile
from tools.links import repository_url

pytestmark = pytest.mark.slow
# training goes just past the smoke profile's first checkpoint (its first validation), so that the disconnect comes
# mid-run, not after the profile's whole max_iterations
ITERATIONS = get_profile("smoke").val_every + 20
CONTENT = Path("/content")
STAND_IN = {
    "google/__init__.py": "",
    "google/colab/__init__.py": "",
    "google/colab/drive.py": (
        "import os\n"
        "def mount(path):\n"
        "    os.makedirs(path, exist_ok=True)\n"
        "    os.symlink(os.environ['EMULATED_DRIVE'], os.path.join(path, 'MyDrive'))\n"),
    "colab-runtime.pth": "import google.colab\n",  # Colab's kernels start with google.colab imported
}


def _repository_copy(target: Path) -> Path:
    """This working tree as a git repository (what `git clone REPO_URL` fetches on Colab)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    commit = ["-c", "user.name=kit", "-c", "user.email=kit@localhost", "commit", "-qm", "kit"]
    for command in (["init", "-q"], ["add", "-A"], commit):
        subprocess.run(["git", *command], cwd=target, check=True)
    return target


@pytest.fixture
def runtime(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the Colab emulation lays out /content, which needs root")
    if CONTENT.exists():
        pytest.skip("/content exists on this machine; the emulation never touches it")
    python = tmp_path / "runtime" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "runtime")], check=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, MONAI, ... as on Colab
    for name, text in STAND_IN.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    origin = _repository_copy(tmp_path / "origin")
    drive = tmp_path / "drive"
    drive.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPIDER_KIT_") and k != "PYTHONPATH"}
    env.update({"EMULATED_DRIVE": str(drive), "SPIDER_KIT_HEADLESS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{origin}.insteadOf",
                "GIT_CONFIG_VALUE_0": repository_url()})
    try:
        yield python, env, drive / "spider-unetr-kit", tmp_path
    finally:
        shutil.rmtree(CONTENT, ignore_errors=True)


def _papermill(python: Path, env: dict, book: str, out: Path, **popen) -> subprocess.Popen:
    """A notebook of the repository as a student opens it from its Colab badge, in the runtime's kernel; notebook
    05 with fewer iterations than the profile's (ITERATIONS), its only parameter."""
    given = ["-p", "max_iterations", str(ITERATIONS)] if book.startswith("05") else []
    return subprocess.Popen([str(python), "-m", "papermill", str(NOTEBOOK_DIR / book), str(out / book), "-k",
                             "python3", "--no-progress-bar", "--cwd", str(out), *given], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            **popen)


def _run(python: Path, env: dict, book: str, out: Path) -> str:
    proc = _papermill(python, env, book, out)
    log, _ = proc.communicate(timeout=1500)
    assert proc.returncode == 0, log[-3000:]
    return "".join("".join(o.get("text", "")) for c in json.loads((out / book).read_text())["cells"]
                   for o in c.get("outputs", []))


def _disconnect_during_training(python: Path, env: dict, out: Path, run: Path) -> int:
    """Notebook 05 killed with its kernel as soon as a checkpoint is on Drive; the checkpoint's iteration."""
    import torch

    proc = _papermill(python, env, "05_train_unetr.ipynb", out)
    last = run / "train" / "checkpoint_last.pt"
    try:
        deadline = time.monotonic() + 1200
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert last.is_file() and proc.poll() is None, "notebook 05 ended before its first checkpoint"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runtime goes away: papermill and the kernel with it
        proc.wait()
    return torch.load(last, weights_only=True)["iteration"]


def test_colab_course_disconnect_reset_and_resume(runtime):
    python, env, _, tmp = runtime
    kit_drive = CONTENT / "drive" / "MyDrive" / "spider-unetr-kit"  # as the student sees it (the mount's own path)
    out = tmp / "executed"
    out.mkdir()
    printed = _run(python, env, "00_data.ipynb", out)
    assert (CONTENT / "kit" / "helpers").is_dir(), "the setup cell cloned the kit"
    assert "Google Drive mounted" in printed
    local = CONTENT / "spider-unetr-kit"
    assert f"course: synthetic SPIDER in {local / 'data' / 'synthetic'}, profile smoke, run {kit_drive / 'outputs'}" \
        in printed
    for book in ("03_resampling.ipynb", "04_datalist_json.ipynb"):
        _run(python, env, book, out)
    assert (local / "outputs" / "prep" / "manifest.json").is_file()
    assert (kit_drive / "outputs" / "datalist.json").is_file()
    saved = _disconnect_during_training(python, env, out, kit_drive / "outputs")
    assert saved > 0

    shutil.rmtree(CONTENT)  # a new runtime: nothing under /content, the kit uninstalled; Drive kept
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "spider-unetr-kit"], env=env, check=True)
    for book in ("00_data.ipynb", "03_resampling.ipynb", "04_datalist_json.ipynb"):
        _run(python, env, book, out)
    printed = _run(python, env, "05_train_unetr.ipynb", out)
    assert f"resuming {kit_drive / 'outputs' / 'train'} from iteration {saved}" in printed
    metrics = (kit_drive / "outputs" / "train" / "metrics.jsonl").read_text()
    entries = [json.loads(line) for line in metrics.splitlines()]
    iterations = [e["iteration"] for e in entries if e["kind"] == "validation"]
    assert iterations == sorted(set(iterations)) and iterations[-1] == ITERATIONS, iterations  # no step twice
    assert saved < ITERATIONS, "the disconnect came mid-run"
    _run(python, env, "06_evaluation.ipynb", out)
    assert (kit_drive / "outputs" / "report" / "README.md").is_file()
    assert not (kit_drive / "data").exists() and not (kit_drive / "outputs" / "prep").exists(), "volumes on Drive"
    assert not list(kit_drive.rglob("*.nii")), "preprocessed volumes on Drive"
    assert list((local / "data" / "synthetic" / "images").glob("*.mha"))
