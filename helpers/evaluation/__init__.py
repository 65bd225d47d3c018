"""The evaluation stage: a trained run's predictions scored as the SPIDER challenge scores them, and the kit's way (06).

- `evaluate`     a part of the datalist predicted (helpers/inference/) and scored (`evaluate`, `Evaluation`,
                 `read_evaluation`)
- `dice`         Dice from one joint histogram; the predecessor's number (`predecessor_score`)
- `challenge`    the challenge's instance scoring, as its public code computes it, and a corrected variant
- `stats`        mean ± sd over series, one way: the one `summarise` (sample sd) and the one formatter (`mean_sd`)
- `levels`       what was found, missed or merged, level by level (levels named by helpers.data.labels)
- `distances/`   the surface-distance engine behind the challenge's ASD (fast; a plain method to fall back on)
"""
