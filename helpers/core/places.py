"""Places the kit writes to: a read-only folder, a file where a folder is expected, or the reverse, each said in
one line naming the path and what to do (the command line prints it and exits 2, no traceback).

Used by every notebook through the other helpers (files, resample, train, evaluate, predict).
"""

from __future__ import annotations

import errno
from pathlib import Path

from helpers.core.errors import KitError


def place_error(path: Path, error: OSError) -> KitError:
    """An OSError met while creating or writing in `path`, as one line."""
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = "is on a read-only file system" if error.errno == errno.EROFS else "is not writable by you"
        return KitError(f"{path} {why}: choose an output folder you can write to")
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        return KitError(f"{blocker} is a file, where a folder is expected: choose another output folder, or move "
                        "the file away")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return KitError(f"{path}: no disk space left there: free some space (or choose another output folder)")
    return KitError(f"{path}: cannot write there ({error.strerror or error})")


def writable_folder(path: str | Path) -> Path:
    """`path` as a folder that exists (created with its parents when missing), or a KitError saying why not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise KitError(f"{path} is a file, where a folder is expected: choose another output folder, or move the "
                       "file away")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise place_error(path, e) from None
    return path


def existing_file(path: str | Path, what: str, made_by: str = "") -> Path:
    """`path` as a file that exists, or a KitError that says it is a folder, or missing (and what makes it)."""
    from helpers.core.errors import DataError

    path = Path(path)
    if path.is_dir():
        raise DataError(path, f"is a folder, where {what} (a file) is expected")
    if not path.is_file():
        raise DataError(path, "not found" + (f"; {made_by} writes it" if made_by else ""))
    return path


def read_json_object(path: str | Path, what: str, made_by: str = "") -> dict:
    """A JSON file that must hold an object ({...}): a clear error for a folder, a missing file, bad JSON, or
    valid JSON of another kind (a list, a number)."""
    import json

    from helpers.core.errors import DataError

    path = existing_file(path, what, made_by)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(path, f"is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise DataError(path, f"holds a JSON {type(value).__name__}, where {what} (a JSON object, {{...}}) is "
                              "expected" + (f"; {made_by} writes it" if made_by else ""))
    return value
