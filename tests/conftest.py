import hashlib
import shutil
from pathlib import Path

import pytest

from helpers.paths import REAL_SAMPLES_DIR as REAL_SAMPLES
from helpers.synth import write_dataset


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """Six small synthetic patients (both orientations, all three sequences); never modified by tests."""
    return write_dataset(tmp_path_factory.mktemp("synth") / "data", cases=6, seed=3, scale=0.2, progress=False)


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
