"""Download the SPIDER dataset (Zenodo record 10159290): resumable, verified, extracted safely, idempotent.

`python -m helpers download --to DIR [--base-url URL] [--manifest FILE]`. A file is fetched from
BASE_URL/NAME. The manifest is `{"files": [{"name": ..., "sha256": ..., "size": ...}]}` (sha256 and size
optional). Zips are extracted into DIR; other files are kept as they are. Files placed in DIR by hand go
through the same checks.

Used by notebook 00.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from helpers.core.atomic import copy_file_atomic, write_text_atomic
from helpers.core.errors import KitError

ZENODO_FILES_URL = "https://zenodo.org/records/10159290/files"
SPIDER_MANIFEST = {"files": [
    {"name": "images.zip", "sha256": "a54cba2905284ff6cc9999f1dd0e4d871c8487187db7cd4b068484eac2f50f17"},
    {"name": "masks.zip", "sha256": "13a6e25a8c0d74f507e16ebb2edafc277ceeaf2598474f1fed24fdf59cb7f18f"},
    {"name": "overview.csv"},
    {"name": "radiological_gradings.csv"},
]}
CHUNK = 1 << 20
STATE = ".download-state.json"  # what was verified and extracted, so a rerun does nothing


class DownloadError(KitError):
    """A download or verification problem, with what to do next."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _state(to: Path) -> dict:
    try:
        return json.loads((to / STATE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _save_state(to: Path, state: dict) -> None:
    write_text_atomic(to / STATE, json.dumps(state, indent=1))


def _stamp(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def verify(path: Path, entry: dict) -> None:
    """Check size and SHA-256 where the manifest knows them; a mismatch moves the file aside and raises."""
    problem = None
    if entry.get("size") is not None and path.stat().st_size != entry["size"]:
        problem = f"size {path.stat().st_size} bytes, expected {entry['size']}"
    elif entry.get("sha256"):
        actual = sha256_of(path)
        if actual != entry["sha256"]:
            problem = f"SHA-256 {actual}, expected {entry['sha256']}"
    if problem:
        aside = path.with_name(f"{entry['name']}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        raise DownloadError(f"{entry['name']}: checksum mismatch ({problem}); the file is kept aside as {aside}. "
                            "Delete it and rerun to download again, or check the manifest.")


def _fetch(url: str, part: Path, entry: dict, progress: bool, timeout: float) -> None:
    """Download `url` into `part`, resuming from its current size with an HTTP Range request."""
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the partial file is complete
            return
        raise DownloadError(f"{entry['name']}: the server answered {e.code} {e.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{entry['name']}: cannot reach {url} ({getattr(e, 'reason', e)}); check the network "
                            f"and rerun, or download the file by hand into {part.parent}") from None
    with response:
        resumed = response.status == 206
        if have and not resumed:
            have = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else entry.get("size")
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=entry["name"], disable=not progress)
        try:
            with open(part, "ab" if resumed else "wb") as f:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    bar.update(len(block))
        except (OSError, http_errors()) as e:
            done = part.stat().st_size
            raise DownloadError(f"{entry['name']}: the download stopped after {done} bytes ({e}). Rerun the same "
                                "command to resume from there.") from None
        finally:
            bar.close()
        if total is not None and part.stat().st_size < total:
            raise DownloadError(f"{entry['name']}: the connection closed after {part.stat().st_size} of {total} "
                                "bytes. Rerun the same command to resume from there.")


def http_errors():
    import http.client

    return http.client.HTTPException


def safe_members(archive: zipfile.ZipFile, zip_path: Path) -> list[zipfile.ZipInfo]:
    """Every entry, after refusing the archive if any entry could land outside the target folder."""
    members = archive.infolist()
    for info in members:
        name = info.filename
        pure = PurePosixPath(name.replace("\\", "/"))
        mode = info.external_attr >> 16
        if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            reason = "an absolute path"
        elif ".." in pure.parts:
            reason = "a '..' path"
        elif stat.S_ISLNK(mode):
            reason = "a symbolic link"
        else:
            continue
        raise DownloadError(f"{zip_path.name}: refused, entry {name!r} is {reason}; nothing was extracted")
    return members


def extract(zip_path: Path, to: Path) -> list[str]:
    """Extract a verified zip safely: into a temporary folder first, then moved into `to`."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{zip_path.name}: not a valid zip ({e}); truncated? Delete it and rerun") from None
    tmp = to / f".extract-{zip_path.stem}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with archive:
            members = safe_members(archive, zip_path)
            bad = archive.testzip()
            if bad:
                raise DownloadError(f"{zip_path.name}: entry {bad!r} is corrupt (CRC); delete the zip and rerun")
            archive.extractall(tmp, members)
        placed = []
        for item in sorted(tmp.iterdir()):
            target = to / item.name
            if item.is_dir() and target.is_dir():
                for sub in item.rglob("*"):
                    if sub.is_file():
                        dest = target / sub.relative_to(item)
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(sub, dest)
            else:
                os.replace(item, target)
            placed.append(item.name)
        return placed
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise DownloadError(f"{zip_path.name}: cannot be extracted ({e}); truncated? Delete it and rerun") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_space(folder: Path, entries: list[dict], verified: dict, zips: bool = True, unpacked: bool = True) -> None:
    """Enough room in `folder` for the files not yet verified: their zips, what they unpack to, or both."""
    needed = sum(e["size"] * ((zips or not e["name"].endswith(".zip")) + (unpacked and e["name"].endswith(".zip")))
                 for e in entries if e.get("size") and e["name"] not in verified)
    free = shutil.disk_usage(folder).free
    if needed and free < needed:
        raise DownloadError(f"{folder}: {free / 1e9:.1f} GB free, the download and its extraction need about "
                            f"{needed / 1e9:.1f} GB; free some space or choose another folder")


def zip_store(keep_on_drive: bool = True) -> Path | None:
    """Where notebook 00 keeps the downloaded zips: on Colab with `keep_on_drive`, a Drive folder (3.8 GB) that a
    new runtime unzips from instead of downloading again; otherwise None: beside the data they unpack to."""
    from helpers.core.paths import kit_home
    from helpers.core.runtime import in_colab

    return kit_home() / "downloads" / "spider" if in_colab() and keep_on_drive else None


def download(to: str | Path, base_url: str = ZENODO_FILES_URL, manifest: dict | None = None,
             progress: bool = True, timeout: float = 60.0, keep: str | Path | None = None) -> Path:
    """Fetch, verify and extract every file of the manifest into `to`; a rerun verifies and does nothing.

    `keep`: a folder for the downloaded files themselves (a cache on Google Drive); zips are unpacked from there
    into `to` and other files copied; a new `to` is filled from it without downloading again."""
    to = Path(to)
    keep = Path(keep) if keep else to
    to.mkdir(parents=True, exist_ok=True)
    keep.mkdir(parents=True, exist_ok=True)
    entries = (manifest or SPIDER_MANIFEST)["files"]
    kept = _state(keep)  # what was verified, where the files are kept
    here = kept if keep.resolve() == to.resolve() else _state(to)  # what was extracted or copied here
    kept.setdefault("verified", {})
    here.setdefault("extracted", {})
    if here is kept:
        _check_space(to, entries, kept["verified"])
    else:
        _check_space(keep, entries, kept["verified"], unpacked=False)
        _check_space(to, entries, here["extracted"], zips=False)
    for entry in entries:
        name = entry["name"]
        final, part = keep / name, keep / f"{name}.part"
        if not (final.is_file() and kept["verified"].get(name) == _stamp(final)):
            if not final.is_file():
                _fetch(f"{base_url.rstrip('/')}/{name}", part, entry, progress, timeout)
                os.replace(part, final)
            verify(final, entry)  # also covers files placed by hand
            kept["verified"][name] = _stamp(final)
            _save_state(keep, kept)
        stamp = kept["verified"][name]
        if name.endswith(".zip"):
            if here["extracted"].get(name) == stamp:
                continue
            extract(final, to)
        elif here is kept or (here["extracted"].get(name) == stamp and (to / name).is_file()):
            continue
        else:
            copy_file_atomic(final, to / name)
        here["extracted"][name] = stamp
        _save_state(to, here)
    return to


def read_manifest_file(path: str | Path) -> dict:
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise KitError(f"{path}: cannot read the manifest ({e})") from None
    if not isinstance(manifest.get("files"), list) or not all("name" in f for f in manifest["files"]):
        raise KitError(f"{path}: a manifest is {{\"files\": [{{\"name\": ..., \"sha256\": ..., \"size\": ...}}]}}")
    return manifest
