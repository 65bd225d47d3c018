"""The course itself: what every notebook does first, the course's choice, the runner, exercises, the report.

- `notebook_setup`  the first cell of every notebook: plotting defaults, Colab homes, versions, a GPU check
- `choice`          which data, profile and run folder: chosen in notebook 00, followed by 01-07
- `runner`          the numbered notebooks run headless with papermill (`python -m helpers run-notebooks`)
- `exercises`       `Checker(...).check("02.1", answer)`: right, or not yet with a hint
- `exercise_rules`  what an exercise is and how answers are compared
- `exercise_bank`   the exercises, three per notebook, each answer computed from the student's own data
- `networks`        UNETR against a CNN in the same wall-clock time (notebook 05's last section)
- `report`          the report of a run, built from its files only (notebook 06, `python -m helpers report`)
- `executed`        the course's executed notebooks kept beside the report, small (`python -m helpers report`)
"""
