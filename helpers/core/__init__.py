"""The core every stage keeps to: where files go (every file of a run), profiles, errors, safe writes.

- `paths`     the kit's folders, a course run's layout, and every file of a run and of its evaluation (`RunFiles`)
- `profiles`  smoke / gpu / full: the same code at different sizes, and each one's training recipe
- `errors`    errors that name the file and say what is wrong
- `atomic`    verified atomic writes (temporary file, read back, rename); a full disk said in one line
- `places`    a read-only folder, a file where a folder is expected: one line naming the path
- `lock`      one process per run folder at a time
- `runtime`   on Colab or not, headless (the notebook runner) or not
- `itk`       ITK's own messages: an error's reason whole on one line, its warnings kept off the terminal

Used by every notebook, through the other stages.
"""
