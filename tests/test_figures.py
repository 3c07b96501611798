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
