"""A real JupyterLab server and a real headless Chromium, driven the way a student clicks: open a notebook,
Run > Run All Cells, wait, save. Used by tests/test_browser.py; nothing here is mocked."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from helpers.core.runtime import HEADLESS_ENV

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)

# JupyterLab settings for the test profile: every cell in the DOM (no virtual scrolling), no news pop-ups
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


def find_browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or the reason there are none (a string)."""
    browser = next((p for n in CHROMIUM_NAMES if (p := shutil.which(n))), None)
    driver = next((p for n in DRIVER_NAMES if (p := shutil.which(n))), None)
    if not browser or not driver:
        return ("no Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver; "
                ".ci/run installs them)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'selenium is not installed (pip install -e ".[browser]")'
    return browser, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """`jupyter lab` from this Python environment on 127.0.0.1 with a token, serving `root`."""

    root: Path
    state: Path  # settings, workspaces and runtime files of this server only
    process: subprocess.Popen | None = None
    port: int = 0
    token: str = ""

    def start(self, timeout: float = 120) -> LabServer:
        settings = self.state / "settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items() if k != HEADLESS_ENV}  # the widget path, not the static strip
        env.update({"JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(self.state / "ws"),
                    "JUPYTER_RUNTIME_DIR": str(self.state / "runtime"), "PYTHONUNBUFFERED": "1"})
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.log = (self.state / "lab.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}", "--allow-root",
             "--ServerApp.port_retries=0", "--LabApp.news_url=", ],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {(self.state / 'lab.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer in {timeout:.0f} s")

    def sessions(self) -> dict[str, str]:
        """Notebook path -> its kernel's execution state ('idle', 'busy', ...), from the server's REST API."""
        with urllib.request.urlopen(f"{self.url}/api/sessions?token={self.token}", timeout=10) as r:
            return {s["path"]: s["kernel"]["execution_state"] for s in json.loads(r.read())}

    def kernel_state(self, path: str) -> str | None:
        """The server's word on the kernel of notebook `path` (relative to root), or None when it has none."""
        return self.sessions().get(path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if getattr(self, "log", None):
            self.log.close()


def start_chromium(browser: str, driver: str, width: int = 1400, height: int = 1000):
    """Headless Chromium under chromedriver (Selenium), with the system's binaries: no download."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


# JavaScript run in the page: facts about the open notebook, read from the DOM a student sees
NOTEBOOK_STATE_JS = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
if (!panel) return null;
const cells = [...panel.querySelectorAll('.jp-Cell.jp-CodeCell')];
const prompts = cells.map(c => (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '');
const imgs = [...panel.querySelectorAll('.jp-OutputArea-output img')];
return {
  prompts: prompts,
  busy: prompts.some(p => p.includes('*')),
  images: imgs.map(i => ({w: i.naturalWidth, h: i.naturalHeight, complete: i.complete})),
  widget_errors: [...panel.querySelectorAll('.jupyter-widgets.jupyter-widgets-error, .jp-RenderedText')]
      .map(e => e.textContent).filter(t => /Error displaying widget|Failed to display|Traceback/.test(t)),
  sliders: panel.querySelectorAll('.widget-slider, .widget-hslider').length,
  canvases: [...panel.querySelectorAll('.jp-OutputArea-output canvas')].map(c => [c.width, c.height]),
};
"""


class Student:
    """One browser session in one JupyterLab: opens notebooks, runs them through the menus, takes pictures."""

    def __init__(self, lab: LabServer, driver):
        self.lab, self.driver, self.path = lab, driver, ""

    def open(self, relpath: str, timeout: float = 120) -> None:
        """Open a notebook by its address and wait for its kernel; answer a kernel dialog as a student would."""
        from selenium.webdriver.common.by import By

        self.path = relpath
        # ?reset: an empty workspace, so that a closed notebook is not reopened by JupyterLab restoring its tabs
        self.driver.get(f"{self.lab.url}/lab/tree/{relpath}?reset&token={self.lab.token}")
        shown = ("const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
                 "return p !== null && p.querySelectorAll('.jp-Cell').length > 0;")

        def ready() -> bool:
            return (self.driver.execute_script(shown) and not self.driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
                    and self.lab.kernel_state(relpath) == "idle")

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for button in self.driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"):
                if button.is_displayed():  # "Select Kernel": keep the notebook's own kernel
                    button.click()
            if ready():
                time.sleep(2)  # the page settles (kernel connection, first render) before a student clicks
                if ready():
                    return
            time.sleep(0.5)
        raise TimeoutError(f"{relpath} did not open with an idle kernel in {timeout:.0f} s")

    def menu(self, top: str, item: str) -> None:
        """Click a menu of the menu bar, then one of its items, both by the label a student reads."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(self.driver, 30)
        bar = wait.until(ec.element_to_be_clickable(
            (By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//div[text()='{top}']]")))
        bar.click()
        wait.until(ec.element_to_be_clickable(
            (By.XPATH, f"//ul[contains(@class,'lm-Menu-content')]/li[.//div[@class='lm-Menu-itemLabel']"
                       f"[text()='{item}']]"))).click()

    def state(self) -> dict:
        return self.driver.execute_script(NOTEBOOK_STATE_JS)

    def run_all(self, timeout: float = 900, retries: int = 3) -> dict:
        """Run > Run All Cells, then wait until every code cell has run and the kernel is idle.

        A click that starts nothing (queued cells show [*] at once) is repeated: under load, JupyterLab can
        take the first click before the notebook is the current widget."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        for _ in range(retries):
            try:  # make the notebook the current widget, as a student's click in it does
                self.driver.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").click()
            except StaleElementReferenceException:
                time.sleep(1)
                continue
            self.menu("Run", "Run All Cells")
            started = time.monotonic() + 20
            while time.monotonic() < started:
                state = self.state()
                if state and any(p.strip() not in ("", "[ ]:") for p in state["prompts"]):
                    break
                time.sleep(0.5)
            else:
                continue
            break
        else:
            raise TimeoutError(f"Run All Cells started nothing after {retries} clicks")
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            last = self.state()
            if last and not last["busy"] and all(p.strip() not in ("", "[ ]:") for p in last["prompts"]) \
                    and self.lab.kernel_state(self.path) == "idle":
                time.sleep(1)  # let the last outputs and images settle
                return self.state()
            time.sleep(1)
        raise TimeoutError(f"notebook still running after {timeout:.0f} s: {last}")

    def move_slider(self, steps: int = 3, timeout: float = 60) -> tuple[dict, dict]:
        """Focus the first slider's handle and press the right arrow `steps` times, as a student would with the
        keyboard; return the slider's readout and its figure before and after the redraw."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        panel = ".jp-NotebookPanel:not(.lm-mod-hidden) "
        interact = self.driver.find_element(By.CSS_SELECTOR, panel + ".kit-slice-slider")
        look = ("const w = arguments[0]; const img = w.querySelector('img');"
                "return {readout: (w.querySelector('.widget-readout') || {}).textContent,"
                " image: img ? img.src : null, loaded: img ? img.naturalWidth : 0};")
        before = self.driver.execute_script(look, interact)
        handle = interact.find_element(By.CSS_SELECTOR, ".noUi-handle")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
        handle.click()
        for _ in range(steps):
            handle.send_keys(Keys.ARROW_RIGHT)
            time.sleep(0.3)
        deadline, after = time.monotonic() + timeout, before
        while time.monotonic() < deadline:
            after = self.driver.execute_script(look, interact)
            if after["readout"] != before["readout"] and after["image"] not in (None, before["image"]) \
                    and after["loaded"]:
                break
            time.sleep(0.5)
        return before, after

    def save(self) -> None:
        self.menu("File", "Save Notebook")
        time.sleep(1)

    def close(self, timeout: float = 30) -> None:
        """File > Close and Shut Down Notebook, then Ok: one kernel at a time, and no tab for the next page load
        to restore (JupyterLab reopens the tabs of its workspace)."""
        from selenium.webdriver.common.by import By

        self.menu("File", "Close and Shut Down Notebook\u2026")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            buttons = [b for b in self.driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-Dialog-footer button")
                       if b.is_displayed() and b.text.strip() != "Cancel"]
            if buttons:
                buttons[-1].click()
                break
            time.sleep(0.3)
        while time.monotonic() < deadline:
            if self.lab.kernel_state(self.path) is None:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{self.path} was not shut down in {timeout:.0f} s")

    def screenshot(self, path: Path, max_height: int = 8000) -> Path:
        """The whole notebook in one picture, from its top: the window grows to the notebook's height first, up to
        `max_height` (under Chromium's 8192-pixel texture limit: a taller window was capped at 8192 and once hung the
        capture for 6 minutes in CI, with notebook 02 of 16 patients)."""
        height = self.driver.execute_script(
            "const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
            "const s = p.querySelector('.jp-WindowedPanel-outer') || p.querySelector('.jp-Notebook');"
            "s.scrollTop = 0; const cells = p.querySelectorAll('.jp-Cell'); const end = cells[cells.length - 1];"
            "return end.getBoundingClientRect().bottom - s.getBoundingClientRect().top"
            " + p.getBoundingClientRect().top;")
        size = self.driver.get_window_size()
        self.driver.set_window_size(size["width"], min(max_height, int(height) + 260))
        time.sleep(1.5)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        self.driver.set_window_size(size["width"], size["height"])
        return path
