"""The HTML leaderboard in a real headless Chromium (Debian's package): it renders offline, the best cells are bold,
the embedded chart loads. The screenshot is kept in the test's tmp dir. With GUARD_BENCH_UPDATE_DOCS=1 the docs'
screenshot (docs/img/leaderboard.png) is taken the same way of the released GuardReasoner-1B/3B traces and the JBB
judges (shared data), or of the test page when the data is absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from guard_eval.leaderboard import build_table, load_runs, render

from test_leaderboard import RUN_A, RUN_B, RUN_C, write_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img" / "leaderboard.png"


@pytest.mark.browser
def test_html_leaderboard_in_headless_chromium(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    for name, spec in (("sft", RUN_A), ("dpo", RUN_B), ("partial", RUN_C)):
        write_run(tmp_path / name, name, spec)
    table = build_table(load_runs([str(tmp_path / n) for n in ("sft", "dpo", "partial")], bootstrap=200))
    page_path = tmp_path / "leaderboard.html"
    page_path.write_text(render(table, "html", title="guard-bench leaderboard (test runs)"), encoding="utf-8")
    shot = tmp_path / "leaderboard.png"

    with sync_api.sync_playwright() as p:
        # playwright passes --user-data-dir itself for a persistent context (our throwaway profile dir)
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, viewport={"width": 1100, "height": 800}
        )
        try:
            page = browser.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(shot), full_page=True)
            rows = page.locator("#leaderboard tbody tr")
            assert rows.count() == 3
            cells = rows.nth(1).locator("td").all_inner_texts()  # dpo
            assert cells[0] == "dpo" and cells[2].startswith("100.0") and cells[3].startswith("93.3")
            best = page.locator("td.best")
            assert best.count() == 3  # harmbench_prompt (sft), demo_prompt and the prompt average (dpo)
            assert all(int(w) >= 700 for w in best.evaluate_all("els => els.map(e => getComputedStyle(e).fontWeight)"))
            headers = page.locator("th.group").all_inner_texts()
            assert headers == ["Prompt harmfulness", "Refusal"]
            width = page.locator("img.chart").evaluate("img => img.complete ? img.naturalWidth : 0")
            assert width >= 600  # the base64 chart decoded
            assert all(u.startswith(("file:", "data:")) for u in requests)  # self-contained: nothing fetched
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("GUARD_BENCH_UPDATE_DOCS"):
        DOCS_IMG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_docs_screenshot(tmp_path, sync_api) or shot, DOCS_IMG)


def _docs_screenshot(tmp_path: Path, sync_api) -> Path | None:
    from guard_eval.benchmarks import resolve_data_dir
    from guard_eval.results.readers import judge_runs

    data = resolve_data_dir()
    if data is None or not (data / "guardreasoner" / "test").is_dir():
        return None
    runs = load_runs(["baseline:guardreasoner-1b", "baseline:guardreasoner-3b"], ["jbb"], str(data))
    judge_runs(runs, "heuristic")
    page_path, shot = tmp_path / "docs.html", tmp_path / "docs.png"
    page_path.write_text(render(build_table(runs), "html", title="Released GuardReasoner traces and JBB judges"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(str(tmp_path / "profile-docs"), executable_path=CHROMIUM, args=ARGS,
                                                       viewport={"width": 1400, "height": 800})  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return shot
