"""Every picture the course draws, in one place.

- `series`    sagittal slices of a series with its structures overlaid, a legend, a slider (00, 01, 03, 06, 07)
- `dataset`   spacings and intensities of every series; the kit's grid against the predecessor's (02, 03)
- `charts`    training curves, a live plot, training patches, a diagram of UNETR, box plots of scores (05, 06)
- `gallery`   the best, median and worst evaluated series, and the worst instances (06)
- `contact_sheet`  each predicted scan's picture (mid-sagittal slice, labels, levels) and a sheet of all (07)
- `viewer3d`  a 3D view in a browser notebook (01)

Each figure is written atomically (`core.atomic.save_figure`) where it is saved.
"""
