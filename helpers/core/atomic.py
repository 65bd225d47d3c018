"""Verified atomic writes: a file is either its old self or completely written and checked, never half.

Every write goes to a temporary file beside the target, is read back and checked (SimpleITK's writers do not
raise when the disk fills: they print "NWAD: wrote only ..." and return), and only then renamed into place. A
full disk ends in one line naming the folder, the space needed and free; a read-only place or a file where a
folder should be likewise (`helpers.core.places`). `digest` and `still_intact` let a record keep a file's size and
checksum, so a rerun trusts only what it can re-verify.

Used by every notebook through the other helpers; notebook 02 writes its table with write_text_atomic.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from helpers.core.errors import KitError

TEMP_PREFIX = ".tmp-"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class IncompleteWrite(Exception):
    """A written file that does not read back as what was written."""


def no_space_error(folder: Path, needed: int, what: str) -> KitError:
    """The one line a full disk gets: the folder, the space needed and free, what to do."""
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = 0
    return KitError(f"{folder}: not enough disk space to write {what} (about {_mb(needed)} needed, {_mb(free)} free); "
                    "nothing partial was kept. Free some space there (or choose another output folder) and rerun: "
                    "what was already written and verified is kept")


def _mb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


@contextlib.contextmanager
def atomic_path(target: os.PathLike | str, verify: Callable[[Path], None] | None = None, needed: int = 0):
    """Yield a temporary path beside `target`; after the block, `verify(tmp)` (raises IncompleteWrite when the file
    is not what was meant), then rename onto `target`. Nothing is left under either name when anything fails."""
    from helpers.core.places import place_error, writable_folder

    target = Path(target)
    folder = writable_folder(target.parent)
    try:
        # keep the real suffix last so writers that look at it (SimpleITK, nibabel) still work
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix="-" + target.name)
    except OSError as e:
        raise place_error(folder, e) from None
    os.close(fd)
    try:
        yield Path(tmp)
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, target)
    except OSError as e:
        if e.errno in NO_SPACE:
            raise no_space_error(folder, needed, target.name) from None
        raise
    except IncompleteWrite as e:
        if _nearly_full(folder, needed):
            raise no_space_error(folder, needed, target.name) from None
        raise KitError(f"{target}: written but it does not read back as written ({e}); nothing was kept under that "
                       "name. Check the disk, then rerun") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _nearly_full(folder: Path, needed: int) -> bool:
    import shutil

    try:
        return shutil.disk_usage(folder).free < max(needed, 1 << 20)
    except OSError:
        return False


def write_text_atomic(target: os.PathLike | str, text: str) -> None:
    """Write text (UTF-8) to `target` through a temporary file, read back and compared, and a rename."""
    data = text.encode("utf-8")

    def same(tmp: Path) -> None:
        if tmp.read_bytes() != data:
            raise IncompleteWrite(f"{tmp.stat().st_size} of {len(data)} bytes")

    with atomic_path(target, same, needed=len(data)) as tmp:
        tmp.write_bytes(data)


def copy_file_atomic(source: os.PathLike | str, target: os.PathLike | str) -> None:
    """Copy a file to `target` through a temporary file (size and checksum compared) and a rename."""
    import shutil

    expected = digest(source)

    def same(tmp: Path) -> None:
        if digest(tmp) != expected:
            raise IncompleteWrite(f"copy of {source} differs from it")

    with atomic_path(target, same, needed=expected["bytes"]) as tmp:
        shutil.copyfile(source, tmp)


def write_image_atomic(image, target: os.PathLike | str) -> dict:
    """Write a SimpleITK image through a temporary file and a rename; compressed where the format has it (.mha,
    .nii.gz; a .nii is never compressed). Before the rename the file is read back and its grid and voxels compared
    with `image`. Returns the written file's `digest`, for a record."""
    import numpy as np
    import SimpleITK as sitk

    def same(tmp: Path) -> None:
        try:
            back = sitk.ReadImage(str(tmp))
        except RuntimeError as e:
            raise IncompleteWrite(f"unreadable: {str(e).strip().splitlines()[-1]}") from None
        if back.GetSize() != image.GetSize() or not np.array_equal(sitk.GetArrayViewFromImage(back),
                                                                    sitk.GetArrayViewFromImage(image)):
            raise IncompleteWrite("its voxels differ from what was written (a truncated file reads back zero-filled)")

    needed = image.GetNumberOfPixels() * image.GetNumberOfComponentsPerPixel() * image.GetSizeOfPixelComponent()
    with atomic_path(target, same, needed=needed + 4096) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=True)
        except RuntimeError as e:  # ITK's writers raise RuntimeError, not OSError, when a write fails
            raise IncompleteWrite(f"the writer failed: {str(e).strip().splitlines()[-1]}") from None
    return digest(target)


def save_figure(fig, target: os.PathLike | str | None, dpi: int = 110, **options) -> None:
    """Save a matplotlib figure as PNG through a temporary file, checked to be a whole PNG, and a rename (nothing when
    `target` is None): every figure the notebooks and the report draw goes through here."""
    if not target:
        return

    def whole(tmp: Path) -> None:
        data = tmp.read_bytes()
        if not data.startswith(b"\x89PNG") or not data.endswith(b"IEND\xaeB`\x82"):
            raise IncompleteWrite("not a whole PNG")

    with atomic_path(target, whole, needed=1 << 20) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", **options)


def digest(path: os.PathLike | str) -> dict:
    """A file's size and SHA-256, as a record keeps them."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return {"bytes": os.path.getsize(path), "sha256": sha.hexdigest()}


def still_intact(path: os.PathLike | str, recorded: dict | None) -> bool:
    """Whether a file still has the size and checksum its record kept (False without a record)."""
    path = Path(path)
    if not recorded or not path.is_file() or path.stat().st_size != recorded.get("bytes"):
        return False
    return digest(path)["sha256"] == recorded.get("sha256")


def remove_stale_temps(folder: os.PathLike | str, older_than_s: float = 0.0) -> list[Path]:
    """Remove the temporary files a killed run left in `folder` and its subfolders (call it holding the folder's
    lock, so no live writer's file is taken). Returns what was removed."""
    removed = []
    now = time.time()
    for path in Path(folder).rglob(TEMP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if path.is_file() and now - path.stat().st_mtime >= older_than_s:
                path.unlink()
                removed.append(path)
    return removed
