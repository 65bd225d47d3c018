"""Where the kit runs: on Google Colab or not, and headless (inside the notebook runner) or not.

Used by every notebook through helpers.course.notebook_setup, and by the figures and the download that behave
differently there."""

from __future__ import annotations

import os
import sys

HEADLESS_ENV = "SPIDER_KIT_HEADLESS"  # set by the notebook runner (helpers/course/runner.py)


def headless() -> bool:
    """True inside `python -m helpers run-notebooks` (papermill): no widgets, no 3D viewer."""
    return os.environ.get(HEADLESS_ENV) == "1"


def in_colab() -> bool:
    return "google.colab" in sys.modules
