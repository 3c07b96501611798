"""Fine-tuning cost is set by the batch, not the labelled pool (issue 27).

Counted deterministically: the events each encoder pass sees (a forward hook), not
timed, so the tests hold on a loaded machine.
"""

from __future__ import annotations

import json

import pytest

from jetfm_coffea.finetune import finetune, prepare_finetune
from jetfm_coffea.finetune.loop import (
    MAX_VALIDATION_SHARE,
    VALIDATION_EVENT_COST,
    default_eval_interval,
)
from jetfm_coffea.model.encoder import EventEncoder

from .conftest import tiny_task


class _Rows:
    """Events through every EventEncoder forward, split by grad mode (train vs eval)."""

    def __init__(self, monkeypatch):
        self.train: list[int] = []
        self.eval: list[int] = []
        forward = EventEncoder.forward

        def counted(encoder, tokens, mask, hide=None):
            import torch

            (self.train if torch.is_grad_enabled() else self.eval).append(len(tokens))
            return forward(encoder, tokens, mask, hide)

        monkeypatch.setattr(EventEncoder, "forward", counted)


@pytest.mark.parametrize("labels", [40, "all"])
def test_training_steps_touch_one_batch_and_validation_stays_small(
    pretrained_run, labelled, tmp_path, monkeypatch, labels
):
    """Full validation (the whole val split) with a small label set: today's cadence
    (once per 2-step epoch) validated more events than it trained on."""
    task = tiny_task(max_epochs=None, max_steps=24, schedule="cosine", patience=100)
    task["validation"] = "full"
    setup = prepare_finetune(task, pretrained_run, labelled)
    rows = _Rows(monkeypatch)
    res = finetune(setup, tmp_path / "run", mode="finetune", labels=labels, seed=0)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    n_labels = res.n_labels
    batch = n_labels // -(-n_labels // 32)  # balanced batch size
    assert rows.train == [batch] * res.steps  # each step: one batch, whatever the pool
    n_val = len(setup.pool("val"))
    assert info["val_events"] == n_val * (res.steps // info["eval_every"] + 1) - (
        n_val if res.steps % info["eval_every"] == 0 else 0
    )
    trained = sum(rows.train)
    validated = info["val_events"]
    cost = validated * VALIDATION_EVENT_COST
    # the last (planned) step always validates: one extra pass beyond the cadence's share
    assert cost - n_val * VALIDATION_EVENT_COST <= MAX_VALIDATION_SHARE * (cost + trained)
    assert sum(rows.eval) == validated + len(setup.test_index)  # + the test predictions


def test_default_interval_bounds_the_validation_share():
    # one-step epochs, 200 validation events, batches of 75: every 8 steps, not every step
    assert default_eval_interval(1, 1, 200, 75, probe=False) == 8
    assert default_eval_interval(60, 20, 2513, 126, probe=False) == 60  # per epoch already
    assert default_eval_interval(1, 20, 10_000, 75, probe=True) == 20  # cached embeddings
    for n_val, batch in [(200, 75), (2513, 126), (50, 2)]:
        k = default_eval_interval(1, 1, n_val, batch, probe=False)
        share = n_val * VALIDATION_EVENT_COST / (n_val * VALIDATION_EVENT_COST + k * batch)
        assert share <= MAX_VALIDATION_SHARE + 1e-12


def test_linear_probe_embeds_every_event_once(pretrained_run, labelled, tmp_path, monkeypatch):
    setup = prepare_finetune(tiny_task(max_steps=12), pretrained_run, labelled)
    rows = _Rows(monkeypatch)
    finetune(setup, tmp_path / "p0", mode="linear-probe", labels=40, seed=0)
    finetune(setup, tmp_path / "p1", mode="linear-probe", labels="all", seed=1)
    assert rows.train == []
    assert sum(rows.eval) == int((setup.targets >= 0).sum())  # once, shared by both runs
