"""The evaluation stage: predict with a trained run, score it as the SPIDER challenge does, hand it on (06, 07).

- `predict`      a trained run's network on any scan, on the scan's own grid (`Predictor`, `predict_file`)
- `evaluate`     a part of the datalist predicted and scored (`evaluate`, `Evaluation`, `read_evaluation`)
- `dice`         Dice from one joint histogram; the predecessor's number (`predecessor_score`)
- `challenge`    the challenge's instance scoring, as its public code computes it, and a corrected variant
- `stats`        mean ± sd over series, one way: the one `summarise` (sample sd) and the one formatter (`mean_sd`)
- `numbering`    a structure map numbered into SPIDER's instance values
- `levels`       levels by name (L5, L4/L5, ...) and what was found, missed or merged, level by level
- `distances/`   the surface-distance engine behind the challenge's ASD (fast; a plain method to fall back on)
- `dicom_seg`    a prediction on a DICOM series as DICOM SEG (07)
- `bundle`       a trained run as a MONAI bundle that runs without the kit (07)
"""
