"""The downloader against a real HTTP server on 127.0.0.1 (with Range support); never the internet."""

import hashlib
import http.server
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from helpers.data.download import DownloadError, download
from helpers.data.spider import scan_dataset

from .conftest import tree_digest


class Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    cut_after: dict[str, int] = {}  # file name -> bytes to send before dropping the connection (once)
    log: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.lstrip("/").split("?")[0]
        path = self.root / name
        self.log.append((name, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.cut_after.pop(name, None)
        self.wfile.write(body[:cut] if cut is not None else body)
        if cut is not None:
            self.wfile.flush()
            self.connection.close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = type("H", (Handler,), {"root": root, "cut_after": {}, "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def _zip(path: Path, entries: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
    return path


def _spider_like(root: Path, small_dataset: Path) -> dict:
    images = {f"images/{p.name}": p.read_bytes() for p in sorted((small_dataset / "images").glob("*.mha"))[:4]}
    masks = {f"masks/{p.name}": p.read_bytes() for p in sorted((small_dataset / "masks").glob("*.mha"))[:4]}
    _zip(root / "images.zip", images)
    _zip(root / "masks.zip", masks)
    (root / "overview.csv").write_bytes((small_dataset / "overview.csv").read_bytes())
    return {"files": [{"name": n, "sha256": hashlib.sha256((root / n).read_bytes()).hexdigest(),
                       "size": (root / n).stat().st_size} for n in ("images.zip", "masks.zip", "overview.csv")]}


def test_full_download_then_idempotent(server, small_dataset, tmp_path):
    root, url, handler = server
    manifest = _spider_like(root, small_dataset)
    target = tmp_path / "spider"
    download(target, url, manifest, progress=False)
    scan = scan_dataset(target)
    assert len(scan.complete) == 4 and scan.overview
    handler.log.clear()
    download(target, url, manifest, progress=False)
    assert handler.log == [], "a second run verifies and fetches nothing"


def test_interrupted_download_resumes_with_range(server, small_dataset, tmp_path):
    root, url, handler = server
    manifest = _spider_like(root, small_dataset)
    size = (root / "images.zip").stat().st_size
    handler.cut_after["images.zip"] = size // 2
    target = tmp_path / "spider"
    with pytest.raises(DownloadError, match="Rerun the same command to resume"):
        download(target, url, manifest, progress=False)
    assert (target / "images.zip.part").stat().st_size == size // 2
    download(target, url, manifest, progress=False)
    assert ("images.zip", f"bytes={size // 2}-") in handler.log
    assert hashlib.sha256((target / "images.zip").read_bytes()).hexdigest() == manifest["files"][0]["sha256"]
    assert len(scan_dataset(target).complete) == 4


def test_checksum_mismatch_is_refused_and_kept_aside(server, small_dataset, tmp_path):
    root, url, _ = server
    manifest = _spider_like(root, small_dataset)
    manifest["files"][1]["sha256"] = "0" * 64
    target = tmp_path / "spider"
    with pytest.raises(DownloadError, match="masks.zip: checksum mismatch"):
        download(target, url, manifest, progress=False)
    assert not (target / "masks.zip").exists() and list(target.glob("masks.zip.bad-*"))
    assert not (target / "masks").exists()


def test_unsafe_zips_are_refused_with_nothing_outside(server, tmp_path):
    root, url, _ = server
    target = tmp_path / "area" / "spider"
    for name, entries, links in (("up.zip", {"images/ok.mha": b"x", "../../evil.txt": b"pwned"}, None),
                                 ("abs.zip", {"/tmp/evil-abs.txt": b"pwned"}, None),
                                 ("link.zip", {"images/ok.mha": b"x"}, {"images/link": "/etc/passwd"})):
        _zip(root / name, entries, links)
        with pytest.raises(DownloadError, match="refused"):
            download(target, url, {"files": [{"name": name}]}, progress=False)
    outside = [p for p in (tmp_path / "area").rglob("*") if target not in p.parents and p != target]
    assert outside == [] and not (tmp_path / "evil.txt").exists()
    assert not (target / "images").exists(), "nothing extracted from a refused zip"


def test_truncated_zip_is_named(server, small_dataset, tmp_path):
    root, url, _ = server
    _spider_like(root, small_dataset)
    data = (root / "images.zip").read_bytes()
    (root / "images.zip").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DownloadError, match="images.zip: .*(not a valid zip|cannot be extracted|corrupt)"):
        download(tmp_path / "spider", url, {"files": [{"name": "images.zip"}]}, progress=False)


def test_file_placed_by_hand_is_verified_not_fetched(server, small_dataset, tmp_path):
    root, url, handler = server
    manifest = _spider_like(root, small_dataset)
    target = tmp_path / "spider"
    target.mkdir()
    (target / "masks.zip").write_bytes((root / "masks.zip").read_bytes())
    download(target, url, manifest, progress=False)
    assert "masks.zip" not in [name for name, _ in handler.log]
    assert (target / "masks").is_dir()


def test_network_failure_says_how_to_resume(tmp_path):
    run = subprocess.run([sys.executable, "-m", "helpers", "download", "--to", str(tmp_path / "d"),
                          "--base-url", "http://127.0.0.1:9", "--manifest", str(_manifest(tmp_path))],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "cannot reach" in run.stderr and "rerun" in run.stderr


def _manifest(tmp_path: Path) -> Path:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"files": [{"name": "overview.csv"}]}))
    return path


def test_zips_kept_apart_fill_a_new_data_folder_without_downloading(server, small_dataset, tmp_path):
    """Colab: the zips kept on Drive (`keep`), the data on the runtime's disk; a new runtime unzips, fetches nothing."""
    root, url, handler = server
    manifest = _spider_like(root, small_dataset)
    drive, first = tmp_path / "drive" / "zips", tmp_path / "runtime1" / "spider"
    download(first, url, manifest, progress=False, keep=drive)
    assert {p.name for p in drive.iterdir()} >= {"images.zip", "masks.zip", "overview.csv"}
    assert not list(first.glob("*.zip")), "the zips stay in the kept folder"
    assert len(scan_dataset(first).complete) == 4 and (first / "overview.csv").is_file()
    handler.log.clear()
    second = tmp_path / "runtime2" / "spider"  # a new runtime: its disk is empty, the Drive folder is not
    download(second, url, manifest, progress=False, keep=drive)
    assert handler.log == [], "nothing fetched again"
    assert tree_digest(second / "images") == tree_digest(first / "images") and (second / "overview.csv").is_file()
    download(second, url, manifest, progress=False, keep=drive)  # a rerun on the same runtime: nothing to do
    assert handler.log == []
