"""Errors that name the file and say what is wrong, and atomic writes.

Used by every notebook through the other helpers; notebook 02 writes its table with write_text_atomic.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class KitError(Exception):
    """A problem the user can fix; the command line prints it without a traceback."""


class DataError(KitError):
    """A data file or folder that cannot be used, with the path and the reason."""

    def __init__(self, path: os.PathLike | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@contextlib.contextmanager
def atomic_path(target: os.PathLike | str):
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # keep the real suffix last so writers that look at it (SimpleITK, nibabel) still work
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix="-" + target.name)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(target: os.PathLike | str, text: str) -> None:
    """Write text to `target` through a temporary file and a rename."""
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text)


def write_image_atomic(image, target: os.PathLike | str) -> None:
    """Write a SimpleITK image (.mha, .nii.gz, ...) compressed, through a temporary file and a rename."""
    import SimpleITK as sitk

    with atomic_path(target) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
