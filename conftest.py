"""Repository-level pytest configuration.

It lives at the repository root (not in ``tests/``) because ``collect_ignore_glob`` only applies
below the directory of the ``conftest.py`` that defines it, and the doctests are collected from
``literate_tx/``.
"""

import importlib.util
import os

# Plots in doctests and tests never open a window.
os.environ.setdefault("MPLBACKEND", "Agg")

collect_ignore_glob = [
    # Docs and build outputs are never test sources.
    "docs/*",
    "gallery/*",
    "build/*",
    # ``python -m literate_tx`` runs a demo at import time; it is not a doctest module.
    "literate_tx/__main__.py",
    "literate_tx/*/__main__.py",
    # The lab's Streamlit script runs the app when executed; it has no doctests.
    "literate_tx/lab/app.py",
]

if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("plotly") is None:
    # The lab's pages import Streamlit and Plotly (the ``lab`` extra); its logic does not.
    collect_ignore_glob.append("literate_tx/lab/pages.py")

if importlib.util.find_spec("torch") is None:
    # The PyTorch backend's doctests need torch; without it they are skipped, not failed.
    collect_ignore_glob.append("literate_tx/torch_backend/*")
