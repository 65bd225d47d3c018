"""What the tests share: one small synthetic dataset, resampled once on each grid, one tiny trained run (session
fixtures, never modified by a test: a test that breaks something breaks its own copy), and the command line run
in this process (`kit`)."""

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers.core.paths import REAL_SAMPLES_DIR as REAL_SAMPLES
from helpers.data.synth import write_dataset

# The course's choice (helpers/course/choice.py) that notebooks and commands follow: the tests keep their own,
# so they never change a developer's outputs/course.json, and the notebook kernels they start inherit it.
os.environ["SPIDER_KIT_COURSE"] = str(Path(tempfile.mkdtemp(prefix="kit-course-")) / "course.json")


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """Six small synthetic patients (both orientations, all three sequences); never modified by tests."""
    return write_dataset(tmp_path_factory.mktemp("synth") / "data", cases=6, seed=3, scale=0.2, progress=False)


@pytest.fixture(scope="session")
def smoke_datalist(small_dataset, tmp_path_factory) -> Path:
    """The small dataset resampled on the smoke profile's grid (its 2 mm in-plane floor) into prep/ beside the
    datalist.json returned, as notebooks 03 and 04 make them for the smoke profile."""
    from helpers.core.profiles import get_profile
    from helpers.data.datalist import write_datalist
    from helpers.data.resample import ResampleSettings, resample_dataset

    root = tmp_path_factory.mktemp("smoke")
    resample_dataset(small_dataset, root / "prep", ResampleSettings(min_inplane_mm=get_profile("smoke").inplane_mm),
                     progress=False)
    write_datalist(root / "prep", root / "datalist.json")
    return root / "datalist.json"


@pytest.fixture(scope="session")
def default_prep(small_dataset, tmp_path_factory) -> Path:
    """The small dataset resampled with the default settings: a folder with prep/ and datalist.json."""
    from helpers.data.datalist import write_datalist
    from helpers.data.resample import resample_dataset

    root = tmp_path_factory.mktemp("default")
    resample_dataset(small_dataset, root / "prep", progress=False)
    write_datalist(root / "prep", root / "datalist.json")
    return root


@pytest.fixture(scope="session")
def trained(default_prep) -> Path:
    """A tiny trained run on `default_prep` (4 iterations, validated at 2 and 4): the folder, with run/ in it."""
    from helpers.training.loop import TrainConfig, train

    train(TrainConfig(str(default_prep / "datalist.json"), str(default_prep / "run"), max_iterations=4, val_every=2),
          progress=False)
    return default_prep


def kit(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m helpers ARGS` run in this process (helpers.cli.main, no new interpreter importing torch and MONAI
    again): its exit code and what it printed, as a subprocess would give them. `env` replaces the environment and
    `cwd` the working directory for the call; both, and any variable the command sets, are restored afterwards.
    An exception the command does not turn into its one `error:` line propagates (a subprocess would print a
    traceback). The real entry point, `python -m helpers`, runs as a process in one test per command (for train and
    export, in the slow tier)."""
    from helpers.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse: a usage error (2) or --help (0)
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["python", "-m", "helpers", *map(str, args)], code, out.getvalue(),
                                       err.getvalue())


@pytest.fixture
def dataset_copy(small_dataset, tmp_path) -> Path:
    """A private copy to break on purpose."""
    return Path(shutil.copytree(small_dataset, tmp_path / "data"))


@pytest.fixture(scope="session")
def real_samples() -> Path:
    if not (REAL_SAMPLES / "images").is_dir():
        pytest.skip("../shared/real-samples not present")
    return REAL_SAMPLES


def tree_digest(root: Path) -> dict[str, str]:
    """Content hash of every file under `root`, to prove a folder was not changed."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rewrite(path: Path, change) -> None:
    """Rewrite a series image with `change(array)` applied, geometry kept."""
    import numpy as np
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    out = sitk.GetImageFromArray(change(arr))
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path))


def break_values(root: Path) -> dict[str, str]:
    """The bad values of issue 12, one per series: {stem: what the kit must say}. The rest stay good."""
    import numpy as np
    import SimpleITK as sitk

    stems = sorted((p.stem for p in (root / "images").glob("*.mha")), key=lambda s: (int(s.split("_")[0]), s))
    images = root / "images"

    def nan_quarter(a):
        a[: max(1, a.shape[0] // 4)] = np.nan
        return a

    def infinite(a):
        a.flat[::97] = np.inf
        a.flat[1::89] = -np.inf
        return a

    def speckle(a):  # no intensity structure: background everywhere but a few bright voxels
        b = np.zeros_like(a)
        b.flat[:: 1000] = 500.0
        return b

    _rewrite(images / f"{stems[0]}.mha", nan_quarter)
    _rewrite(images / f"{stems[1]}.mha", infinite)
    _rewrite(images / f"{stems[2]}.mha", lambda a: np.zeros_like(a))
    _rewrite(images / f"{stems[3]}.mha", speckle)
    for folder in ("images", "masks"):  # one sagittal slice, image and mask alike
        path = root / folder / f"{stems[4]}.mha"
        image = sitk.ReadImage(str(path))
        sitk.WriteImage(image[image.GetSize()[0] // 2: image.GetSize()[0] // 2 + 1, :, :], str(path))
    return {stems[0]: "NaN", stems[1]: "infinite voxels", stems[2]: "constant image",
            stems[3]: "no intensity structure", stems[4]: "a single slice"}


@pytest.fixture
def bad_values_copy(dataset_copy) -> tuple[Path, dict[str, str]]:
    """A private copy of the small dataset with five series carrying bad values, and what to expect."""
    return dataset_copy, break_values(dataset_copy)
