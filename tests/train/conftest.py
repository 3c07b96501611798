"""Real CMS event tokens for training tests, and a single-threaded torch (small batches)."""

from __future__ import annotations

import warnings

import pytest

from jetfm_coffea.tokens import TokenConfig, build_tokens


@pytest.fixture(scope="session")
def real_tokens(singlemu):
    """EventTokens of the first 3000 real 2012 SingleMu events."""
    from coffea.nanoevents import NanoEventsFactory

    from jetfm_coffea.nanoevents import JetFMNanoAODSchema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        events = NanoEventsFactory.from_root(
            {str(singlemu): "Events"}, schemaclass=JetFMNanoAODSchema, mode="virtual"
        ).events()[:3000]
        return build_tokens(events, TokenConfig())
