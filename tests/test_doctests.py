"""The ``>>>`` examples in the package's docstrings run, and pass, as doctests.

Every module of ``jetfm_coffea`` (its processors included) is imported (the installed package
when the tests run against a wheel) and :mod:`doctest` runs the examples it finds; an
example that only illustrates (needs a cluster, a trained model) says
``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import jetfm_coffea


def _modules() -> list[str]:
    names = []
    names.append(jetfm_coffea.__name__)
    names += [m.name for m in pkgutil.walk_packages(jetfm_coffea.__path__, "jetfm_coffea.")]
    return sorted(set(names) - {"jetfm_coffea.__main__"})


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    return [t for t in tests if t.examples and t.filename and module.__file__ == t.filename]


MODULES = [name for name in _modules() if _examples(name)]


def test_the_package_has_examples():
    assert {"jetfm_coffea.atomic", "jetfm_coffea.shards.format"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    for test in _examples(name):
        runner.run(test, out=failures.append)
    assert not failures, "".join(failures)
