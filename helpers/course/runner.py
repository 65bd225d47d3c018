"""Run the numbered notebooks headless with papermill; executed copies go to the run folder. Records the course's
choice first (helpers/course/choice.py), so a student who then opens any notebook follows the same data and run.

Used by no notebook: `python -m helpers run-notebooks` (`make run`) and the slow tests. Each notebook gets
only the parameters it declares.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from helpers.core.errors import KitError
from helpers.core.paths import NOTEBOOK_DIR, run_layout, synthetic_data_dir
from helpers.course.choice import absolute, record_course


def _local_kernels():
    """A kernel manager whose kernels talk over local sockets (IPC) rather than TCP: the kernel on this machine
    needs no network port, and ipykernel then has no reason to warn about unencrypted TCP at every notebook."""
    from jupyter_client.manager import AsyncKernelManager

    class LocalKernelManager(AsyncKernelManager):
        transport = "ipc" if os.name == "posix" else "tcp"

    return LocalKernelManager


def course_notebooks(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order, or those whose number is in `only` (e.g. ['00', '02'])."""
    books = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        books = [b for b in books if b.name[:2] in only]
        missing = set(only) - {b.name[:2] for b in books}
        if missing:
            raise KitError(f"no notebook numbered {', '.join(sorted(missing))} in {NOTEBOOK_DIR}")
    return books


def notebook_parameters(book: Path, params: dict) -> dict:
    """The part of `params` that a notebook declares in its parameters cell (papermill's inspection)."""
    import papermill as pm

    declared = pm.inspect_notebook(str(book))
    return {k: v for k, v in params.items() if k in declared}


def run_notebooks(profile: str = "smoke", only: list[str] | None = None, data_dir: str | None = None,
                  out: str | None = None, extra: dict | None = None) -> list[tuple[str, float]]:
    """Execute notebooks in order; on failure raise KitError naming the notebook, cell and error."""
    import papermill as pm

    from helpers.core.profiles import get_profile
    from helpers.core.runtime import HEADLESS_ENV

    os.environ[HEADLESS_ENV] = "1"  # the kernels inherit it: no widgets, no 3D viewer
    cell_timeout = 1800 if get_profile(profile).name == "smoke" else None  # a stalled cell fails, named
    layout = run_layout(out)
    layout.notebooks.mkdir(parents=True, exist_ok=True)
    # absolute paths: the kernels run in notebooks/, not where the user typed the command
    data = absolute(data_dir) if data_dir else synthetic_data_dir()
    course = record_course(data, profile, layout.root, chosen_by="run-notebooks")  # what a student then follows
    print(course.describe(), flush=True)
    params = {"profile": profile, "run_dir": course.run_dir, "data_dir": course.data_dir}
    params.update(extra or {})
    timings = []
    for book in course_notebooks(only):
        target = layout.notebooks / book.name
        print(f"running {book.name} ...", flush=True)
        start = time.perf_counter()
        try:
            pm.execute_notebook(str(book), str(target), parameters=notebook_parameters(book, params),
                                kernel_name="python3", kernel_manager_class=_local_kernels(),
                                cwd=str(NOTEBOOK_DIR), progress_bar=False, execution_timeout=cell_timeout)
        except pm.PapermillExecutionError as e:
            raise KitError(f"{book.name} failed in cell {e.cell_index} ({e.ename}: {e.evalue}); "
                           f"see the executed copy {target}") from None
        except Exception as e:  # a dead kernel, a timeout: still name the notebook
            raise KitError(f"{book.name} failed: {type(e).__name__}: {e}; see the executed copy {target}") from None
        seconds = time.perf_counter() - start
        timings.append((book.name, seconds))
        print(f"  done in {seconds:.1f} s -> {target}", flush=True)
    return timings
