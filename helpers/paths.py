"""Where things live: the kit's folders and the layout of one course run. Defined once, used everywhere.

Used by every notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
# Where data and runs live: the repository, or (on Colab) a Google Drive folder that survives disconnects
HOME = Path(os.environ.get("SPIDER_KIT_HOME", ROOT))  # set by notebook.setup() on Colab, before this import
DATA_DIR = HOME / "data" / "synthetic"  # the embedded default dataset, made by notebook 00
REAL_DATA_DIR = HOME / "data" / "spider"  # where the real SPIDER dataset goes
OUTPUT_DIR = HOME / "outputs"  # executed notebooks, figures, preprocessed data, runs
REPORT_DIR = HOME / "report"
REAL_SAMPLES_DIR = ROOT.parent / "shared" / "real-samples"  # a few real SPIDER-derived series, where present


@dataclass(frozen=True)
class RunLayout:
    """The folders and files of one course run under `root`."""

    root: Path

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def prep(self) -> Path:
        return self.root / "prep"

    @property
    def datalist(self) -> Path:
        return self.root / "datalist.json"

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def report(self) -> Path:
        """The kit's report/ for the default run; <run>/report for any other run."""
        return REPORT_DIR if self.root.resolve() == OUTPUT_DIR.resolve() else self.root / "report"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """The dataset folder a notebook or command uses: the given one, else the synthetic default."""
    return Path(data_dir).expanduser() if data_dir else DATA_DIR


def run_layout(root: str | Path | None = None) -> RunLayout:
    """Layout of a course run; `outputs/` by default."""
    return RunLayout(Path(root) if root else OUTPUT_DIR)
