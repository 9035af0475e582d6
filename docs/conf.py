"""Sphinx configuration of the predcode documentation.

Build (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

# Document the checkout this file lives in, installed or not.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import predcode  # noqa: E402

# -- project ------------------------------------------------------------------
project = "predcode"
author = "predcode developers"
copyright = "predcode developers"
version = predcode.__version__
release = predcode.__version__

# -- general ------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    # MathJax 3 shipped with the docs (_static/mathjax), not loaded from a CDN:
    # the equations render offline.
    "sphinx-mathjax-offline",
    "numpydoc",
]
# No intersphinx: the documentation builds offline.

root_doc = "index"
# docs/spm/*.rst are parts included by spm_users.rst, not pages of their own.
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "spm/*"]
templates_path: list[str] = []
pygments_style = "sphinx"

# -- autodoc / numpydoc ---------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_default_options: dict[str, object] = {}

numpydoc_show_class_members = False  # no per-member stub tables (avoids stub warnings)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- HTML -----------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"predcode {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Predictive-coding neuroscience on numpy, numba and CuPy",
    "fixed_sidebar": True,
}
