"""One executor vocabulary for every command that runs coffea; the old spellings are refused."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import jetfm_coffea.shards
from jetfm_coffea.cli import main
from jetfm_coffea.cluster import DEFAULT_CHUNKSIZE, EXECUTORS, Execution
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.jobs import shards as shard_jobs
from jetfm_coffea.shards import open_store

COFFEA_COMMANDS = ("build-shards", "inspect", "score")
SHARED = ("executor", "dask_mode", "scheduler", "workers", "chunksize")


def _params(name: str) -> dict[str, click.Parameter]:
    command = main.get_command(click.Context(main), name)
    return {p.name: p for p in command.params}


def test_every_coffea_command_has_the_same_execution_options():
    for name in COFFEA_COMMANDS:
        params = _params(name)
        assert set(SHARED) <= set(params), name
        assert params["chunksize"].default == DEFAULT_CHUNKSIZE == 100_000
        assert params["workers"].default == 2
        assert params["dask_mode"].is_flag


def test_help_shows_the_vocabulary_not_the_old_spellings():
    for name in COFFEA_COMMANDS:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "--dask-mode" in result.output and "[iterative|futures|dask]" in result.output
        assert "--mode " not in result.output and "|dask-mode" not in result.output


def test_unknown_executor_is_refused_with_the_choices(ttbar2015):
    result = CliRunner().invoke(main, ["inspect", str(ttbar2015), "--executor", "spark"])
    assert result.exit_code == 2
    assert "'spark' is not one of 'iterative', 'futures', 'dask'" in result.output


def _build(store, fileset, *flags):
    args = ["build-shards", str(fileset), "--out", str(store), "--workers", "1", "--json"]
    result = CliRunner().invoke(main, [*args, "--chunksize", "100", *flags])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_build_shards_dask_mode_equals_the_runner(ttbar2015, tmp_path):
    dask = _build(tmp_path / "dask", ttbar2015, "--dask-mode")
    virtual = _build(tmp_path / "virtual", ttbar2015, "--executor", "iterative")
    assert dask["events_written"] == virtual["events_written"] == 200
    assert dask["shards_written"] == 2

    def events(name):
        return sorted(int(e) for s in open_store(tmp_path / name) for e in s.read("event"))

    assert events("dask") == events("virtual")


def test_the_old_spellings_are_gone(ttbar2015, tmp_path):
    """0.1.0 keeps one vocabulary: the old spellings are refused, not translated."""
    assert EXECUTORS == ("iterative", "futures", "dask")
    for old in (["--executor", "dask-mode"], ["--mode", "dask"]):
        result = CliRunner().invoke(main, ["inspect", str(ttbar2015), *old])
        assert result.exit_code == 2, result.output
    with pytest.raises(ConfigError, match="choose from iterative, futures, dask"):
        shard_jobs.build_store(ttbar2015, tmp_path / "s", execution=Execution(executor="dask-mode"))
    assert not hasattr(jetfm_coffea.shards, "build_store")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("jetfm_coffea.execution")


def test_help_and_the_vocabulary_load_neither_coffea_nor_torch():
    # the CLI reads the executor vocabulary without importing the jobs it describes
    check = (
        "import sys; from click.testing import CliRunner; from jetfm_coffea.cli import main; "
        "r = [CliRunner().invoke(main, a).exit_code for a in "
        "(['--help'], ['score', '--help'], ['inspect', '--help'], ['build-shards', '--help'])]; "
        "heavy = sorted({'coffea', 'torch'} & set(sys.modules)); print(r, heavy); "
        "sys.exit(r != [0, 0, 0, 0] or bool(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
