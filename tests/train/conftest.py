"""Real CMS event tokens for training tests, and a single-threaded torch (small batches)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def real_tokens(singlemu, event_tokens):
    """EventTokens of the first 3000 real 2012 SingleMu events."""
    return event_tokens(singlemu, 3000)
