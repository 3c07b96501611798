"""A task type with a new head is one file: registered once, it goes through fine-tuning,
scoring (eager, virtual, dask), ONNX export, the Triton configuration and the analysis
processor's columns without any other change to the package.

The plugin (the first section) is what a user writes: a multi-label head (one independent
sigmoid probability per class, columns ``prob_<class>``) and the task type that trains it.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from jetfm_coffea.cluster import Execution
from jetfm_coffea.finetune import finetune, load_task_config, prepare_finetune
from jetfm_coffea.finetune.task_types import TASK_TYPES, register_task_type
from jetfm_coffea.finetune.task_types.classification import Classification
from jetfm_coffea.finetune.task_types.registry import TaskLoss
from jetfm_coffea.jobs.execution import run_coffea
from jetfm_coffea.model import HEADS, ModelConfig, ScoredOutputs, register_head
from jetfm_coffea.processors.analysis import ScoreAnalysisProcessor
from jetfm_coffea.score import JetFMScorer
from jetfm_coffea.score.export import export_model, read_manifest
from jetfm_coffea.tokens import build_tokens
from jetfm_coffea.train import load_run
from tests.score.conftest import open_events

from .conftest import tiny_task

# -- the plugin: one file ------------------------------------------------------------------


class MultiLabelHead(nn.Module):
    """One logit per class on the pooled embedding (LayerNorm + linear)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.dim)
        self.linear = nn.Linear(config.dim, config.n_classes)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(embedding))


MULTILABEL = ScoredOutputs(
    torch.sigmoid,
    "independent per-class probabilities (sigmoid), in class_names order",
    "multi-label tagger",
    column_prefix="prob_",
)
register_head("test-multilabel", MultiLabelHead, MULTILABEL)


class MultiLabelLoss(TaskLoss):
    """Binary cross-entropy of every class's logit against the one-hot label."""

    def loss(self, outputs: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        target = F.one_hot(y, outputs.shape[1]).float()
        bce = F.binary_cross_entropy_with_logits(outputs.float(), target, reduction="none")
        return (bce.sum(1) * w).sum() / w.sum().clamp_min(1e-12)

    def val_record(self, outputs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {"val_acc": float((outputs.argmax(1) == y).float().mean())}


@register_task_type
class MultiLabel(Classification):
    """Classification scored with independent per-class probabilities."""

    name = "test-multilabel"
    head = "test-multilabel"
    run_kind = "multilabel"

    def task_loss(self, y_train: np.ndarray, w_train: np.ndarray) -> TaskLoss:
        return MultiLabelLoss()

    def columns(self) -> list[str]:
        return list(MULTILABEL.columns(tuple(self.task.class_names)))


# -- through every stage -------------------------------------------------------------------

COLUMNS = ["prob_collisions", "prob_ttbar"]


@pytest.fixture(scope="module")
def plugin_run(labelled, pretrained_run, tmp_path_factory):
    task = load_task_config({**tiny_task(), "type": "test-multilabel"})
    setup = prepare_finetune(task, pretrained_run, labelled)
    out = tmp_path_factory.mktemp("plugin") / "run"
    res = finetune(setup, out, mode="finetune", labels="all", seed=0)
    return out, res


def _direct(run_dir, events):
    """The run's head through a sigmoid, on the events' tokens (the one token path)."""
    model, configs = load_run(run_dir)
    shard = build_tokens(events, configs.tokens)
    x, m = torch.as_tensor(shard.tokens), torch.as_tensor(shard.mask)
    with torch.no_grad():
        return torch.sigmoid(model.heads["test-multilabel"](model.encoder(x, m).embedding))


def test_the_plugin_is_registered_where_every_stage_looks():
    assert HEADS["test-multilabel"].scored is MULTILABEL
    assert TASK_TYPES["test-multilabel"] is MultiLabel


def test_fine_tuning_trains_the_new_head(plugin_run):
    run_dir, res = plugin_run
    model, configs = load_run(run_dir)
    assert set(model.heads) == {"test-multilabel"} and configs.info["outputs"] == COLUMNS
    z = np.load(run_dir / "test_scores.npz")
    probs = z["probs"]
    # independent probabilities: a sigmoid per class, not a softmax (rows need not sum to 1)
    assert probs.shape[1] == 2 and ((probs > 0) & (probs < 1)).all()
    assert not np.allclose(probs.sum(1), 1.0, atol=1e-3)
    # the inherited metrics are those of the stored sigmoid outputs (normalised per event
    # as classification_metrics does; signal: ttbar)
    ratio = probs[:, 1] / probs.sum(1)
    assert res.test_metrics["auc"] == pytest.approx(roc_auc_score(z["target"], ratio))
    assert res.steps > 0


def test_scoring_eager_virtual_and_dask(plugin_run, ttbar2015):
    run_dir, _ = plugin_run
    scorer = JetFMScorer(run_dir, device="cpu")
    assert scorer.fields == [*COLUMNS, "n_tokens"]
    events = open_events(ttbar2015, "eager")
    eager = scorer(events)
    virtual = scorer(open_events(ttbar2015, "virtual"))
    lazy = scorer(open_events(ttbar2015, "dask")).compute()
    want = _direct(run_dir, events).numpy()
    for column, k in zip(COLUMNS, range(2), strict=True):
        np.testing.assert_allclose(ak.to_numpy(eager[column]), want[:, k], rtol=1e-5, atol=1e-6)
        for other in (virtual, lazy):
            np.testing.assert_allclose(
                ak.to_numpy(other[column]), ak.to_numpy(eager[column]), rtol=1e-6, atol=1e-7
            )
    assert not np.allclose(ak.to_numpy(eager.prob_collisions + eager.prob_ttbar), 1.0, atol=1e-3)


def test_onnx_export_and_triton_configuration(plugin_run, ttbar2015, tmp_path):
    run_dir, _ = plugin_run
    events = open_events(ttbar2015, "eager")
    torch_scores = JetFMScorer(run_dir, device="cpu")(events)
    onnx_scores = JetFMScorer(run_dir, device="cpu", backend="onnxruntime")(events)
    for column in COLUMNS:
        np.testing.assert_allclose(
            ak.to_numpy(onnx_scores[column]), ak.to_numpy(torch_scores[column]), atol=1e-5
        )
    repo = export_model(run_dir, tmp_path / "triton", formats=("triton",))
    manifest = read_manifest(repo)
    assert manifest["outputs"][0]["description"] == MULTILABEL.description
    config = next(repo.rglob("config.pbtxt")).read_text()
    assert 'name: "scores" data_type: TYPE_FP32 dims: [ 2 ]' in config
    card = (repo / "MODEL_CARD.md").read_text()
    assert "jetfm event multi-label tagger for NVIDIA Triton" in card
    assert MULTILABEL.description in card


def test_the_analysis_processor_cuts_on_the_chosen_class(plugin_run, ttbar2015):
    run_dir, _ = plugin_run
    proc = ScoreAnalysisProcessor(run_dir, cut=0.5, signal="ttbar", return_scores=True)
    assert proc.columns == tuple(COLUMNS) and proc.score_field == "prob_ttbar"
    assert proc.width_field is None
    fileset = {"ttbar": {"files": {str(ttbar2015): "Events"}}}
    out, _ = run_coffea(proc, fileset, Execution(executor="iterative"), status=False)
    res = out["ttbar"]
    scores = res["scores"]
    assert set(scores.fields) >= {*COLUMNS, "event"}
    assert res["cutflow"]["pass"] == int((scores.prob_ttbar.to_numpy() > 0.5).sum())
    assert res["score"].sum().value == len(scores) and "sigma" not in res
