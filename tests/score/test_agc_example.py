"""docs/examples/agc_ttbar.py: the AGC tt̄ analysis with the score column, on the shipped
2015 (AGC input) and NanoAODv5 tt̄ files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from jetfm_coffea.cluster import Execution
from jetfm_coffea.jobs.execution import run_coffea
from jetfm_coffea.score import JetFMScorer

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "agc_ttbar.py"


@pytest.fixture(scope="module")
def agc():
    spec = importlib.util.spec_from_file_location("agc_ttbar", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fileset(ttbar2015, ttbar_v5):
    return {
        "ttbar_2015": {"files": {str(ttbar2015): "Events"}},
        "ttbar_v5": {"files": {str(ttbar_v5): "Events"}},
    }


def run(proc, fileset):
    out, _ = run_coffea(proc, fileset, Execution(executor="iterative", chunksize=400), status=False)
    return out


def test_agc_analysis_with_the_score_column(agc, fileset, tiny_run):
    alone = run(agc.TtbarScoreAnalysis(), fileset)
    scorer = JetFMScorer(tiny_run)
    with_column = run(agc.TtbarScoreAnalysis(scorer, signal="signal"), fileset)
    every_event = run(agc.TtbarScoreAnalysis(scorer, signal="signal", region_only=False), fileset)
    regions = with_column["regions"]
    assert regions == alone["regions"]
    assert regions["nominal"] > 50 and regions["pt_scale_up"] > regions["nominal"]
    for name in ("4j1b", "4j2b"):  # the analysis does not see the column
        np.testing.assert_array_equal(with_column[name].values(), alone[name].values())
        assert alone[name][{"variation": "pt_res_up"}].sum() > 0
    score = with_column["score"]
    for variation, n in regions.items():  # each variation's own 4j2b events, scored
        assert score[{"variation": variation}].sum() == n
    np.testing.assert_array_equal(score.values(), every_event["score"].values())
    nominal = score[{"variation": "nominal"}].values()
    for variation in agc.VARIATIONS:  # every variation moves the score distribution
        assert not np.array_equal(score[{"variation": variation}].values(), nominal)
