"""Sphinx configuration of the jetfm-coffea documentation (Markdown pages, MyST-Parser).

Build with warnings as errors, as ``.ci/run`` does::

    sphinx-build -W -b html docs docs/_build/html

The API pages import the package: build from an environment where ``jetfm_coffea`` is
installed (or the checkout is on ``PYTHONPATH``).
"""

from __future__ import annotations

import jetfm_coffea

project = "jetfm-coffea"
author = "jetfm-coffea developers"
copyright = "jetfm-coffea developers, BSD-3-Clause"
release = jetfm_coffea.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples"]

# MyST: heading anchors for the pages' links to each other's sections; ``$...$`` is not
# parsed as math (the pages write physics in Unicode and backticks).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# autodoc: the public names (``__all__``) of each subpackage, in source order, with the
# signatures' type hints in the description.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"jetfm-coffea {release}"
