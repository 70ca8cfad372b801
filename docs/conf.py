"""Sphinx configuration of EEGPT's documentation: ``sphinx-build -W -b html docs docs/_build/html``."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "EEGPT"
author = "EEGPT developers"
copyright = "2026, EEGPT developers"

extensions = [
    "myst_parser",            # the guide pages are Markdown
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",               # the docstrings are numpy-style
    "sphinxarg.ext",          # the CLI reference, generated from eegpt.cli.build_parser()
    "eegpt_results",          # the results tables, generated from docs/results/*.json
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "results/*.md"]
myst_heading_anchors = 3      # links into a page's sections by their GitHub-style slugs
myst_enable_extensions = ["colon_fence"]
suppress_warnings = ["myst.header"]  # pages quote commands' Markdown output (EMR) with its own levels

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": False,
                           # scikit-learn's generated metadata-routing methods cite its own glossary
                           "exclude-members": "set_fit_request,set_transform_request,set_predict_request,"
                                              "set_score_request,set_output"}
autodoc_typehints = "none"    # the docstrings name the types; the signatures stay readable
numpydoc_show_class_members = False
numpydoc_validation_checks = set()

html_theme = "pydata_sphinx_theme"
html_title = "EEGPT"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}
html_static_path = []
