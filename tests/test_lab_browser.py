"""The lab's real server, driven in headless Chromium (``nox -s lab``).

Starts ``streamlit run literate_tx/lab/app.py`` with the settings of ``literate-tx lab`` on a
free port of 127.0.0.1, trains a digits model for a few steps from the Train page (typing into
the page and pressing Start, as a user does), opens every page, saves a screenshot of each
under ``LTX_LAB_SCREENSHOTS`` (default ``docs/_build/lab-screenshots``), checks that no page
shows an exception, and that no request — HTTP or websocket — leaves 127.0.0.1. The server is
stopped at the end.

Runs only when ``LTX_CHROMIUM`` names a Chromium binary (Debian's ``chromium``; Playwright never
downloads a browser) and Playwright and Streamlit are installed; otherwise it is skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("LTX_CHROMIUM")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="set LTX_CHROMIUM to a Chromium binary "
                                "(nox -s lab does)")

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("LTX_LAB_SCREENSHOTS", ROOT / "docs" / "_build" / "lab-screenshots"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
PAGES = ("Train", "Attention", "Internals", "Compare runs", "Generate", "Trace", "Benchmark")
LOCAL = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The lab on a free port, with one small run already trained (for Compare runs)."""
    from literate_tx.lab import free_port, server_command
    from literate_tx.training import TrainConfig, train

    root = tmp_path_factory.mktemp("lab-runs")
    train(TrainConfig(steps=40, batch_size=16, d_model=32, n_heads=2, d_ff=64, n_train=500,
                      n_val=50, n_test=50, warmup_steps=4, eval_every=10,
                      out=str(root / "digits-small")), quiet=True)
    port = free_port()
    env = dict(os.environ, LTX_LAB_ROOT=str(root), PYTHONUNBUFFERED="1")
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(server_command(port, root), cwd=root, env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the lab's server did not start:\n"
                            + (root / "server.log").read_text(errors="replace"))
            time.sleep(0.3)
    yield url, root
    from literate_tx.lab import jobs

    jobs.stop_all()
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser_page(server):
    requests: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("websocket", lambda ws: requests.append(ws.url))
        page.set_default_timeout(60_000)
        yield page, requests
        context.close()
        browser.close()


def _settle(page, name: str) -> None:
    """Wait until the page's script run is over (no "Running..." widget for a while) and the
    charts are drawn."""
    page.wait_for_load_state("networkidle")
    page.locator("h1", has_text=name).first.wait_for()
    quiet = 0
    for _ in range(480):
        busy = page.locator("[data-testid='stStatusWidget']").count()
        quiet = 0 if busy else quiet + 1
        if quiet >= 6:
            break
        page.wait_for_timeout(250)
    page.wait_for_timeout(1000)  # plotly's first paint


def _check_page(page, name: str) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, name
    assert "Traceback" not in page.inner_text("body"), name


def _shot(page, name: str) -> Path:
    """Screenshot the whole page: Streamlit scrolls inside its main block, so the window is made
    as tall as that block first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / (re.sub(r"\W+", "-", name.lower()).strip("-") + ".png")
    page.mouse.move(5, 5)  # no tooltip in the picture
    height = page.evaluate("() => Math.max(...Array.from(document.querySelectorAll("
                           "'[data-testid=stMain], [data-testid=stMainBlockContainer]'))"
                           ".map(e => e.scrollHeight), 800)")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 4000)})
    page.wait_for_timeout(800)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})
    return path


def test_train_a_digits_model_from_the_page(server, browser_page):
    url, root = server
    page, _ = browser_page
    page.goto(url + "?page=Train")
    _settle(page, "Train")
    for label, value in (("steps", "60"), ("eval_every", "10")):
        if label == "eval_every":
            page.get_by_text("More settings").click()
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        _settle(page, "Train")
    page.get_by_role("button", name="Start").click()
    page.get_by_text("finished", exact=True).wait_for(timeout=120_000)
    _settle(page, "Train")
    _check_page(page, "Train")
    assert (root / "digits-numpy" / "last.npz").is_file()
    metrics = (root / "digits-numpy" / "metrics.jsonl").read_text().splitlines()
    assert sum('"train"' in line for line in metrics) == 60
    assert page.locator(".js-plotly-plot").count() >= 4
    _shot(page, "Train")


@pytest.mark.parametrize("name", PAGES[1:])
def test_every_page_renders(server, browser_page, name):
    url, _ = server
    page, _ = browser_page
    page.goto(url + "?page=" + name.replace(" ", "+"))
    _settle(page, name)
    if name == "Generate":
        page.get_by_role("button", name="Generate").click()
        _settle(page, name)
    elif name == "Benchmark":
        page.get_by_role("button", name="Run the benchmark").click()
        page.get_by_text("took ").wait_for(timeout=120_000)
        _settle(page, name)
    _check_page(page, name)
    assert page.locator("[data-testid='stAlertContentError']").count() == 0, \
        page.inner_text("body")[:2000]
    if name != "Generate":
        assert page.locator(".js-plotly-plot, [data-testid='stDataFrame']").count() >= 1, name
    _shot(page, name)


def test_no_request_leaves_the_machine(browser_page):
    _, requests = browser_page
    assert requests
    outside = sorted({u for u in requests
                      if urlsplit(u).scheme not in ("data", "blob", "about")
                      and urlsplit(u).hostname not in LOCAL})
    assert not outside, f"requests leaving 127.0.0.1: {outside}"
