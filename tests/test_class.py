"""The real class, rehearsed on this machine: the SPIDER download served from 127.0.0.1 in SPIDER's zip layout with
real-sized series; notebook 00 told only `source = "spider"` (and where the mirror is), then notebooks 01 to 07 run
one after another as a student clicking through, with no parameters but notebook 05's iterations (a few, not the
profile's 1,000: the rehearsal checks the class's path, the course run how well it learns); and the gpu profile's own
code on the CPU: real steps of its 93 M-parameter UNETR, a sliding-window validation of a real-size series, a
resume."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import resource
import threading
import time
import zipfile
from pathlib import Path

import pytest

from helpers.core.paths import NOTEBOOK_DIR
from helpers.core.profiles import get_profile
from helpers.core.runtime import HEADLESS_ENV
from helpers.course.runner import course_notebooks
from helpers.data.synth import write_dataset

pytestmark = pytest.mark.slow
ITERATIONS = 10  # notebook 05's one parameter here; with none, it trains the profile's max_iterations


def _zip_folder(folder: Path, target: Path) -> None:
    """A zip whose entries are `<folder name>/<file>`, as SPIDER's images.zip and masks.zip."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for path in sorted(folder.iterdir()):
            z.write(path, f"{folder.name}/{path.name}")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """Four synthetic patients at SPIDER's real matrix sizes (scale 1.0; ~11 s each to make), never modified: one
    for the test part, the others training and validation."""
    return write_dataset(tmp_path_factory.mktemp("class") / "made", cases=4, seed=11, scale=1.0, progress=False)


@pytest.fixture(scope="module")
def mirror(made, tmp_path_factory):
    """SPIDER's download (images.zip, masks.zip, overview.csv) served by a real HTTP server on 127.0.0.1, and the
    mirror's manifest of checksums (the real zips' SHA-256 are SPIDER's published ones; these are the mirror's)."""
    served = tmp_path_factory.mktemp("served")
    _zip_folder(made / "images", served / "images.zip")
    _zip_folder(made / "masks", served / "masks.zip")
    (served / "overview.csv").write_bytes((made / "overview.csv").read_bytes())
    manifest = served.parent / "mirror-manifest.json"
    manifest.write_text(json.dumps({"files": [
        {"name": n, "size": (served / n).stat().st_size,
         "sha256": hashlib.sha256((served / n).read_bytes()).hexdigest()}
        for n in ("images.zip", "masks.zip", "overview.csv")]}))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", manifest
    httpd.shutdown()
    httpd.server_close()


def _printed(book: Path) -> str:
    nb = json.loads(book.read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")


def test_a_student_clicks_through_the_real_class(made, mirror, tmp_path, monkeypatch):
    import papermill as pm

    url, manifest = mirror
    home = tmp_path / "home"
    monkeypatch.setenv("SPIDER_KIT_HOME", str(home))  # a fresh clone's home: nothing chosen, nothing made
    monkeypatch.delenv("SPIDER_KIT_COURSE", raising=False)
    monkeypatch.delenv("SPIDER_KIT_DATA_HOME", raising=False)
    monkeypatch.setenv(HEADLESS_ENV, "1")
    executed = tmp_path / "executed"
    executed.mkdir()
    spider, run = home / "data" / "spider", home / "outputs"
    for book in course_notebooks():
        first = book.name.startswith("00")
        params = {"source": "spider", "download_url": url, "download_manifest": str(manifest)} if first else {}
        if book.name.startswith("05"):
            params = {"max_iterations": ITERATIONS}
        start = time.perf_counter()
        pm.execute_notebook(str(book), str(executed / book.name), parameters=params, kernel_name="python3",
                            cwd=str(NOTEBOOK_DIR), progress_bar=False)
        print(f"{book.name}: {time.perf_counter() - start:.0f} s")
        printed = _printed(executed / book.name)
        assert f"course: real SPIDER in {spider}, profile smoke, run {run} (chosen by notebook 00 at" in printed, book
        assert "set here" not in printed, book
    assert sorted(p.name for p in (spider / "images").iterdir()) == sorted(p.name for p in (made / "images").iterdir())
    assert not (home / "data" / "synthetic").exists(), "no notebook fell back to the synthetic data"
    assert json.loads((run / "prep" / "manifest.json").read_text())["data_dir"] == str(spider)
    datalist = json.loads((run / "datalist.json").read_text())
    assert datalist["data"]["data_dir"] == str(spider) and datalist["data"]["synthetic"] is False
    config = json.loads((run / "train" / "config.json").read_text())
    assert config["profile"] == "smoke" and config["max_iterations"] == ITERATIONS  # the rest the profile's own
    smoke = get_profile("smoke")
    assert (config["val_every"], config["lr"], config["patch_size"]) == (smoke.val_every, smoke.lr,
                                                                         list(smoke.patch_size))
    assert (run / "train" / "eval" / "test" / "metrics.csv").is_file()
    report = (run / "report" / "README.md").read_text()
    assert "Synthetic data" not in report
    assert (run / "figures" / "05_curves.png").is_file() and (run / "figures" / "01_t1_t2_overlay.png").is_file()


def test_the_gpu_profile_steps_validates_a_real_size_series_and_resumes(made, tmp_path, capsys):
    """The gpu profile's code as a GPU would run it, on the CPU: its network, patch, batch and recipe; shapes, memory
    and time printed (docs/teaching.md)."""
    from helpers.data.datalist import write_datalist
    from helpers.data.resample import ResampleSettings, resample_dataset
    from helpers.training.loop import TrainConfig, require_profile_grid, train

    gpu = get_profile("gpu")
    resample_dataset(made, tmp_path / "prep", ResampleSettings(min_inplane_mm=gpu.inplane_mm), workers=2,
                     progress=False)
    datalist = write_datalist(tmp_path / "prep", tmp_path / "datalist.json")
    one = max(datalist["validation"], key=lambda item: (tmp_path / item["image"]).stat().st_size)
    datalist["validation"] = [one]  # the largest validation series: one sliding-window pass over it
    (tmp_path / "datalist.json").write_text(json.dumps(datalist))
    config = TrainConfig(str(tmp_path / "datalist.json"), str(tmp_path / "run"), profile="gpu", max_iterations=2,
                         val_every=2)
    require_profile_grid(config)
    start = time.perf_counter()
    first = train(config, progress=False)
    seconds = time.perf_counter() - start
    assert first["iteration"] == 2 and 90e6 < first["parameters"] < 95e6
    entries = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    validation = [e for e in entries if e["kind"] == "validation"]
    assert len(validation) == 1 and 0 <= validation[0]["dice_mean"] <= 1
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["patch_size"] == list(gpu.patch_size) and saved["batch_size"] == gpu.batch_size
    again = train(TrainConfig(**{**config.__dict__, "max_iterations": 3}), progress=False)
    assert again["iteration"] == 3 and "resuming" in capsys.readouterr().out
    import nibabel as nib

    shape = nib.load(str(tmp_path / one["image"])).shape
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    with capsys.disabled():
        print(f"\ngpu profile on the CPU: {first['parameters'] / 1e6:.1f} M parameters, patch {gpu.patch_size}, "
              f"{gpu.batch_size} volumes x {gpu.samples_per_volume} patches a step; validation series {one['image']} "
              f"{shape} voxels; 2 steps + 1 validation {seconds:.0f} s, validation {validation[0]['seconds']:.0f} s; "
              f"peak resident memory of the test process {peak_gb:.1f} GB")
