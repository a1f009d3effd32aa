"""Checks of the documentation site.

Two kinds of test live here:

* ``test_every_public_name_is_in_its_chapter`` always runs (no build needed): the derivation
  chapters under ``docs/derived/`` list each NumPy module's functions explicitly, and this
  test fails when a module gains a public name its chapter does not document.
* The browser checks run only when ``LTX_DOCS_SITE`` names a built site
  (``nox -s browser`` sets it to ``docs/_build/html``). They serve the site on 127.0.0.1 from a
  thread, open its pages in headless Chromium through Playwright (the Debian ``chromium``
  binary: ``LTX_CHROMIUM`` or ``which chromium``; no browser is ever downloaded) and check that
  math was typeset by MathJax, that every image loaded, that no page requests anything from the
  network, and that every internal link and anchor resolves. Screenshots of the key pages go to
  ``docs/_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import importlib
import os
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DERIVED = ROOT / "docs" / "derived"

# chapter file -> NumPy module it documents
CHAPTERS = {
    "linear": "linear", "embeddings": "embedding", "positions": "positions",
    "softmax": "softmax", "attention": "attention", "norms": "norms",
    "activations": "activations", "feedforward": "feedforward", "dropout": "dropout",
    "residual": "block", "loss": "loss", "model": "model",
}  # fmt: skip


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_every_public_name_is_in_its_chapter(chapter):
    module = importlib.import_module(f"literate_tx.numpy_backend.{CHAPTERS[chapter]}")
    text = (DERIVED / f"{chapter}.rst").read_text(encoding="utf-8")
    assert f".. automodule:: {module.__name__}" in text
    documented = set(re.findall(r"^\.\. auto(?:function|class):: (\w+)", text, re.M))
    missing = sorted(set(module.__all__) - documented)
    assert not missing, f"docs/derived/{chapter}.rst does not document {missing}"


def test_every_plot_directive_draws_its_own_image():
    """Matplotlib's ``.. plot::`` names a figure ``<page>-<n>.png`` with a counter that MyST
    restarts in every ``{eval-rst}`` block, and it reuses an image that is newer than the page.
    Two plots in one Markdown page therefore both showed the first one's figure (the
    benchmark page's loss curves appeared as its step-rate bars). A page with more than one
    plot must give each a ``:filename-prefix:``, and no prefix may be used twice."""
    problems, prefixes = [], {}
    for page in sorted((ROOT / "docs").rglob("*")):
        if page.suffix not in {".md", ".rst"} or "_build" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        blocks = re.split(r"^\s*\.\. plot::", text, flags=re.M)[1:]
        names = [re.search(r"^\s*:filename-prefix:\s*(\S+)", b.split("\n\n", 1)[0], re.M)
                 for b in blocks]
        rel = page.relative_to(ROOT).as_posix()
        if len(blocks) > 1 and not all(names):
            problems.append(f"{rel}: {len(blocks)} plots, not all with :filename-prefix:")
        for name in filter(None, names):
            prefixes.setdefault(name.group(1), []).append(rel)
    problems += [f"prefix {k!r} used in {v}" for k, v in prefixes.items() if len(v) > 1]
    assert not problems, "\n".join(problems)


def test_every_cited_equation_label_exists():
    """The labels the code cites in its comments (``# eq. (ln-forward)``) and docstrings
    (``:eq:`ln-forward```) are labels of displayed equations: the reader sees the same name."""
    labels, cited = set(), {}
    for path in sorted((ROOT / "literate_tx").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        labels |= set(re.findall(r":label:\s*([\w-]+)", text))
        for match in re.finditer(r"\beqs?\.\s*\(([A-Za-z][\w-]*)\)|:eq:`([\w-]+)`", text):
            cited.setdefault(match.group(1) or match.group(2), path.relative_to(ROOT))
    assert len(labels) > 20
    missing = {label: str(path) for label, path in cited.items() if label not in labels}
    assert not missing, f"cited equation labels that no docstring defines: {missing}"


def _committed(paths: list[Path]) -> list[Path]:
    """The paths git tracks (all of them outside a git checkout): work in progress that is not
    committed yet does not need its documentation yet."""
    try:
        out = subprocess.run(["git", "ls-files", "--", *map(str, paths)], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return paths
    tracked = {(ROOT / line).resolve() for line in out.splitlines()}
    return [p for p in paths if p.resolve() in tracked]


def test_every_numpy_module_has_a_chapter():
    files = _committed(sorted((ROOT / "literate_tx" / "numpy_backend").glob("*.py")))
    modules = {p.stem for p in files} - {"__init__", *CHAPTERS.values()}
    # Modules outside the derivations (e.g. a fast path) belong in the API reference instead.
    api = ROOT / "docs" / "api"
    missing = [m for m in sorted(modules)
               if not (api / f"literate_tx.numpy_backend.{m}.rst").exists()]
    assert not missing, f"numpy_backend modules with neither a chapter nor an API page: {missing}"


# ------------------------------------------------------------------------------ browser checks
SITE = os.environ.get("LTX_DOCS_SITE")
needs_site = pytest.mark.skipif(
    not SITE, reason="set LTX_DOCS_SITE to a built site (nox -s browser does) to run this check"
)

# Pages screenshotted: the landing page, a derivation chapter, gallery examples, notebooks.
KEY_PAGES = [
    "index.html",
    "derived/attention.html",
    "derived/norms.html",
    "auto_examples/plot_python_trace.html",
    "auto_examples/plot_architecture_ablation.html",
    "notebooks/gradients_by_hand.html",
    "notebooks/one_step_three_backends.html",
    "course/index.html",
    "course/step2_one_head.html",
    "course/step6_compare.html",
    "course/backprop_by_hand.html",
]
# Pages that must show at least this many figures (a plot that silently fails to display
# leaves no <img> behind for the image check to catch).
MIN_FIGURES = {
    "auto_examples/plot_python_trace.html": 1,
    "auto_examples/plot_architecture_ablation.html": 2,
    "notebooks/gradients_by_hand.html": 1,
    # The course: every step plots its loss; steps 2, 4 and 5 add a figure or a diagram.
    "course/step1_bigram.html": 1,
    "course/step2_one_head.html": 2,
    "course/step3_multi_head.html": 1,
    "course/step4_block.html": 2,
    "course/step5_gpt.html": 2,
    "course/step6_compare.html": 1,
    # One figure per derivation chapter (matplotlib's plot directive, drawn at build time).
    **{f"derived/{chapter}.html": 1 for chapter in CHAPTERS if chapter != "attention"},
}
# Generated pages that carry no content of their own.
SKIP_PAGES = ("genindex.html", "search.html", "py-modindex.html")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _site() -> Path:
    site = Path(SITE).resolve()
    if not (site / "index.html").is_file():
        pytest.fail(f"LTX_DOCS_SITE={SITE!r} has no index.html; build it with `nox -s docs`")
    return site


def _pages(site: Path) -> list[str]:
    """Every HTML page reachable from index.html by internal links (so that pages left over
    from earlier builds are not checked), except highlighted source (``_modules``)."""
    seen, todo = {"index.html"}, ["index.html"]
    while todo:
        rel = todo.pop()
        for url in _parse(site / rel).urls:
            target, _ = _resolve(site, rel, url)
            if target is None or target.suffix != ".html" or not target.is_file():
                continue
            new = target.relative_to(site).as_posix()
            if new not in seen and not new.startswith(("_", ".")) and new not in SKIP_PAGES:
                seen.add(new)
                todo.append(new)
    return sorted(seen)


def _resolve(site: Path, page: str, url: str) -> tuple[Path | None, str]:
    """The file an internal ``url`` on ``page`` points at, and its fragment (None if external)."""
    if url.startswith(("mailto:", "javascript:", "data:")):
        return None, ""
    parts = urlsplit(urljoin("http://site/" + page, url))
    if parts.netloc != "site":
        return None, ""  # an external link: not followed (the site must work offline)
    target = site / unquote(parts.path.lstrip("/"))
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


class _Links(HTMLParser):
    """Collects the ids of a page and the URLs it points at."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") == "canonical"):
                self.urls.append(attrs[key])


@functools.cache
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


@needs_site
def test_internal_links_and_anchors_resolve():
    site = _site()
    broken, checked = [], 0
    pages = _pages(site)
    # The highlighted source pages are linked from the API pages: check their links too.
    pages += sorted(p.relative_to(site).as_posix() for p in (site / "_modules").rglob("*.html"))
    for rel in pages:
        for url in _parse(site / rel).urls:
            target, fragment = _resolve(site, rel, url)
            if target is None:
                continue
            checked += 1
            if not target.is_file():
                broken.append(f"{rel}: {url} (no file {target.relative_to(site)})")
            elif fragment and target.suffix == ".html" and fragment not in _parse(target).ids:
                broken.append(f"{rel}: {url} (no anchor #{fragment})")
    print(f"checked {checked} internal links")
    assert checked > 100
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:50])


@needs_site
def test_no_page_shows_one_plot_twice():
    """The built-site half of the check above: within a page, every figure drawn by the plot
    directive is a different image file."""
    site = _site()
    repeated = []
    for rel in _pages(site):
        html = (site / rel).read_text(encoding="utf-8", errors="replace")
        images = re.findall(r'class="plot-directive" src="([^"]+)"', html)
        repeated += [f"{rel}: {src}" for src in sorted(set(images)) if images.count(src) > 1]
    assert not repeated, "plots drawn over each other:\n" + "\n".join(repeated)


@needs_site
def test_course_site():
    """The course's promises, read from the built HTML: folded solutions, equations shown by
    the labels the code cites, and a downloadable notebook for every notebook page."""
    site = _site()
    for step in ("step1_bigram", "step2_one_head", "step3_multi_head", "step4_block",
                 "step5_gpt", "backprop_by_hand"):
        html = (site / "course" / f"{step}.html").read_text(encoding="utf-8")
        assert '<details class="ltx-solution">' in html, f"{step}: no folded solution"
        notebook = site / "_notebooks" / "course" / f"{step}.ipynb"
        assert notebook.is_file(), f"{step}: no {notebook.name} to download"
        assert f"_notebooks/course/{step}.ipynb" in html, f"{step}: no download link"
    for chapter in CHAPTERS:
        html = (site / "derived" / f"{chapter}.html").read_text(encoding="utf-8")
        assert "Equations in the code" in html, chapter
        assert '<details class="ltx-solution">' in html, f"{chapter}: no exercise solution"
    attention = (site / "derived" / "attention.html").read_text(encoding="utf-8")
    assert '<span class="eqno">(attn-qkv)' in attention  # the label, not a running number
    assert "eq. (attn-qkv)" in attention  # ... next to the code line that cites it


@pytest.fixture(scope="module")
def server():
    site = _site()
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the base class logs every request to stderr
        pass


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    executable = os.environ.get("LTX_CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.fail("no chromium found: install Debian's `chromium` or set LTX_CHROMIUM")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, headless=True,
                                     args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# What each page reports once MathJax has finished: math elements Sphinx wrote, containers
# MathJax produced, MathJax errors, raw TeX delimiters left in the text outside code blocks,
# and images that did not load.
_INSPECT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const images = Array.from(document.images);
  for (const img of images) { img.loading = "eager"; }
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll("pre, code, script, style, mjx-container, textarea")
       .forEach(e => e.remove());
  const text = clone.textContent;
  return {
    math: document.querySelectorAll(".math").length,
    mjx: document.querySelectorAll("mjx-container").length,
    errors: document.querySelectorAll("mjx-merror").length,
    raw: (text.match(/\\\\\\(|\\\\\\[|\\\\begin\\{/g) || []).length,
    images: images.length,
    broken: images.filter(img => !(img.complete && img.naturalWidth > 0))
                  .map(img => img.getAttribute("src")),
  };
}"""


@needs_site
def test_pages_render_offline(server, browser):
    site = _site()
    shots = site.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    pages = _pages(site)
    for key in KEY_PAGES:
        assert key in pages, f"key page {key} is missing from the site"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    outside: list[str] = []
    failed: list[str] = []

    def route(r):
        if r.request.url.startswith(server):
            r.continue_()
        else:  # the site must not need the network: record and refuse
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("response", lambda resp: resp.status >= 400 and failed.append(
        f"{resp.status} {resp.url}"))
    page.on("pageerror", lambda exc: problems.append(f"{page.url}: JavaScript error {exc}"))
    totals = {"math": 0, "mjx": 0, "images": 0}
    for rel in pages:
        page.goto(server + rel, wait_until="load")
        info = page.evaluate(_INSPECT)
        for key in totals:
            totals[key] += info[key]
        if info["math"] and info["mjx"] < info["math"]:
            problems.append(f"{rel}: {info['math']} math elements but {info['mjx']} typeset")
        if info["errors"]:
            problems.append(f"{rel}: {info['errors']} MathJax errors")
        if info["raw"]:
            problems.append(f"{rel}: {info['raw']} raw TeX delimiters left in the text")
        if info["images"] < MIN_FIGURES.get(rel, 0):
            problems.append(f"{rel}: {info['images']} images, expected at least "
                            f"{MIN_FIGURES[rel]}")
        if info["broken"]:
            problems.append(f"{rel}: images that did not load: {info['broken']}")
        if rel in KEY_PAGES:
            page.screenshot(path=str(shots / (rel.replace("/", "__")[:-5] + ".png")),
                            full_page=True)
    context.close()
    print(f"{len(pages)} pages: {totals['math']} math elements, {totals['mjx']} typeset by "
          f"MathJax, {totals['images']} images; screenshots in {shots}")
    assert totals["mjx"] > 100, "MathJax typeset almost nothing: is it loading?"
    assert totals["images"] > 5
    problems += [f"request outside the site: {u}" for u in sorted(set(outside))]
    problems += [f"HTTP error: {f}" for f in sorted(set(failed))]
    assert not problems, "\n".join(problems)
