"""The documentation: a short README, links that resolve, a site that builds without warnings.

The site build needs the ``docs`` dependency group (sphinx, myst-parser, furo) and is
skipped without it: the README's test command installs the ``test`` group only, and
``.ci/run`` builds the site itself, with warnings as errors, right after the tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_public_api import PUBLIC_API

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 350

pytestmark = pytest.mark.skipif(
    not (DOCS / "conf.py").is_file(), reason="docs/ is not part of an installed package"
)


def _markdown_files() -> list[Path]:
    return [README, *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]


def _relative_links(text: str) -> list[str]:
    """The targets of the Markdown links and images of ``text`` that are repository paths."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_the_readme_is_short_and_points_to_the_docs():
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines (at most 350)"
    headings = [line for line in lines if line.startswith("## ")]
    for section in ("## Two commands", "## Quick tour", "## Label efficiency", "## Documentation"):
        assert any(h.startswith(section) for h in headings), f"README lacks {section!r}"
    assert "sphinx-build -W -b html docs docs/_build/html" in text


def test_every_relative_link_of_the_readme_and_the_docs_resolves():
    broken = []
    for path in _markdown_files():
        for target in _relative_links(path.read_text()):
            file = target.split("#", 1)[0]
            if not (path.parent / file).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, f"links to files that do not exist: {broken}"


def test_every_docs_page_is_linked_from_the_readme():
    """The README's "Documentation" section lists the pages (the components through
    their index page, the API through its index)."""
    readme = README.read_text()
    section = readme[readme.index("\n## Documentation") :]
    linked = {(ROOT / t.split("#", 1)[0]).resolve() for t in _relative_links(section)}
    pages = {p.resolve() for p in _markdown_files()[1:] if p.parent.name != "api"}
    pages.add((DOCS / "api" / "index.md").resolve())
    pages.discard((DOCS / "index.md").resolve())
    missing = sorted(str(p.relative_to(ROOT)) for p in pages - linked)
    assert not missing, f"docs pages the README does not list: {missing}"


def test_every_public_subpackage_has_an_api_page():
    """Each subpackage whose ``__all__`` is pinned (tests/test_public_api.py) and not
    empty has its page ``docs/api/<name>.md``, holding the one directive that lists it."""
    for module, names in PUBLIC_API.items():
        if module == "jetfm_coffea" or not names:
            continue  # the root exports __version__ only; jobs and processors nothing
        page = DOCS / "api" / f"{module.removeprefix('jetfm_coffea.')}.md"
        assert page.is_file(), f"{module} has no API page {page.relative_to(ROOT)}"
        assert f"```{{public-api}} {module}\n```" in page.read_text(), page


@pytest.mark.slow
@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("sphinx", "myst_parser", "furo")),
    reason="the docs dependency group (sphinx, myst-parser, furo) is not installed",
)
def test_the_site_builds_with_warnings_as_errors(tmp_path):
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           str(DOCS), str(tmp_path / "html")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = tmp_path / "html"
    for page in ("index", "label-efficiency", "benchmarks", "components/tokens"):
        assert (html / f"{page}.html").is_file(), page
    # every public name is on its module's API page, or linked to the page that has it
    undocumented = []
    for page in sorted((DOCS / "api").glob("*.md")):
        if page.stem == "index":
            continue
        module = importlib.import_module(f"jetfm_coffea.{page.stem}")
        text = (html / "api" / f"{page.stem}.html").read_text()
        for name in module.__all__:
            here = f'id="{module.__name__}.{name}"' in text
            linked = re.search(rf'documented as <a [^>]*href="[^"]*#[\w.]+\.{name}"', text)
            if not (here or linked):
                undocumented.append(f"{module.__name__}.{name}")
    assert not undocumented, f"public names missing from the API pages: {undocumented}"
