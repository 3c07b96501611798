"""Sphinx configuration of the jetfm-coffea documentation (Markdown pages, MyST-Parser).

Build with warnings as errors, as ``.ci/run`` does::

    sphinx-build -W -b html docs docs/_build/html

The API pages import the package: build from an environment where ``jetfm_coffea`` is
installed (or the checkout is on ``PYTHONPATH``).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective

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

# MyST: heading anchors (h1-h3, GitHub's slugs) for the pages' links to each other's sections.
myst_heading_anchors = 3

# autodoc: the public names (``__all__``) of each subpackage, through the ``public-api``
# directive below; a class with its documented members, the signatures' type hints in the
# description.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"jetfm-coffea {release}"


#: The modules with an API page: docs/api/<module without "jetfm_coffea.">.md.
API_MODULES = sorted(
    f"jetfm_coffea.{page.stem}"
    for page in (Path(__file__).parent / "api").glob("*.md")
    if page.stem != "index"
)


def _home(module: str, name: str, obj: object) -> str:
    """The API module whose page documents ``obj``: the most specific API module that
    holds its definition and exports it (a class re-exported elsewhere is linked there)."""
    defined_in = getattr(obj, "__module__", None) or module
    homes = [
        m
        for m in API_MODULES
        if (defined_in == m or defined_in.startswith(m + "."))
        and name in getattr(importlib.import_module(m), "__all__", ())
    ]
    return max(homes, key=len) if homes else module


class PublicAPI(SphinxDirective):
    """``public-api MODULE``: the module's docstring, then every name of its ``__all__``
    (classes with their members, functions, data with its value), so that a page never
    drifts from the public API that tests/test_public_api.py pins."""

    required_arguments = 1

    def run(self):
        name = self.arguments[0]
        module = importlib.import_module(name)
        lines = [f".. automodule:: {name}", "   :no-members:", ""]
        for attr in module.__all__:
            obj = getattr(module, attr)
            home = _home(name, attr, obj)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                if home != name:
                    lines += [f"``{attr}``: documented as :py:obj:`{home}.{attr}`.", ""]
                    continue
                kind = "autoclass" if inspect.isclass(obj) else "autofunction"
                lines += [f".. {kind}:: {name}.{attr}", ""]
            else:
                lines += _data(name, attr, obj)
        # the page is Markdown: the reST above goes through MyST's eval-rst directive
        return self.parse_text_to_nodes("\n".join(["```{eval-rst}", *lines, "```"]))


def _data(module: str, name: str, obj: object) -> list[str]:
    """A ``py:data`` entry: the value when it is short, the ``#:`` comment of the module
    that assigns it (the package re-exports it), else the value's type."""
    value = repr(obj)
    lines = [f".. py:data:: {name}"]  # in the automodule's module
    lines += [f"   :value: {value}"] if len(value) <= 80 else [f"   :type: {type(obj).__name__}"]
    doc = _doc_comment(module, name, obj)
    return [*lines, "", *(f"   {line}" for line in doc), ""]


def _doc_comment(module: str, name: str, obj: object) -> list[str]:
    """The ``#:`` comment lines above the assignment of ``name`` in ``module`` or in the
    submodule it re-exports ``obj`` from (empty when none)."""
    for mod_name, mod in sorted(sys.modules.items()):
        if not (mod_name == module or mod_name.startswith(module + ".")):
            continue
        if getattr(mod, name, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(mod_name).find_attr_docs()
        except PycodeError:
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return []


def setup(app: Sphinx) -> dict[str, bool]:
    """Register the ``public-api`` directive."""
    app.add_directive("public-api", PublicAPI)
    return {"parallel_read_safe": True}
