"""The inference stage: a trained run applied to scans, between training and evaluation (06, 07).

- `predict`      a trained run's network on any scan, on the scan's own grid (`Predictor`, `predict_file`): the
                 run's record and preprocessing, the sliding window, the chosen post-processing, back onto the
                 original grid
- `batch`        every scan and study inside a folder with one model load: resumable, one line per failure,
                 `summary.csv` (series used, levels by name, volumes in mL, what to check) (07)
- `numbering`    a structure map numbered into SPIDER's instance values (vertebrae 1.., discs 201.., canal 100)
- `dicom_seg`    a prediction on a DICOM series as DICOM SEG (07)
- `bundle`       a trained run as a MONAI bundle that runs without the kit (07)

What it reads of training: the run's record (`training/run_record.py`), its checkpoint (`training/checkpoints.py`),
the network by name and the sliding window (`training/models.py`) and the post-processing
(`training/postprocess.py`); never the training loop. The sliding window and the post-processing stay in training
because its validation runs them too (the stages import only the ones before them): one definition for both.
"""
