"""Where things live: the kit's folders and the layout of one course run. Defined once, used everywhere.

Every path is worked out when it is asked for, not when this module is imported, so the notebook's setup
(Google Drive on Colab) may run before or after any import. Two homes:

- `kit_home()`: runs, figures, tables, reports: what must survive a disconnect (Google Drive on Colab);
- `data_home()`: datasets and preprocessed volumes: large, rebuilt on demand, best on a fast local disk
  (the Colab runtime's own disk). Locally both are the repository.

Used by every notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # helpers/core/paths.py -> the repository
NOTEBOOK_DIR = ROOT / "notebooks"
REPORT_DIR = ROOT / "report"  # the committed report, refreshed on purpose (`make report`), never by a course run
REAL_SAMPLES_DIR = ROOT.parent / "shared" / "real-samples"  # a few real SPIDER-derived series, where present

HOME_ENV = "SPIDER_KIT_HOME"  # runs and results (notebook.setup() sets it to a Drive folder on Colab)
DATA_HOME_ENV = "SPIDER_KIT_DATA_HOME"  # data and preprocessed volumes (the runtime's disk on Colab)


def kit_home() -> Path:
    """Where runs and results live: the repository, or $SPIDER_KIT_HOME (Google Drive on Colab)."""
    return Path(os.environ.get(HOME_ENV) or ROOT).expanduser()


def data_home() -> Path:
    """Where datasets and preprocessed volumes live: $SPIDER_KIT_DATA_HOME, else the kit's home."""
    return Path(os.environ.get(DATA_HOME_ENV) or kit_home()).expanduser()


def synthetic_data_dir() -> Path:
    """The embedded default dataset, made by notebook 00."""
    return data_home() / "data" / "synthetic"


def real_data_dir() -> Path:
    """Where notebook 00 puts the real SPIDER dataset."""
    return data_home() / "data" / "spider"


def output_dir() -> Path:
    """The default course run: executed notebooks, figures, tables, the training run, its report."""
    return kit_home() / "outputs"


@dataclass(frozen=True)
class RunLayout:
    """The folders and files of one course run under `root`; `prep_root` holds its preprocessed volumes."""

    root: Path
    prep_root: Path | None = None

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
        return self.prep_root or self.root / "prep"

    @property
    def prep_fixed_size(self) -> Path:
        """The predecessor's fixed-size grid beside the kit's (notebook 03 compares them)."""
        return self.prep.parent / "prep_fixed_size"

    @property
    def datalist(self) -> Path:
        return self.root / "datalist.json"

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def your_scan(self) -> Path:
        """Notebook 07: the scan it segments, the masks, the DICOM SEG."""
        return self.root / "your_scan"

    @property
    def bundle(self) -> Path:
        """Notebook 07: the trained model as a MONAI bundle."""
        return self.root / "bundle"


def checkpoint_name(which: str) -> str:
    return f"checkpoint_{which}.pt"


@dataclass(frozen=True)
class RunFiles:
    """Every file of one training run (the folder `train` writes), named once: training, evaluation, the report
    and the exercises all go through it."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        """One JSON line per logged step and per validation (helpers/training/run_log.py)."""
        return self.root / METRICS_LOG

    def checkpoint(self, which: str) -> Path:
        """`last`, `prev` (the one `last` replaced) or `best`."""
        return self.root / checkpoint_name(which)

    @property
    def checkpoints(self) -> list[Path]:
        """The checkpoints the run holds now."""
        return sorted(self.root.glob(checkpoint_name("*")))

    def evaluation(self, part: str) -> EvalFiles:
        return EvalFiles(self.root / "eval" / part)


@dataclass(frozen=True)
class EvalFiles:
    """What `evaluate` writes for one datalist part, and the figures drawn from it."""

    root: Path

    @property
    def predictions(self) -> Path:
        """<series>.mha with SPIDER's values (what `score` reads)."""
        return self.root / "predictions"

    @property
    def structures(self) -> Path:
        """<series>.mha with structures 0-3."""
        return self.root / "structures"

    @property
    def metrics(self) -> Path:
        """One row per series: the semantic metrics, raw and cleaned, the predecessor's score, the challenge's
        figures."""
        return self.root / "metrics.csv"

    @property
    def challenge(self) -> Path:
        """The challenge's figures, as `python -m helpers score --json` writes them."""
        return self.root / "challenge.json"

    @property
    def instances(self) -> Path:
        """One row per reference instance: level, match, status, Dice, ASD (helpers/evaluation/levels.py)."""
        return self.root / "instances.csv"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def figure(self, name: str) -> Path:
        """boxplots, cases or instances, as PNG."""
        return self.root / f"{name}.png"


METRICS_LOG = "metrics.jsonl"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """The dataset folder a notebook or command uses: the given one, else the synthetic default."""
    return Path(data_dir).expanduser() if data_dir else synthetic_data_dir()


def prep_dir_for(root: Path) -> Path:
    """Preprocessed volumes of the run at `root`: beside it, or, when data lives apart from runs (Colab), the
    same place under the data home: rebuilt after a new runtime, never filling Google Drive."""
    home, dhome = kit_home().resolve(), data_home().resolve()
    if home != dhome:
        try:
            return dhome / root.resolve().relative_to(home) / "prep"
        except ValueError:
            pass
    return root / "prep"


def run_layout(root: str | Path | None = None) -> RunLayout:
    """Layout of a course run; `outputs/` by default."""
    root = Path(root).expanduser() if root else output_dir()
    return RunLayout(root, prep_dir_for(root))
