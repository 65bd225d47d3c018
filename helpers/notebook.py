"""What every notebook does first (plotting defaults, Drive on Colab, a word about the device), and the
headless switch that the notebook runner sets. Used by every notebook."""

from __future__ import annotations

import os
import sys

DRIVE_ROOT = os.environ.get("SPIDER_KIT_DRIVE_ROOT", "/content/drive/MyDrive/spider-unetr-kit")


HEADLESS_ENV = "SPIDER_KIT_HEADLESS"  # set by the notebook runner (helpers/runner.py)


def headless() -> bool:
    """True inside `python -m helpers run-notebooks` (papermill): no widgets, no 3D viewer."""
    return os.environ.get(HEADLESS_ENV) == "1"


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup(use_drive: bool | None = None) -> None:
    """Plotting defaults, Google Drive on Colab (data, runs and checkpoints survive a disconnect), and a
    word about the device. Locally and headless: only the plotting defaults and the device line."""
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 90, "image.interpolation": "nearest"})
    if use_drive is None:
        use_drive = os.environ.get("SPIDER_KIT_DRIVE", "1") == "1"
    if in_colab() and use_drive and "helpers.paths" not in sys.modules:
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ["SPIDER_KIT_HOME"] = DRIVE_ROOT
        os.makedirs(DRIVE_ROOT, exist_ok=True)
        print(f"Google Drive mounted: data, runs and checkpoints go to {DRIVE_ROOT}; after a disconnect, "
              "run the notebook again and training resumes. (Set SPIDER_KIT_DRIVE=0 to stay on the runtime.)")
    from .profiles import device_message

    print(device_message())
