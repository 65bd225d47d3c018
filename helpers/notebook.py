"""What every notebook does first: plotting defaults and a word about the device."""

from __future__ import annotations

import sys


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup() -> None:
    """Set plotting defaults and say which device (and so which profile) this runtime suits."""
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 90, "image.interpolation": "nearest"})
    from .profiles import device_message

    print(device_message())
