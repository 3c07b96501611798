"""Fixtures of the generator's tests."""

from __future__ import annotations

import pytest

from jetfm_coffea.generate import run as gen_run


@pytest.fixture
def no_pythia(monkeypatch):
    """Fail loudly if generation starts."""

    def boom(*args, **kwargs):
        raise AssertionError("generation started despite bad input")

    monkeypatch.setattr(gen_run, "make_pythia", boom)
    monkeypatch.setattr(gen_run, "_run_chunk", boom)
