"""Atomic writes: a file is either its old self or completely written, never half (a crash, a full disk).

Used by every notebook through the other helpers; notebook 02 writes its table with write_text_atomic.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


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


def copy_file_atomic(source: os.PathLike | str, target: os.PathLike | str) -> None:
    """Copy a file to `target` through a temporary file and a rename."""
    import shutil

    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def write_image_atomic(image, target: os.PathLike | str) -> None:
    """Write a SimpleITK image through a temporary file and a rename; compressed where the format has it (.mha,
    .nii.gz; a .nii is never compressed)."""
    import SimpleITK as sitk

    with atomic_path(target) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
