"""What an exercise is: its context (the student's data and run), how an answer is compared, and the record
of one exercise. The bank (helpers.course.exercise_bank) defines the exercises with these; the checker
(helpers.course.exercises) compares a student's answer with them.

Used by every notebook's closing cell, through helpers.course.exercises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.core.paths import RunLayout


@dataclass(frozen=True)
class Context:
    """What an answer is computed from: the dataset, the course run, and a few notebook values."""

    data: Path
    run: RunLayout
    values: dict = field(default_factory=dict)  # e.g. which series a notebook showed, the split seed

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _norm(value: Any) -> str:
    return str(value).strip().strip("'\"").lower().replace(" ", "")


def same_text(answer: Any, expected: Any) -> bool:
    return _norm(answer) == _norm(expected)


def same_set(answer: Any, expected: Any) -> bool:
    if isinstance(answer, str):
        answer = answer.replace(",", " ").split()
    return {_norm(a) for a in answer} == {_norm(e) for e in expected}


def close_to(rel: float = 0.02, abs_: float = 0.0) -> Callable[[Any, Any], bool]:
    """Numbers (or sequences of numbers) equal within a relative or absolute tolerance."""

    def compare(answer: Any, expected: Any) -> bool:
        a = list(answer) if isinstance(answer, list | tuple) else [answer]
        e = list(expected) if isinstance(expected, list | tuple) else [expected]
        try:
            return len(a) == len(e) and all(abs(float(x) - float(y)) <= max(abs_, rel * abs(float(y)))
                                            for x, y in zip(a, e))
        except (TypeError, ValueError):
            return False

    return compare


def exactly(answer: Any, expected: Any) -> bool:
    try:
        return int(answer) == int(expected) and float(answer) == float(expected)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Exercise:
    """One exercise: its question, how to compute its answer from a context, how to compare, a hint, a solution."""

    id: str
    question: str
    expected: Callable[[Context], Any]
    hint: str
    solution: str  # the worked solution, for instructors (`python -m helpers solutions`)
    matches: Callable[[Any, Any], bool] = same_text
    accept: Callable[[Any, Context], bool] | None = None  # a looser rule where several answers are right
