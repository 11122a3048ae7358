"""The human-eval app in a real browser: Debian's chromium driven by Playwright against `guard-eval human-eval serve`.

Opens an annotator link, answers items, reloads, restarts the server on the same database and checks that every
answer is still there. A screenshot of an answered item is saved in the test's tmp dir; with
GUARD_BENCH_UPDATE_DOCS=1 (or when it is missing) it is also copied to docs/img/human-eval.png.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from test_human_eval import write_run

CHROMIUM = Path("/usr/bin/chromium")
APT_LOG = Path("/tmp/apt.log")
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img" / "human-eval.png"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _chromium_ready() -> bool:
    if not CHROMIUM.exists():
        return False
    # While the machine's apt install is still running, the binary may be there but incomplete.
    return not APT_LOG.exists() or APT_LOG.read_text(errors="replace").rstrip().endswith("APTDONE")


pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not _chromium_ready(), reason=f"Debian chromium not installed at {CHROMIUM}"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`guard-eval human-eval serve` in a subprocess; collects the printed links and waits until it answers."""

    def __init__(self, *args: str, timeout: float = 60):
        self.port = _free_port()
        cmd = [sys.executable, "-m", "guard_eval.cli", "human-eval", "serve", "--port", str(self.port), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout], daemon=True).start()
        self.output = ""
        deadline = time.time() + timeout
        while "serving on" not in self.output:
            try:
                self.output += lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"server did not start within {timeout}s:\n{self.output}") from None
            if self.proc.poll() is not None and lines.empty():
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output}")
        self.url = f"http://127.0.0.1:{self.port}"
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"server not answering on {self.url}:\n{self.output}") from None
                time.sleep(0.1)

    def links(self) -> dict[str, str]:
        return dict(re.findall(r"(?:annotator|admin) (\S+): (http://\S+)", self.output))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _answer(page, choices: dict[str, str]) -> None:
    for question, value in choices.items():
        page.locator(f'input[name="{question}"][value="{value}"]').check()
    with page.expect_navigation():
        page.get_by_role("button", name="Save answer").click()


def _checked(page) -> dict[str, str]:
    return {q: page.locator(f'input[name="{q}"]:checked').get_attribute("value")
            for q in ("coherent", "specific", "helpful", "production")}  # fmt: skip


def test_answers_persist_across_reload_and_restart(tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    run_a, run_b = write_run(tmp_path, "run_a", "generic"), write_run(tmp_path, "run_b", "specific")
    db = tmp_path / "study.sqlite"
    first = Server("--a", str(run_a), "--b", str(run_b), "--n", "3", "--db", str(db), "--annotator", "alice",
                   "--show-gold")  # fmt: skip
    answers = [None, {"coherent": "1", "specific": "tie", "helpful": "1", "production": "tie"}]  # first: see below
    try:
        link = first.links()["alice"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(link)
            assert page.locator("#answered-count").inner_text() == "0"
            page.get_by_role("link", name="Start").click()
            item_urls = []
            for i, choices in enumerate(answers):
                item_urls.append(page.url)
                assert "Trace 1" in page.locator("#trace-1 h2").inner_text()
                if choices is None:  # prefer the step-by-step trace, wherever the blinding put it
                    better = "1" if "Step 1" in page.locator("#trace-1").inner_text() else "2"
                    choices = answers[i] = {"coherent": better, "specific": better, "helpful": better,
                                            "production": better}  # fmt: skip
                _answer(page, choices)
                assert page.url == item_urls[-1]  # --show-gold: back on the item, now with the ground truth
                assert page.locator("#gold").is_visible() and page.locator("#answered-notice").is_visible()
                if i == 0:
                    shot = tmp_path / "human-eval.png"
                    page.screenshot(path=str(shot), full_page=True)
                page.reload()
                assert _checked(page) == choices and page.locator("#answered-notice").is_visible()
                page.get_by_role("link", name="next open item →").click()
            browser.close()
    finally:
        first.stop()
    assert shot.stat().st_size > 10_000
    if os.environ.get("GUARD_BENCH_UPDATE_DOCS") or not DOCS_IMG.exists():
        DOCS_IMG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG)

    second = Server("--db", str(db))  # a restart on the same database, on another port
    try:
        assert "existing annotators" in second.output and "alice" not in second.links()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page()
            page.goto(link.replace(str(first.port), str(second.port)))
            assert page.locator("#answered-count").inner_text() == "2"
            for url, choices in zip(item_urls, answers):
                page.goto(url.replace(str(first.port), str(second.port)))
                assert _checked(page) == choices
            response = page.goto(link.replace(str(first.port), str(second.port))[:-3] + "xyz")  # a tampered token
            assert response.status == 403 and "not valid" in page.inner_text("body")
            browser.close()
    finally:
        second.stop()
