"""Errors that name the file and say what is wrong.

Used by every notebook through the other helpers (the command line prints a KitError without a traceback).
"""

from __future__ import annotations

import os
from pathlib import Path


class KitError(Exception):
    """A problem the user can fix; the command line prints it without a traceback."""


class DataError(KitError):
    """A data file or folder that cannot be used, with the path and the reason."""

    def __init__(self, path: os.PathLike | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
