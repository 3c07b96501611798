"""The read-ahead thread of the training loop (jetfm_coffea.train.prefetch), on the CPU."""

from __future__ import annotations

import threading

import pytest
import torch

from jetfm_coffea.train.prefetch import prefetch, to_device

CPU = torch.device("cpu")


def _batches(n):
    return [{"x": torch.full((4, 3), float(i)), "name": f"b{i}"} for i in range(n)]


def test_order_preparation_and_passed_through_items():
    items = ((b, i, {"position": i + 1}) for i, b in enumerate(_batches(7)))
    got = list(prefetch(items, CPU, prepare=lambda b: {**b, "x": b["x"] * 2}, depth=3))
    assert [i for _, i, _ in got] == list(range(7))
    assert [s["position"] for _, _, s in got] == list(range(1, 8))
    for i, (b, _, _) in enumerate(got):
        assert torch.equal(b["x"], torch.full((4, 3), 2.0 * i)) and b["name"] == f"b{i}"


def test_reads_at_most_depth_ahead_and_stops_when_closed():
    pulled = []

    def source():
        for i, b in enumerate(_batches(100)):
            pulled.append(i)
            yield b

    stream = prefetch(source(), CPU, depth=2)
    next(stream)
    for _ in range(50):  # give the thread time to run ahead as far as it may
        if len(pulled) >= 4:
            break
        threading.Event().wait(0.01)
    assert len(pulled) <= 4  # the consumed one, 2 queued, 1 waiting to be queued
    stream.close()
    assert not any(t.name == "jetfm-prefetch" and t.is_alive() for t in threading.enumerate())


def test_errors_reach_the_consumer():
    def source():
        yield from _batches(2)
        raise OSError("shard 7: truncated chunk")

    stream = prefetch(source(), CPU)
    assert len([next(stream), next(stream)]) == 2
    with pytest.raises(OSError, match="shard 7: truncated chunk"):
        next(stream)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        next(prefetch(iter([]), CPU, depth=0))


def test_to_device_keeps_non_tensors():
    b = to_device({"x": torch.ones(2), "meta": "run 1"}, CPU, pin=True)
    assert b["meta"] == "run 1" and torch.equal(b["x"], torch.ones(2))
