"""One registry dialect for every extension point (jetfm_coffea.registry)."""

from __future__ import annotations

import dataclasses

import pytest

from jetfm_coffea.augment import AUGMENTATIONS
from jetfm_coffea.errors import ConfigError, UnknownNameError
from jetfm_coffea.finetune.task_types import TASK_TYPES
from jetfm_coffea.generate import PROCESSES, register_process
from jetfm_coffea.model.model import HEADS
from jetfm_coffea.registry import Registry
from jetfm_coffea.score.formats import EXPORTERS
from jetfm_coffea.train import OBJECTIVES

EXTENSION_POINTS = {
    "pretraining objective": (OBJECTIVES, "masked"),
    "model head": (HEADS, "classifier"),
    "augmentation": (AUGMENTATIONS, "rotate_phi"),
    "task type": (TASK_TYPES, "classification"),
    "export format": (EXPORTERS, "onnx"),
    "process": (PROCESSES, "ttbar"),
}


@pytest.mark.parametrize("kind", sorted(EXTENSION_POINTS))
def test_every_extension_point_speaks_the_same_dialect(kind):
    registry, known = EXTENSION_POINTS[kind]
    assert isinstance(registry, Registry) and registry.kind == kind
    assert known in registry and registry[known] is dict(registry.items())[known]
    with pytest.raises(UnknownNameError) as err:
        registry["no-such-name"]
    # one error type: a ConfigError (the CLI's one-line message) and a KeyError (a mapping)
    assert isinstance(err.value, ConfigError) and isinstance(err.value, KeyError)
    message = str(err.value)
    assert message.startswith(f"unknown {kind} 'no-such-name'; registered: ")
    assert known in message and "add one with jetfm_coffea." in message
    assert registry.get("no-such-name") is None


def test_a_taken_name_is_refused_unless_it_is_the_same_implementation():
    shapes: Registry[object] = Registry("shape")
    square = object()
    assert shapes.register("square", square) is square
    assert shapes.register("square", square) is square  # a module imported twice
    with pytest.raises(ConfigError, match="a shape named 'square' is already registered"):
        shapes.register("square", object())
    assert shapes.unregister("square") is square and "square" not in shapes
    assert shapes.register("round")(square) is square  # as a decorator
    assert list(shapes) == ["round"] and len(shapes) == 1


def test_a_process_needs_a_new_label():
    ttbar = PROCESSES["ttbar"]
    clash = dataclasses.replace(ttbar, name="ttbar_copy")
    with pytest.raises(ConfigError, match="label 0 is 'ttbar'"):
        register_process(clash)
    assert "ttbar_copy" not in PROCESSES
    assert register_process(ttbar) is ttbar  # the same spec again is no conflict
