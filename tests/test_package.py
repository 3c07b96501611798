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
from jetfm_coffea._resources import opendata_dir, schemas_dir


def test_installed_package_is_under_test():
    """CI sets JETFM_REQUIRE_INSTALLED: the tests must exercise the wheel, not the checkout."""
    if not os.environ.get("JETFM_REQUIRE_INSTALLED"):
        pytest.skip("source-checkout run")
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(jetfm_coffea.__file__).resolve().is_relative_to(site)
    import processors

    assert Path(processors.__file__).resolve().is_relative_to(site)
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
