"""The data stage: SPIDER on disk, its labels and axes, and everything before training (notebooks 00-04, 07).

- `spider`        SPIDER's layout: find series, parse their names, read them (00, 01)
- `labels`        the one label table: SPIDER values, structures, names, levels by name (L5, L4/L5) (01, 05-07)
- `axes`          the kit's one axis order (AP, SI, LR; the network's), numpy's for arrays, orientation (01-06)
- `synth`, `phantom`  synthetic SPIDER-format patients, so the course runs without the dataset (00)
- `download`      the real dataset from Zenodo: resumable, verified, extracted safely (00)
- `inspection`    one table of every series with flags and reasons (02)
- `resample`      raw series -> training data on one grid; the same path for inference (03, 06, 07)
- `datalist`      a MONAI datalist split by patient, with a leakage check (04)
- `dicom_series`  your own scan: a DICOM folder, NIfTI, MetaImage or NRRD (07)
- `dicom_study`   every DICOM series in a study, export or DICOMDIR, listed and chosen; multi-frame read (07)
- `differences`   what differs between your scan and what the model saw, and what to look at (07)
- `predecessor`   the recipe of the student project the kit grew from, which it compares itself with (03, 05, 06)
"""
