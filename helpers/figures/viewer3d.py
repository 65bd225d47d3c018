"""3D view of one series with its mask coloured by structure, in a browser notebook (never headless).

Which viewer, where:
- JupyterLab: itkwidgets when installed (the `3d` extra), else ipyniivue.
- Google Colab: ipyniivue (an anywidget NiiVue viewer that renders there); itkwidgets 1.0 pre-releases show no
  viewer on Colab (InsightSoftwareConsortium/itkwidgets#771, open), so it is never chosen there.
- Neither installed, or a headless run: a message saying what to install, and nothing is imported.

Used by notebook 01 (`show_3d = True`).
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from helpers.core.runtime import headless, in_colab
from helpers.data.labels import FOREGROUND, STRUCTURE_COLOURS, STRUCTURES, to_structures

VIEWERS = ("itkwidgets", "niivue")


def installed(viewer: str) -> bool:
    return importlib.util.find_spec("itkwidgets" if viewer == "itkwidgets" else "ipyniivue") is not None


def choose_viewer(prefer: str = "auto") -> tuple[str | None, str]:
    """(viewer, reason): the viewer to use here, or None and what to do instead."""
    if headless():
        return None, "3D view off in a headless run (it needs a browser)."
    colab = in_colab()
    if prefer not in ("auto", *VIEWERS):
        raise ValueError(f"unknown 3D viewer {prefer!r}; choose auto, {', '.join(VIEWERS)}")
    if prefer == "itkwidgets" and colab:
        return None, ("itkwidgets shows no viewer on Google Colab (itkwidgets issue #771); "
                      "use viewer='niivue' after `%pip install ipyniivue`.")
    order = [prefer] if prefer != "auto" else (["niivue"] if colab else ["itkwidgets", "niivue"])
    for viewer in order:
        if installed(viewer):
            return viewer, f"{viewer} ({'Colab' if colab else 'JupyterLab'})"
    if colab:
        return None, "3D view on Colab: run `%pip install -q ipyniivue`, then this cell again."
    return None, '3D view: `pip install -e ".[3d]"` (itkwidgets and ipyniivue), restart the kernel, run again.'


def label_colormap() -> dict:
    """NiiVue label lookup table: structure index -> colour from helpers.data.labels, background transparent."""
    rgb = [(0, 0, 0)] + [tuple(int(STRUCTURE_COLOURS[s][i:i + 2], 16) for i in (1, 3, 5)) for s in FOREGROUND]
    return {"R": [c[0] for c in rgb], "G": [c[1] for c in rgb], "B": [c[2] for c in rgb],
            "A": [0] + [255] * len(FOREGROUND), "I": list(range(len(STRUCTURES))), "labels": list(STRUCTURES)}


def structure_mask(mask: sitk.Image) -> sitk.Image:
    """SPIDER label values -> structure indices (0 background, 1 vertebra, 2 disc, 3 canal), same grid."""
    out = sitk.GetImageFromArray(to_structures(sitk.GetArrayFromImage(mask)))
    out.CopyInformation(mask)
    return out


def _nifti_bytes(image: sitk.Image, name: str, folder: Path) -> bytes:
    path = folder / name
    sitk.WriteImage(image, str(path))
    return path.read_bytes()


def niivue_view(image: sitk.Image, mask: sitk.Image | None = None, height: int = 420, opacity: float = 0.5):
    """An ipyniivue widget: the image in grey, the structures over it in their colours; three planes and 3D."""
    from ipyniivue import NiiVue, ShowRender, SliceType

    volumes = []
    with tempfile.TemporaryDirectory() as tmp:
        volumes.append({"data": _nifti_bytes(sitk.Cast(image, sitk.sitkFloat32), "image.nii.gz", Path(tmp)),
                        "name": "image.nii.gz", "colormap": "gray"})
        if mask is not None:
            labels = sitk.Cast(structure_mask(mask), sitk.sitkUInt8)
            volumes.append({"data": _nifti_bytes(labels, "structures.nii.gz", Path(tmp)),
                            "name": "structures.nii.gz", "opacity": opacity})
    viewer = NiiVue(height=height, multiplanar_show_render=ShowRender.ALWAYS)  # three planes and a 3D render
    viewer.load_volumes(volumes)
    if mask is not None:
        viewer.volumes[1].set_colormap_label(label_colormap())
    viewer.set_slice_type(SliceType.MULTIPLANAR)
    return viewer


def itk_view(image: sitk.Image, mask: sitk.Image | None = None):
    """itkwidgets (JupyterLab): the image with the structure map as its label image."""
    from itkwidgets import view

    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    kwargs = {"image": arr}
    if mask is not None:
        kwargs["label_image"] = sitk.GetArrayFromImage(structure_mask(mask))
    return view(**kwargs)


def show_3d(image: sitk.Image, mask: sitk.Image | None = None, viewer: str = "auto"):
    """The 3D viewer for this notebook (a widget to display), or None after printing why there is none."""
    chosen, reason = choose_viewer(viewer)
    if chosen is None:
        print(reason)
        return None
    print(f"3D view with {reason}: {', '.join(f'{s} {STRUCTURE_COLOURS[s]}' for s in FOREGROUND)}")
    return niivue_view(image, mask) if chosen == "niivue" else itk_view(image, mask)
