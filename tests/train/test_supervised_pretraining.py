"""Supervised pretraining terms (issue 26): process classification and truth regression,
registered like the self-supervised ones, masked on unlabelled events; the ``ssl``,
``supervised`` and ``hybrid`` modes on real generated files and real 2012 collisions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jetfm_coffea.errors import ConfigError, TrainingError
from jetfm_coffea.finetune.data import load_labelled
from jetfm_coffea.generate import generate
from jetfm_coffea.tokens.config import TokenConfig
from jetfm_coffea.train.data import TensorEventDataset
from jetfm_coffea.train.loop import pretrain
from jetfm_coffea.train.objective_modes import (
    needed_values,
    objective_mode,
    supervised_sections,
)
from jetfm_coffea.train.process_objective import ProcessParams, class_index
from jetfm_coffea.train.registry import OBJECTIVES, Encoded, target_key
from jetfm_coffea.train.truth_objective import TruthParams

TINY = {"size": "custom", "overrides": {"dim": 16, "heads": 2, "layers": 1, "pair_hidden": 8,
                                        "proj_dim": 8}}  # fmt: skip


@pytest.fixture(scope="module")
def pool(tmp_path_factory, singlemu):
    """60 tt̄ and 60 W+jets generated events (labels 0 and 1, with their GenTarget_*
    values) and 60 real 2012 SingleMu events (label -1, no truth)."""
    out = tmp_path_factory.mktemp("sup_pool")
    spec = {"data": {"files": {str(singlemu): "Events"}, "metadata": {"label": -1}}}
    for process, label in (("ttbar", 0), ("wjets", 1)):
        res = generate(process, 60, sqrts=13000, seed=4, out=out / process)
        spec[process] = {"files": [str(f) for f in res.files], "metadata": {"label": label}}
    path = out / "fileset.json"
    path.write_text(json.dumps(spec))
    return load_labelled(fileset=path, token_config=TokenConfig(), max_events_per_dataset=60)


def test_class_index_maps_labels_and_splits_tt_by_flavour():
    params = ProcessParams(weight=1.0, labels=[0, 1, 6], tt_flavour=True)
    label = torch.tensor([0, 0, 0, 1, 6, 3, -1])
    hf = torch.tensor([0.0, 1.0, 2.0, float("nan"), float("nan"), float("nan"), float("nan")])
    assert class_index(label, params, hf).tolist() == [0, 3, 4, 1, 2, -1, -1]
    assert params.n_classes() == 5
    plain = ProcessParams(weight=1.0, labels=[6, 0])
    assert class_index(label, plain).tolist() == [1, 1, 1, -1, 0, -1, -1]
    with pytest.raises(TrainingError, match="needs the truth label GenTarget_ttHF"):
        class_index(label, params, None)


def test_unlabelled_events_contribute_nothing_to_the_supervised_terms():
    torch.manual_seed(0)
    head = {"classifier": torch.nn.Linear(4, 2), "truth": torch.nn.Linear(4, 1)}
    pooled = torch.randn(6, 4, requires_grad=True)
    batch = {"tokens": torch.zeros(6, 1, 9), "label": torch.full((6,), -1),
             target_key("GenTarget_nuPt"): torch.full((6,), float("nan"))}  # fmt: skip
    model = torch.nn.Module()
    model.heads = torch.nn.ModuleDict(head)
    enc = Encoded(batch=batch, model=model, pooled=pooled)
    proc = ProcessParams(weight=1.0, labels=[0, 1])
    nu = "GenTarget_nuPt"
    truth = TruthParams(weight=1.0, targets={nu: 1.0}, center={nu: 40.0}, scale={nu: 20.0})
    for name, params in (("process", proc), ("truth", truth)):
        term, parts = OBJECTIVES[name].loss(enc, params)
        term.backward()
        assert term.item() == 0.0 and all(v.item() == 0.0 for v in parts.values()), name
    assert pooled.grad is not None and not pooled.grad.any()  # no gradient from them either
    batch["label"] = torch.tensor([0, 1, -1, -1, -1, -1])
    batch[target_key("GenTarget_nuPt")] = torch.tensor([50.0] + [float("nan")] * 5)
    assert OBJECTIVES["process"].loss(enc, proc)[0].item() > 0
    assert OBJECTIVES["truth"].loss(enc, truth)[0].item() > 0


def test_supervised_sections_from_a_pool(pool):
    sections, model = supervised_sections(pool.label, pool.values)
    assert sections["process"]["labels"] == [0, 1]
    assert sections["process"]["tt_flavour"] is True  # tt-bar with its GenTarget_ttHF
    assert model == {"n_classes": 4, "n_truth": len(sections["truth"]["targets"])}
    nu = pool.values["GenTarget_nuPt"][pool.label >= 0]
    assert sections["truth"]["center"]["GenTarget_nuPt"] == pytest.approx(np.nanmedian(nu))
    excluded, _ = supervised_sections(pool.label, pool.values, exclude=[0])
    assert excluded["process"]["labels"] == [1] and not excluded["process"]["tt_flavour"]
    with pytest.raises(ConfigError, match="need labelled events"):
        supervised_sections(np.full(5, -1), pool.values)
    assert "GenTarget_mbb" not in sections["truth"]["targets"]  # no Z/H -> bb in this pool
    for name in ("GenTarget_nope", "GenTarget_mbb"):
        with pytest.raises(ConfigError, match=rf"truth targets \['{name}'\] are absent"):
            supervised_sections(pool.label, pool.values, targets={name: 1.0})


@pytest.mark.parametrize("mode", ["supervised", "hybrid"])
def test_pretraining_in_each_mode_logs_every_term(pool, mode, tmp_path):
    sections, model = supervised_sections(pool.label, pool.values)
    cfg = {"model": {**TINY, "overrides": {**TINY["overrides"], **model}},
           "objective": objective_mode(mode, sections),
           "train": {"steps": 3, "batch_size": 60, "progress": False, "log_every": 1,
                     "device": "cpu"}}  # fmt: skip
    names = needed_values(sections)
    assert "GenTarget_ttHF" in names
    source = TensorEventDataset(
        pool.tokens, pool.mask, batch_size=60, token_config=pool.token_config, run=pool.run,
        luminosityBlock=pool.luminosityBlock, event=pool.event, label=pool.label,
        objects=pool.objects, targets={n: pool.values[n] for n in names},
    )  # fmt: skip
    pretrain(cfg, source, tmp_path, keep_model=False)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    logged = set().union(*(r.keys() for r in rows))
    assert {"process", "truth_nuPt", "truth_hadTopPt", "truth_nHardB"} <= logged
    assert ("ntxent" in logged) == (mode == "hybrid")
    assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r)
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "process classification" in card and "truth regression" in card
    assert ("contrastive ntxent" in card) == (mode == "hybrid")


def test_a_head_of_the_wrong_size_is_a_clear_error(pool, tmp_path):
    sections, _ = supervised_sections(pool.label, pool.values)
    cfg = {"model": TINY, "objective": objective_mode("hybrid", sections),
           "train": {"steps": 1, "batch_size": 60, "progress": False, "device": "cpu"}}  # fmt: skip
    source = TensorEventDataset(pool.tokens, pool.mask, batch_size=60, label=pool.label,
                                token_config=pool.token_config, objects=pool.objects)  # fmt: skip
    with pytest.raises(TrainingError, match=r"objective.process has 4 classes.*model.n_classes: 4"):
        pretrain(cfg, source, tmp_path, keep_model=False)
