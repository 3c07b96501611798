"""The installed package: entry point, package data, importability."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import jetfm_coffea
import jetfm_coffea.processors
from jetfm_coffea._resources import opendata_dir, schemas_dir


def test_installed_package_is_under_test():
    """CI sets JETFM_REQUIRE_INSTALLED: the tests must exercise the wheel, not the checkout."""
    if not os.environ.get("JETFM_REQUIRE_INSTALLED"):
        pytest.skip("source-checkout run")
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(jetfm_coffea.__file__).resolve().is_relative_to(site)
    assert Path(jetfm_coffea.processors.__file__).resolve().is_relative_to(site)
    assert schemas_dir().resolve().is_relative_to(site)
    assert opendata_dir().resolve().is_relative_to(site)


def test_console_script_runs():
    exe = shutil.which("jetfm") or str(Path(sys.executable).with_name("jetfm"))
    if not Path(exe).exists():
        if os.environ.get("JETFM_REQUIRE_INSTALLED"):
            pytest.fail("jetfm console script missing from the installed package")
        cmd = [sys.executable, "-m", "jetfm_coffea", "--help"]
    else:
        cmd = [exe, "--help"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    assert "inspect" in out


def test_package_data_present():
    assert any(schemas_dir().glob("*/*.json"))


def test_wheel_installs_processors_inside_the_package():
    """The built wheel puts the repository's ``processors/`` at ``jetfm_coffea/processors``:
    nothing named ``processors`` lands at the top of site-packages, where it would clash
    with an analysis's own ``processors`` folder."""
    from importlib.metadata import files

    installed = [str(f) for f in files("jetfm-coffea") or []]
    if "jetfm_coffea/__init__.py" not in installed:  # an editable install links the checkout
        if os.environ.get("JETFM_REQUIRE_INSTALLED"):
            pytest.fail("jetfm-coffea is not installed from a wheel")
        pytest.skip("editable install: no wheel to inspect")
    top = {f.split("/")[0] for f in installed if "/" in f and not f.startswith("..")}
    assert not {t for t in top if t.split(".")[0] == "processors"}, sorted(top)
    assert top <= {"jetfm_coffea", f"jetfm_coffea-{jetfm_coffea.__version__}.dist-info"}
    shipped = {
        Path(f).name
        for f in installed
        if f.startswith("jetfm_coffea/processors/") and f.endswith(".py")
    }
    checkout = Path(__file__).resolve().parents[1] / "processors"
    assert shipped == {p.name for p in checkout.glob("*.py")}  # every module of the folder
    assert {"analysis.py", "shards.py", "tokenize.py"} <= shipped
