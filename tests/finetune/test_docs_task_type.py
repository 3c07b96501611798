"""docs/extending.md's "A downstream task type" example registers, configures and measures."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import yaml

from jetfm_coffea.finetune import load_task_config
from jetfm_coffea.finetune.task_types import TASK_TYPES, Regression, task_type_for

PAGE = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def test_the_docs_task_type_example(monkeypatch, doc_blocks):
    blocks = doc_blocks("extending.md", "## A downstream task type")
    module = types.ModuleType("docs_task_type")  # a user's module
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        exec(compile(blocks["python"][0], str(PAGE), "exec"), module.__dict__)
        task = load_task_config(yaml.safe_load(blocks["yaml"][0]))
        kind = task_type_for(task)
        assert isinstance(kind, Regression) and type(kind).__name__ == "TailRegression"
        assert kind.columns() == ["pred_nuPt", "sigma_nuPt"]
        y = np.array([10.0, 20.0, 40.0, 80.0])
        outputs = np.stack([y * [1.1, 0.9, 1.6, 1.0], np.full(4, 5.0)], axis=1)
        metrics = kind.metrics(outputs, y)
        assert metrics["tail_fraction"] == 0.25  # only the 40 -> 64 event is off by > 50%
        assert "resolution" in metrics  # the built-in regression metrics are kept
    finally:
        TASK_TYPES.unregister("tail-regression")
