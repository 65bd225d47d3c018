"""The course's choice: made once (notebook 00, run-notebooks), followed by every notebook and command; explicit
settings win and are said; paths worked out when used; data prepared for another profile refused with what to do."""

import json
import os
import subprocess
import sys

import pytest

from helpers.core import paths
from helpers.core.errors import KitError
from helpers.course.choice import course_file, follow_course, record_course
from helpers.data.resample import ResampleSettings, resample_dataset
from helpers.training.loop import TrainConfig, require_profile_grid

from .conftest import kit


@pytest.fixture
def course_env(tmp_path, monkeypatch):
    """A kit home and a course file of this test's own."""
    monkeypatch.setenv("SPIDER_KIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPIDER_KIT_DATA_HOME", raising=False)
    monkeypatch.setenv("SPIDER_KIT_COURSE", str(tmp_path / "course.json"))
    return tmp_path


def test_without_a_choice_the_defaults_are_said(course_env, capsys):
    course = follow_course()
    assert course.data == course_env / "home" / "data" / "synthetic"
    assert course.profile == "smoke" and course.layout.root == course_env / "home" / "outputs"
    out = capsys.readouterr().out
    assert out.startswith("course: synthetic SPIDER in ") and "no choice recorded yet" in out


def test_the_recorded_choice_is_followed_and_an_explicit_setting_wins(course_env, small_dataset, capsys):
    recorded = record_course(small_dataset, "gpu", course_env / "run", source="spider")
    assert recorded.source == "synthetic"  # the folder says what it is: notebook 00 made it
    assert json.loads(course_file().read_text())["profile"] == "gpu"
    course = follow_course()
    assert (course.data, course.profile, course.layout.root) == (small_dataset, "gpu", course_env / "run")
    line = capsys.readouterr().out.strip()
    assert line == (f"course: synthetic SPIDER in {small_dataset}, profile gpu, run {course_env / 'run'} "
                    f"(chosen by notebook 00 at {recorded.chosen_at})")
    course = follow_course(profile="smoke", run_dir=course_env / "other")
    assert (course.data, course.profile, course.layout.root) == (small_dataset, "smoke", course_env / "other")
    out = capsys.readouterr().out
    assert "profile set here: smoke (the course's choice: gpu)" in out
    assert f"run_dir set here: {course_env / 'other'} (the course's choice: {course_env / 'run'})" in out


def test_paths_are_worked_out_when_used_not_when_imported(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIDER_KIT_HOME", str(tmp_path / "drive"))
    monkeypatch.setenv("SPIDER_KIT_DATA_HOME", str(tmp_path / "local"))
    layout = paths.run_layout()
    assert layout.root == tmp_path / "drive" / "outputs" and layout.report == layout.root / "report"
    assert layout.prep == tmp_path / "local" / "outputs" / "prep"  # rebuilt on a new runtime, never on Drive
    assert paths.run_layout(tmp_path / "elsewhere").prep == tmp_path / "elsewhere" / "prep"
    assert paths.synthetic_data_dir() == tmp_path / "local" / "data" / "synthetic"
    monkeypatch.delenv("SPIDER_KIT_HOME")
    monkeypatch.delenv("SPIDER_KIT_DATA_HOME")
    assert paths.output_dir() == paths.ROOT / "outputs" and paths.run_layout().prep == paths.ROOT / "outputs" / "prep"


def test_an_unreadable_choice_is_said_and_the_defaults_used(course_env, capsys):
    course_file().write_text("{not json")
    assert follow_course().profile == "smoke"
    assert "cannot be read" in capsys.readouterr().out


def test_commands_follow_the_course(course_env, small_dataset):
    """`datalist` with no folders writes the course's datalist from the course's prep/, and says which course."""
    course = record_course(small_dataset, "smoke", course_env / "run")
    resample_dataset(small_dataset, course.layout.prep, ResampleSettings(min_inplane_mm=2.0), progress=False)
    env = {**os.environ, "SPIDER_KIT_COURSE": str(course_file())}
    run = subprocess.run([sys.executable, "-m", "helpers", "datalist"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    expected = f"course: synthetic SPIDER in {small_dataset}, profile smoke, run {course_env / 'run'}"
    assert run.stdout.startswith(expected)
    assert json.loads((course_env / "run" / "datalist.json").read_text())["training"]


def test_data_prepared_for_another_profile_is_refused_with_what_to_rerun(smoke_datalist, tmp_path):
    require_profile_grid(TrainConfig(str(smoke_datalist), str(tmp_path / "run"), profile="smoke"))
    with pytest.raises(KitError) as refused:
        require_profile_grid(TrainConfig(str(smoke_datalist), str(tmp_path / "run"), profile="gpu"))
    message = str(refused.value)
    assert "2 mm in-plane grid (the smoke profile's)" in message and "trains the gpu profile (1 mm)" in message
    assert "Rerun notebooks 03 and 04 with profile = 'gpu'" in message
    run = kit("train", "--datalist", smoke_datalist, "--out", tmp_path / "run", "--profile", "gpu")
    assert run.returncode == 2 and "Rerun notebooks 03 and 04" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "run").exists()
