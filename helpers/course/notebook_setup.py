"""What every notebook does first (plotting defaults, on Colab runs on Drive and data on the runtime's disk,
versions and device in one line, a GPU check). Whether it runs on Colab or headless: helpers/core/runtime.py.

Used by every notebook."""

from __future__ import annotations

import os
import sys

from helpers.core.runtime import in_colab

DRIVE_ROOT = os.environ.get("SPIDER_KIT_DRIVE_ROOT", "/content/drive/MyDrive/spider-unetr-kit")
LOCAL_ROOT = os.environ.get("SPIDER_KIT_LOCAL_ROOT", "/content/spider-unetr-kit")  # the Colab runtime's own disk
DRIVE_MOUNT = "/content/drive"


def use_colab_homes(use_drive: bool = True) -> None:
    """On Colab: runs on Google Drive (they survive a disconnect), data and preprocessed volumes on the runtime's
    own disk (fast, and they would fill a free Drive). The kit reads these homes whenever it needs a path, so
    this may run before or after any import."""
    from helpers.core.paths import DATA_HOME_ENV, HOME_ENV

    os.environ[DATA_HOME_ENV] = LOCAL_ROOT
    os.makedirs(LOCAL_ROOT, exist_ok=True)
    if not use_drive:
        os.environ[HOME_ENV] = LOCAL_ROOT
        print(f"Google Drive not used: everything goes to {LOCAL_ROOT} and is lost with the runtime.")
        return
    from google.colab import drive

    if not os.path.isdir(os.path.join(DRIVE_MOUNT, "MyDrive")):
        drive.mount(DRIVE_MOUNT)
    os.environ[HOME_ENV] = DRIVE_ROOT
    os.makedirs(DRIVE_ROOT, exist_ok=True)
    print(f"Google Drive mounted: runs, checkpoints, figures and reports go to {DRIVE_ROOT} (after a disconnect, "
          f"run the notebooks again and training resumes); data and preprocessed volumes stay on this runtime's "
          f"disk ({LOCAL_ROOT}): rebuilt by notebooks 00 and 03 after a new runtime. "
          "(Set SPIDER_KIT_DRIVE=0 to keep everything on the runtime.)")


def setup(use_drive: bool | None = None) -> None:
    """Plotting defaults, the Colab homes (runs on Google Drive, data on the runtime's disk), and a word about
    the device. Locally and headless: only the plotting defaults and the device line."""
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 90, "image.interpolation": "nearest"})
    if use_drive is None:
        use_drive = os.environ.get("SPIDER_KIT_DRIVE", "1") == "1"
    if in_colab():
        use_colab_homes(use_drive)
    from helpers.core.profiles import device_message

    print(versions_line())
    print(device_message())
    if in_colab():
        gpu_check()


def versions_line() -> str:
    """torch, MONAI, SimpleITK and the device, in one line a student can paste into a question. MONAI's version is
    read from its installed metadata: importing MONAI takes ~3 s, which notebooks 00-03 do not otherwise spend."""
    from importlib.metadata import version

    import SimpleITK as sitk
    import torch

    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        device = "mps (Apple GPU)"
    else:
        device = "cpu (no GPU)"
    return (f"torch {torch.__version__} | MONAI {version('monai')} | SimpleITK {sitk.Version_VersionString()} | "
            f"Python {sys.version.split()[0]} | device {device}")


COLAB_GPU_STEPS = ("This Colab runtime has no GPU. Notebook 05 trains UNETR: without a GPU only the small smoke "
                   "profile runs. To get one: Runtime > Change runtime type > Hardware accelerator: T4 GPU > Save. "
                   "The runtime restarts: run the notebooks again from the top (runs on Google Drive stay; "
                   "notebooks 00 and 03 rebuild the data on the new runtime).")


def gpu_check() -> bool:
    """Before training: True when a CUDA GPU is there; otherwise say so, and on Colab what to click."""
    import torch

    if torch.cuda.is_available():
        print(f"GPU ready for notebook 05: {torch.cuda.get_device_name(0)}")
        return True
    print(COLAB_GPU_STEPS if in_colab() else
          "No GPU here: notebook 05 runs the smoke profile on the CPU (minutes); the gpu profile needs a CUDA GPU.")
    return False
