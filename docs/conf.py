"""Sphinx configuration for literate_tx.

Build with ``nox -s docs`` (offline: MathJax is vendored from npm by the nox session,
intersphinx uses only the inventory committed in ``_intersphinx/``).
"""

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# docs/_ext: the course's folded solutions, equation-to-code lists, equations shown by label.
sys.path.insert(0, str(HERE / "_ext"))

# -- Project -------------------------------------------------------------------------------------
project = "literate_tx"
author = "literate_tx contributors"
copyright = "literate_tx contributors"

try:
    from importlib.metadata import version as _version

    release = _version("literate-tx")
except Exception:  # the package is not installed: build from the source tree anyway
    release = "0.1.0"
version = release

# -- Extensions ----------------------------------------------------------------------------------
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
    "course_ext",
    "matplotlib.sphinxext.plot_directive",
]

exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # sphinx-gallery writes notebooks and scripts next to its pages; they are downloads, not
    # sources (myst-nb would otherwise claim the .ipynb files).
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/**/*.ipynb",
    "auto_examples/**/*.py",
    "gen_modules/**",
    # The course's Python modules, included into its pages, are not pages.
    "course/**/*.py",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# -- MyST / myst-nb ------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
# Notebooks execute at every build: no stale committed outputs.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_show_tb = True
nb_merge_streams = True
# Markdown outputs (e.g. layout tables) may contain GitHub-style tables.
nb_render_markdown_format = "gfm"

# -- autodoc + napoleon (numpydoc style) ---------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Show defaults as written in the source (``dtype=np.float64``), not their repr
# (``dtype=<class 'numpy.float64'>``).
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# "Attributes" sections become :ivar: fields, so dataclass fields that autodoc also documents
# are not described twice.
napoleon_use_ivar = True
napoleon_preprocess_types = False

# -- intersphinx: local inventories only ---------------------------------------------------------
# The inventory comes from Debian's python3.11-doc package
# (/usr/share/doc/python3.11/html/objects.inv); no remote fetch is ever attempted.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", str(HERE / "_intersphinx" / "python.inv")),
}
intersphinx_timeout = 5

# -- sphinx-gallery ------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["../gallery"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_.*\.py$",
    "ignore_pattern": r"(^|/)_",
    "abort_on_example_error": True,
    # The computation-times page loads scripts from CDNs.
    "write_computation_times": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "doc_module": ("literate_tx",),
    "backreferences_dir": "gen_modules/backreferences",
    "matplotlib_animations": False,
    # Learning order, not alphabetical (docs/_ext/course_ext.py); the benchmark comes last.
    "within_subsection_order": "course_ext.GalleryOrder",
}

# -- matplotlib's plot directive: one figure per derivation chapter, drawn at build time ---------
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"font.size": 9}

# -- Math with no network ------------------------------------------------------------------------
# ``nox -s docs`` installs MathJax 4 from npm into _build/.mathjax/mathjax (which becomes
# _static/mathjax in the output). Fonts are loaded from the same folder, not the CDN.
_MATHJAX_STATIC = HERE / "_build" / ".mathjax"
html_static_path = ["_static"]
if (_MATHJAX_STATIC / "mathjax" / "tex-chtml.js").is_file():
    html_static_path.append(str(_MATHJAX_STATIC))
    mathjax_path = "mathjax/tex-chtml.js"
    # mathtools provides e.g. psmallmatrix (used in the RoPE derivation); it is part of the
    # vendored package, loaded from the same folder.
    mathjax4_config = {
        "loader": {"paths": {"fonts": "[mathjax]/fonts"}, "load": ["[tex]/mathtools"]},
        "tex": {"packages": {"[+]": ["mathtools"]}},
    }
elif os.environ.get("LTX_DOCS_REQUIRE_LOCAL_MATHJAX"):
    raise RuntimeError(
        f"local MathJax not found at {_MATHJAX_STATIC / 'mathjax'}; "
        "build the docs with `nox -s docs`, which installs it from npm"
    )
else:
    print(
        "literate_tx docs: local MathJax not found; math will load MathJax from its CDN. "
        "Use `nox -s docs` for pages that render offline."
    )

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"literate_tx {release}"
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = True


def _skip_namedtuple_aliases(app, what, name, obj, skip, options):
    """Hide the "Alias for field number N" members of NamedTuples: the class docstring's
    Attributes section already documents each field."""
    doc = getattr(obj, "__doc__", None) or ""
    if what == "class" and doc.startswith("Alias for field number"):
        return True
    return None


# The backends each define a class of the same name (e.g. ``KVCache`` in every
# ``attention`` module). A bare name in a docstring's type field (``past : KVCache``) is
# ambiguous once all three backends are documented; point it at the documented object's own
# backend.
_BACKEND_TYPES = {"KVCache": "attention", "KVStorage": "attention"}
_BACKEND = re.compile(r"^(literate_tx\.(?:numpy|python|torch)_backend)\.")


def _qualify_backend_types(app, what, name, obj, options, lines):
    backend = _BACKEND.match(name or "")
    if not backend:
        return
    for i, line in enumerate(lines):
        if line.lstrip().startswith((":type ", ":rtype:")):
            for short, module in _BACKEND_TYPES.items():
                full = f"~{backend.group(1)}.{module}.{short}"
                lines[i] = re.sub(rf"(?<![\w.~]){short}\b", full, lines[i])


def setup(app):
    app.connect("autodoc-skip-member", _skip_namedtuple_aliases)
    # After napoleon (priority 500) has turned "Parameters" sections into :type: fields.
    app.connect("autodoc-process-docstring", _qualify_backend_types, priority=600)
