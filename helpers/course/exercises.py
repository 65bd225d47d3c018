"""Exercises a student can check in a cell: `check("02.1", answer)` prints right, or not yet with a hint.

Every expected answer is computed from the data and the run the student actually has (the notebook's
`data_dir` and `run_dir`), never stored as a number. The exercises themselves are in `exercise_bank.py`;
instructors print the worked solutions with `python -m helpers solutions`.

Used by every notebook: its closing cell, `Checker(data_dir, run_dir).check(...)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.course.choice import follow_course
from helpers.course.exercise_bank import EXERCISES
from helpers.course.exercise_rules import Context, Exercise


def context(data_dir: str | Path = "", run_dir: str | Path = "", **values) -> Context:
    """The context of a notebook from its parameters (empty strings: the course's choice, as in the notebooks)."""
    course = follow_course(data_dir, "", run_dir, quiet=True)
    return Context(course.data, course.layout, values)


def exercises() -> dict[str, Exercise]:
    return {e.id: e for e in EXERCISES}


def get_exercise(exercise_id: str) -> Exercise:
    bank = exercises()
    try:
        return bank[exercise_id]
    except KeyError:
        raise KeyError(f"no exercise {exercise_id!r}; there are {', '.join(bank)}") from None


def is_right(exercise_id: str, answer: Any, ctx: Context) -> bool:
    """True when `answer` is right for this student's data and run."""
    exercise = get_exercise(exercise_id)
    if answer is None:
        return False
    if exercise.accept is not None:
        return exercise.accept(answer, ctx)
    return exercise.matches(answer, exercise.expected(ctx))


def verdict(exercise_id: str, answer: Any, ctx: Context) -> str:
    """The line a student reads: right, not answered yet, or not yet with the hint."""
    exercise = get_exercise(exercise_id)
    if answer is None:
        return f"{exercise_id} not answered yet: {exercise.question}"
    try:
        right = is_right(exercise_id, answer, ctx)
    except FileNotFoundError as e:
        return f"{exercise_id} cannot be checked yet: {e}. Run the notebook above first."
    if right:
        return f"{exercise_id} right: {answer!r}"
    return f"{exercise_id} not yet ({answer!r}). Hint: {exercise.hint}"


def check(exercise_id: str, answer: Any, data_dir: str | Path = "", run_dir: str | Path = "", **values) -> None:
    """Print whether `answer` is right for exercise `exercise_id` (e.g. "02.1"), with a hint if not."""
    print(verdict(exercise_id, answer, context(data_dir, run_dir, **values)))


class Checker:
    """`ex = Checker(data_dir, run_dir)` once per notebook, then `ex.check("02.1", answer)`."""

    def __init__(self, data_dir: str | Path = "", run_dir: str | Path = "", **values):
        self.ctx = context(data_dir, run_dir, **values)

    def check(self, exercise_id: str, answer: Any) -> None:
        print(verdict(exercise_id, answer, self.ctx))


def solutions_text(ctx: Context, notebook: str | None = None) -> str:
    """Every exercise (or those of one notebook, e.g. "02") with its answer on this data and its worked solution."""
    lines = []
    for exercise in exercises().values():
        if notebook and not exercise.id.startswith(f"{notebook}."):
            continue
        try:
            answer = repr(exercise.expected(ctx))
        except (FileNotFoundError, KeyError, ValueError) as e:
            answer = f"(not computable yet: {e})"
        lines += [f"## {exercise.id}  {exercise.question}", f"answer on this data: {answer}", "",
                  exercise.solution.strip(), ""]
    return "\n".join(lines)
