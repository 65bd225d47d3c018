"""ITK's own messages, whole and in their place: an ITK error as one line with its whole reason, and ITK's warnings
kept from the terminal (collected, for the kit to say what they mean in its own one line).

SimpleITK raises `RuntimeError("Exception thrown in SimpleITK ImageFileReader_Execute: /path/itkImageBase.hxx:77:\\n
ITK ERROR: Image(0x5631...): Zero-valued spacing is not supported ...\\nRefusing to change spacing from ...")`:
`itk_reason` keeps everything after "ITK ERROR:" (both lines), without the build path and the object's address.
ITK prints its warnings (GDCM's "No Series were found", the series reader's "Non uniform sampling") straight to
stderr, above the kit's message; `itk_messages()` routes them to a list instead (SimpleITK's LoggerBase).

Used by every notebook that reads a scan (00, 01, 07) through helpers/data/spider.py and helpers/data/dicom_study.py.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator

_ADDRESS = re.compile(r"\b\w+\s*\(0x[0-9a-fA-F]+\):\s*")  # "Image(0x5631...): ", "GDCMSeriesFileNames (0x...): "
_LOCATION = re.compile(r"(WARNING|ERROR): In \S+, line \d+\s*")
_lock = threading.RLock()


def itk_reason(error: BaseException | str) -> str:
    """The reason an ITK error gives, whole, on one line: 'Zero-valued spacing is not supported and may result in
    undefined behavior. Refusing to change spacing from [1, 1, 1] to [1, 0, 1]'."""
    text = str(error)
    if "ITK ERROR:" in text:
        text = text.split("ITK ERROR:", 1)[1]
    elif "Exception thrown in SimpleITK" in text:  # a SimpleITK check of its own: after the "file:line:" prefix
        text = re.sub(r"^Exception thrown in SimpleITK \S+: \S+:\d+:\s*", "", text.strip())
        text = text.removeprefix("sitk::ERROR:")
    text = _ADDRESS.sub("", _LOCATION.sub("", text))
    return " ".join(text.split()).rstrip(".") or "no reason given"


def _clean(text: str) -> str:
    return " ".join(_ADDRESS.sub("", _LOCATION.sub("", text)).split())


@contextlib.contextmanager
def itk_messages() -> Iterator[list[str]]:
    """Within the block, ITK's warnings and messages go to the list yielded (each on one line, without build path
    or address) instead of the terminal; the previous logger is restored afterwards. What ITK's file readers print
    to stderr themselves (MetaIO's "data not read completely ideal = 108000 : actual = 53852", GDCM's notes) is
    kept from the terminal too and added to the list when the block ends."""
    import SimpleITK as sitk

    messages: list[str] = []

    class _Collector(sitk.LoggerBase):
        def DisplayText(self, text: str) -> None:  # noqa: N802 (SimpleITK's names)
            messages.append(_clean(text))

        DisplayErrorText = DisplayWarningText = DisplayGenericOutputText = DisplayDebugText = DisplayText

    collector = _Collector()
    with _lock, _stderr_to(messages):
        previous = collector.SetAsGlobalITKLogger()
        try:
            yield messages
        finally:
            previous.SetAsGlobalITKLogger()


@contextlib.contextmanager
def _stderr_to(messages: list[str]) -> Iterator[None]:
    """The process's stderr (file descriptor 2, where C++ code writes) into `messages`, line by line, for the block;
    where it cannot be redirected (no descriptor 2), left alone."""
    import os
    import sys
    import tempfile

    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as capture:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            messages.extend(line for line in (_clean(x) for x in text.splitlines()) if line)
