"""Developer and CI sessions: ``nox -s tests``, ``hf``, ``data``, ``docs``, ``browser``, ``lab``,
``lint``, ``bench``.

PyTorch is always installed from an exact pin, ``LTX_TORCH_SPEC`` (default ``torch==2.13.0``,
a CPU wheel on the project's machines). An unpinned ``torch`` resolves to a multi-GB CUDA build;
a user with a GPU chooses theirs, e.g. ``LTX_TORCH_SPEC="torch==2.5.1" nox -s tests``.

The sessions use nox's default virtualenv backend so that pip's configuration (constraint file,
``find-links``) applies inside the session environments.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests", "docs"]

ROOT = Path(__file__).resolve().parent
DOCS = ROOT / "docs"
DOCS_BUILD = DOCS / "_build"
TORCH_SPEC = os.environ.get("LTX_TORCH_SPEC", "torch==2.13.0")
# ruff is pinned so that a new release's rules cannot turn CI red overnight; bump it on purpose.
RUFF_SPEC = os.environ.get("LTX_RUFF_SPEC", "ruff==0.17.6")

# MathJax 4 is vendored from the npm registry at build time so that math renders with no network.
MATHJAX_NPM = ["mathjax@4", "@mathjax/mathjax-newcm-font@4"]
NPM_PREFIX = DOCS_BUILD / ".npm"
# docs/conf.py adds this folder to html_static_path: its mathjax/ becomes _static/mathjax.
MATHJAX_STATIC = DOCS_BUILD / ".mathjax"


def _install_torch(session: nox.Session) -> None:
    if "==" not in TORCH_SPEC and "@" not in TORCH_SPEC and not TORCH_SPEC.endswith(".whl"):
        session.error(
            f"LTX_TORCH_SPEC={TORCH_SPEC!r} is not an exact pin; an unpinned torch pulls a "
            "multi-GB CUDA build. Use e.g. LTX_TORCH_SPEC='torch==2.13.0'."
        )
    session.install(TORCH_SPEC)


def _quiet_home(session: nox.Session) -> dict[str, str]:
    """Point matplotlib, IPython and Jupyter state at a session temp dir instead of ``~``."""
    # nox's envdir is relative to where nox runs (".nox/docs"); a relative path here would be
    # resolved again by each notebook kernel, from the notebook's folder, and leave a stray
    # docs/notebooks/.nox/ behind. Absolute paths mean the same folder for every process.
    tmp = Path(session.create_tmp()).resolve()
    env = {
        "MPLCONFIGDIR": str(tmp / "matplotlib"),
        "MPLBACKEND": "Agg",
        "IPYTHONDIR": str(tmp / "ipython"),
        "JUPYTER_CONFIG_DIR": str(tmp / "jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(tmp / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter" / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        # ipykernel's debugger otherwise prints a frozen-modules warning on every kernel start.
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for path in ("MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR"):
        Path(env[path]).mkdir(parents=True, exist_ok=True)
    return env


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite and the doctests of ``literate_tx`` (extra arguments go to pytest).

    The ``lab`` extra (Streamlit, Plotly; no torch) is installed so that the lab's pages are
    tested headless with Streamlit's ``AppTest`` here; the heavier ``hf`` and ``data`` extras
    have their own sessions, and their tests skip here.
    """
    session.install("-e", ".[test,lab]")
    _install_torch(session)
    session.run("pytest", *session.posargs, env=_quiet_home(session))


HF_TESTS = ["tests/test_hf.py", "tests/test_hf_transformers.py", "tests/test_tokenizers_gpt2.py",
            "tests/test_tokenizer_json.py", "literate_tx/hf.py", "literate_tx/tokenizers.py",
            "literate_tx/tokenizer_json.py"]


@nox.session
def hf(session: nox.Session) -> None:
    """Hugging Face interop against ``transformers`` itself (the ``hf`` extra), in float64."""
    _install_torch(session)  # first: transformers then finds the pinned CPU build
    session.install("-e", ".[test,hf]")
    session.run("pytest", *(session.posargs or HF_TESTS), env=_quiet_home(session))


DATA_TESTS = ["tests/test_corpus.py", "literate_tx/data/corpus.py"]


@nox.session
def data(session: nox.Session) -> None:
    """Corpora with Hugging Face ``datasets`` (the ``data`` extra): the token-file tests,
    including the dataset each test builds and saves itself (no download)."""
    _install_torch(session)  # first, so that nothing below can pull another torch
    session.install("-e", ".[test,data]")
    session.run("pytest", *(session.posargs or DATA_TESTS), env=_quiet_home(session))


def _vendor_mathjax(session: nox.Session) -> None:
    """Install MathJax 4 and its default font from npm and lay them out as one static folder.

    Layout: ``mathjax/`` holds the MathJax package (``tex-chtml.js`` and the components it loads),
    ``mathjax/fonts/mathjax-newcm-font/`` the font, which docs/conf.py points MathJax at through
    ``loader.paths.fonts = "[mathjax]/fonts"``.
    """
    target = MATHJAX_STATIC / "mathjax"
    stamp = MATHJAX_STATIC / "installed.json"
    if stamp.exists() and json.loads(stamp.read_text()) == MATHJAX_NPM and target.is_dir():
        session.log(f"MathJax already vendored in {target}")
        return
    if shutil.which("npm") is None:
        session.error("npm is required to vendor MathJax for offline math (apt-get install npm)")
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    session.run(
        "npm", "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
        "--prefix", str(NPM_PREFIX), *MATHJAX_NPM,
        external=True,
    )  # fmt: skip
    modules = NPM_PREFIX / "node_modules"
    shutil.rmtree(MATHJAX_STATIC, ignore_errors=True)
    # Node-only entry points are not needed in the browser.
    shutil.copytree(
        modules / "mathjax",
        target,
        ignore=shutil.ignore_patterns("node-main*", "require.mjs", "*.md", "package.json"),
    )
    font_src = modules / "@mathjax" / "mathjax-newcm-font"
    font_dst = target / "fonts" / "mathjax-newcm-font"
    font_dst.mkdir(parents=True)
    # Only the CommonHTML output is used (tex-chtml.js); the SVG and CJS/MJS builds are skipped.
    shutil.copy2(font_src / "chtml.js", font_dst / "chtml.js")
    shutil.copytree(font_src / "chtml", font_dst / "chtml")
    stamp.write_text(json.dumps(MATHJAX_NPM))


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML docs with every warning an error; executes notebooks and gallery scripts."""
    session.install("-e", ".[docs]")
    _install_torch(session)
    _vendor_mathjax(session)
    env = _quiet_home(session)
    env["LTX_DOCS_REQUIRE_LOCAL_MATHJAX"] = "1"
    # The examples use small matrices, for which BLAS threads cost more than they save; on a
    # busy 2-core machine they made the NumPy examples ~50x slower.
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html",
        *session.posargs,
        str(DOCS), str(DOCS_BUILD / "html"),
        env=env,
    )  # fmt: skip
    session.log(f"Docs: file://{DOCS_BUILD / 'html' / 'index.html'}")


@nox.session
def browser(session: nox.Session) -> None:
    """Open the site built by ``nox -s docs`` in headless Chromium and check what readers see.

    Serves ``docs/_build/html`` on 127.0.0.1 and runs ``tests/test_docs_site.py``: math typeset
    by MathJax on every page, every image loaded, no request leaving the site, every internal
    link and anchor resolving. Screenshots of the key pages go to ``docs/_build/screenshots``.
    Uses Debian's ``chromium`` (or ``LTX_CHROMIUM``) through Playwright; never downloads a
    browser.
    """
    site = DOCS_BUILD / "html"
    if not (site / "index.html").is_file():
        session.error(f"no site at {site}; build it first with `nox -s docs`")
    chromium = os.environ.get("LTX_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        session.error("the browser check needs Chromium: `apt-get install chromium` "
                      "(or set LTX_CHROMIUM to its path)")
    session.install("-e", ".[test]", "playwright")
    env = _quiet_home(session)
    env.update(LTX_DOCS_SITE=str(site), LTX_CHROMIUM=chromium)
    session.run(
        "pytest", "tests/test_docs_site.py", "-p", "no:cacheprovider", "-s",
        "-o", "addopts=-ra --strict-markers", *session.posargs,
        env=env,
    )  # fmt: skip


@nox.session
def lab(session: nox.Session) -> None:
    """Drive the lab (``literate-tx lab``) in headless Chromium: ``tests/test_lab_browser.py``.

    Starts the real Streamlit server on a free port of 127.0.0.1, trains a digits model for a
    few steps from the Train page, opens every page, checks that none shows an error and that
    no request leaves 127.0.0.1, and saves a screenshot of each page under
    ``docs/_build/lab-screenshots`` (the docs page shows the copies committed in
    ``docs/_static/lab``). Uses Debian's ``chromium`` (or ``LTX_CHROMIUM``); never downloads a
    browser.
    """
    chromium = os.environ.get("LTX_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        session.error("the lab check needs Chromium: `apt-get install chromium` "
                      "(or set LTX_CHROMIUM to its path)")
    session.install("-e", ".[test,lab]", "playwright")
    _install_torch(session)
    env = _quiet_home(session)
    env.update(LTX_CHROMIUM=chromium, LTX_LAB_SCREENSHOTS=str(DOCS_BUILD / "lab-screenshots"),
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    session.run(
        "pytest", "tests/test_lab_browser.py", "-p", "no:cacheprovider",
        "-o", "addopts=-ra --strict-markers", *session.posargs,
        env=env,
    )  # fmt: skip
    session.log(f"Screenshots: {DOCS_BUILD / 'lab-screenshots'}")


@nox.session
def lint(session: nox.Session) -> None:
    """Static checks with ruff (extra arguments go to ``ruff check``)."""
    session.install(RUFF_SPEC)
    session.run("ruff", "check", *(session.posargs or ["."]))


@nox.session
def bench(session: nox.Session) -> None:
    """Run ``python -m literate_tx.bench`` (extra arguments are passed through)."""
    session.install("-e", ".")
    _install_torch(session)
    session.run("python", "-m", "literate_tx.bench", *session.posargs, env=_quiet_home(session))
