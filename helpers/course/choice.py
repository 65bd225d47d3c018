"""The course's choice, made once: which data, which profile, which run folder. Notebook 00 (and
`python -m helpers run-notebooks`) records it; notebooks 01-07 and the command line follow it and print it in
one line. A value set explicitly still wins, and is said so.

Used by every notebook.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from helpers.core.atomic import write_text_atomic
from helpers.core.paths import RunLayout, output_dir, real_data_dir, resolve_data_dir, run_layout, synthetic_data_dir

COURSE_ENV = "SPIDER_KIT_COURSE"  # where the choice is kept (default: <kit home>/outputs/course.json)
DEFAULT_PROFILE = "smoke"
SOURCES = ("synthetic", "spider")


def absolute(path: str | Path) -> Path:
    """An absolute, normalised path, links kept as the user sees them (/content/drive/MyDrive, not its target)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def course_file() -> Path:
    """The file that holds the course's choice; on Colab it lives on Drive with the runs."""
    return Path(os.environ.get(COURSE_ENV) or output_dir() / "course.json").expanduser()


@dataclass(frozen=True)
class Course:
    """Where the course's data is, which profile it trains, and where its run goes."""

    data_dir: str
    profile: str
    run_dir: str
    source: str = "synthetic"  # "synthetic" (made by notebook 00) or "spider" (the real dataset)
    chosen_by: str = ""  # "notebook 00", "run-notebooks", or "" (nothing recorded: the defaults)
    chosen_at: str = ""

    @property
    def layout(self) -> RunLayout:
        return run_layout(self.run_dir)

    @property
    def data(self) -> Path:
        return Path(self.data_dir)

    def describe(self) -> str:
        """One line: what the course uses, and who chose it."""
        what = "real SPIDER" if self.source == "spider" else "synthetic SPIDER"
        who = (f"chosen by {self.chosen_by} at {self.chosen_at}" if self.chosen_by
               else "the defaults: no choice recorded yet (notebook 00 records one)")
        return f"course: {what} in {self.data_dir}, profile {self.profile}, run {self.run_dir} ({who})"


def default_course() -> Course:
    """What a fresh clone uses before notebook 00 has run: the synthetic data, the smoke profile, outputs/."""
    return Course(str(synthetic_data_dir()), DEFAULT_PROFILE, str(run_layout().root))


def default_data_dir(source: str) -> Path:
    """Where notebook 00 puts a dataset of this source."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    return real_data_dir() if source == "spider" else synthetic_data_dir()


def recorded_course() -> Course | None:
    """The recorded choice, or None when there is none (or it cannot be read: then it is said)."""
    path = course_file()
    if not path.is_file():
        return None
    try:
        fields = json.loads(path.read_text())
        return Course(**{k: str(fields[k]) for k in Course.__dataclass_fields__ if k in fields})
    except (json.JSONDecodeError, TypeError, AttributeError) as e:
        print(f"{path}: the course's choice cannot be read ({e}); using the defaults. Run notebook 00 again.")
        return None


def record_course(data_dir: str | Path, profile: str, run_dir: str | Path = "", source: str = "synthetic",
                  chosen_by: str = "notebook 00") -> Course:
    """Record the course's choice (absolute paths, links kept as typed) for the notebooks and commands that follow."""
    from helpers.core.profiles import get_profile

    data = absolute(data_dir)
    course = Course(str(data), get_profile(profile).name, str(absolute(run_layout(run_dir).root)),
                    _source_of(data, source), chosen_by, time.strftime("%Y-%m-%d %H:%M"))
    write_text_atomic(course_file(), json.dumps(asdict(course), indent=1))
    return course


def _source_of(data: Path, otherwise: str) -> str:
    """'synthetic' for a folder notebook 00 made, 'spider' for any other SPIDER-layout folder."""
    if (data / ".synthetic.json").is_file():
        return "synthetic"
    return "spider" if (data / "images").is_dir() else otherwise


def follow_course(data_dir: str | Path = "", profile: str = "", run_dir: str | Path = "",
                  quiet: bool = False) -> Course:
    """The course as recorded (or the defaults), with whatever was set explicitly taking its place. Prints the
    course in one line, then each explicit setting that differs from the recorded choice."""
    base = recorded_course() or default_course()
    given = {"data_dir": str(absolute(resolve_data_dir(data_dir))) if data_dir else "",
             "profile": profile, "run_dir": str(absolute(run_dir)) if run_dir else ""}
    course = Course(**{**asdict(base), **{k: v for k, v in given.items() if v}})
    if given["data_dir"]:
        course = Course(**{**asdict(course), "source": _source_of(Path(given["data_dir"]), base.source)})
    if quiet:
        return course
    print(course.describe())
    for key, value in given.items():
        if value and value != getattr(base, key):
            print(f"  {key} set here: {value} (the course's choice: {getattr(base, key)})")
    return course
