"""The library draws without touching matplotlib's backend or global style."""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib
import numpy as np

import jetfm_coffea
from jetfm_coffea.augment.check import plot_spectra

PACKAGE = Path(jetfm_coffea.__file__).parent


def test_plotting_leaves_backend_and_style_alone(tmp_path):
    backend = matplotlib.get_backend()
    before = dict(matplotlib.rcParams)
    rng = np.random.default_rng(1)
    m = rng.uniform(1, 100, 1000)
    png = plot_spectra(m, m * 1.001, tmp_path / "spectra.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend
    changed = [k for k, v in matplotlib.rcParams.items() if str(before.get(k)) != str(v)]
    assert changed == []


def test_no_module_switches_the_backend_or_global_style():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue  # the command line may choose a backend for its process
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = ast.unparse(node.func.value)
                if (owner, node.func.attr) in {("matplotlib", "use"), ("plt.style", "use")}:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_every_figure_is_drawn_in_the_cms_style():
    """A function that makes a figure (figures.subplots) is @styled or uses cms_style()."""
    unstyled = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "figures.py":
            continue
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            calls = {ast.unparse(n.func) for n in ast.walk(func) if isinstance(n, ast.Call)}
            if "subplots" not in calls:
                continue
            decorated = any(ast.unparse(d) == "styled" for d in func.decorator_list)
            if not decorated and "cms_style" not in calls:
                unstyled.append(f"{path.relative_to(PACKAGE)}:{func.lineno} {func.name}")
    assert unstyled == []
