"""Sphinx configuration of the sasview-grf-plugin documentation.

Build (warnings are errors):

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys
from datetime import date

# Document the checkout this file lives in, installed or not.
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import sasview_grf_plugin  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "sasview-grf-plugin"
author = "sasview-grf-plugin developers"
copyright = f"{date.today().year}, {author}"
release = sasview_grf_plugin.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
nitpicky = False
# Nothing is suppressed: every warning is ours to fix.
suppress_warnings: list[str] = []

# -- MyST ----------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- autodoc / napoleon (numpy-style docstrings) -------------------------------
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_type_aliases = {"SeedLike": "SeedLike"}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

# -- HTML ----------------------------------------------------------------------
html_theme = "furo"
html_title = f"sasview-grf-plugin {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
