"""Task config, labelled sources, hash splits (determinism, no leakage), label subsets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jetfm_coffea.errors import ConfigError, JetFMError, TrainingError
from jetfm_coffea.finetune import (
    load_labelled,
    load_task_config,
    prepare_finetune,
    read_labelled_fileset,
    sample_labels,
    split_assignment,
)
from jetfm_coffea.finetune.config import SplitConfig
from jetfm_coffea.finetune.data import (
    LabelledEvents,
    assign_splits,
    balanced_batch_size,
    dataset_keys,
    event_hash,
)

from .conftest import N_PER_DATASET, tiny_task


def _ids(n, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(1, 400_000, n),
        rng.integers(1, 3_000, n),
        rng.integers(0, 2**40, n),
    )


def test_split_is_a_pure_function_of_the_event_id():
    run, lumi, event = _ids(20_000)
    codes = split_assignment(run, lumi, event, (0.6, 0.2, 0.2))
    again = split_assignment(run, lumi, event, (0.6, 0.2, 0.2))
    np.testing.assert_array_equal(codes, again)
    perm = np.random.default_rng(1).permutation(len(run))
    np.testing.assert_array_equal(
        split_assignment(run[perm], lumi[perm], event[perm], (0.6, 0.2, 0.2)), codes[perm]
    )
    # each single event alone lands where it landed in the batch
    for i in range(0, 20_000, 2_500):
        single = split_assignment(run[i : i + 1], lumi[i : i + 1], event[i : i + 1])
        assert single[0] == codes[i]
    frac = np.bincount(codes, minlength=3) / len(codes)
    np.testing.assert_allclose(frac, [0.6, 0.2, 0.2], atol=0.015)
    assert (split_assignment(run, lumi, event, (0.6, 0.2, 0.2), salt=1) != codes).mean() > 0.3
    u = event_hash(run, lumi, event)
    assert u.min() >= 0.0 and u.max() < 1.0
    # the id fields are not interchangeable
    assert (event_hash(lumi, run, event) != u).all()


def test_equal_ids_in_two_datasets_are_split_independently():
    """Simulated samples reuse ids (run 1, events 1..N): their splits must not coincide."""
    n = 20_000
    run, lumi = np.ones(n, np.int64), 1 + np.arange(n) // 1000
    event = np.arange(1, n + 1)
    ids = (np.concatenate([run, run]), np.concatenate([lumi, lumi]), np.tile(event, 2))
    names = np.array(["ttbar_13TeV"] * n + ["tth_13TeV"] * n, dtype=object)
    codes = split_assignment(*ids, (0.6, 0.2, 0.2), dataset=names)
    a, b = codes[:n], codes[n:]
    # independent: the joint distribution factorises (P(a=i, b=j) = P(a=i) P(b=j))
    joint = np.histogram2d(a, b, bins=[np.arange(4)] * 2)[0] / n
    np.testing.assert_allclose(joint, np.outer([0.6, 0.2, 0.2], [0.6, 0.2, 0.2]), atol=0.015)
    assert (a == b).mean() < 0.5  # 0.44 expected; 1.0 without the dataset name
    # without dataset names every id lands where its twin does
    same = split_assignment(*ids, (0.6, 0.2, 0.2))
    assert (same[:n] == same[n:]).all()
    # a pure function of (dataset, id): one dataset alone splits as within the pair
    np.testing.assert_array_equal(
        split_assignment(run, lumi, event, (0.6, 0.2, 0.2), dataset=names[n:]), b
    )
    np.testing.assert_array_equal(dataset_keys(["a", "b", "a"])[[0, 2]], dataset_keys(["a"] * 2))
    assert dataset_keys(["a"])[0] != dataset_keys(["b"])[0]


def test_shared_ids_across_datasets_do_not_leak(labelled):
    """Two datasets with identical ids: each (dataset, id) is in exactly one split."""
    twin = labelled.take(np.arange(len(labelled)))
    twin.datasets = [f"{name}_copy" for name in labelled.datasets]
    both = LabelledEvents.concatenate([labelled, twin])
    codes = assign_splits(both, SplitConfig())
    key = list(zip(both.dataset_names(), both.run, both.luminosityBlock, both.event, strict=True))
    seen: dict[tuple, int] = {}
    for k, c in zip(key, codes, strict=True):
        assert seen.setdefault(k, int(c)) == int(c)
    n = len(labelled)
    assert (codes[:n] != codes[n:]).any()  # the copies are split on their own
    # without dataset names (a shard store), events are named after their data label
    anonymous = labelled.take(np.arange(n))
    anonymous.dataset, anonymous.datasets = None, []
    assert set(anonymous.dataset_names()) == {"label:0", "label:1"}


def test_no_event_leaks_across_splits(labelled, pretrained_run):
    setup = prepare_finetune(tiny_task(), pretrained_run, labelled)
    ids = {
        name: {
            (int(labelled.run[i]), int(labelled.luminosityBlock[i]), int(labelled.event[i]))
            for i in setup.pool(name)
        }
        for name in ("train", "val", "test")
    }
    assert not ids["train"] & ids["val"]
    assert not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    assert sum(len(v) for v in ids.values()) == len(labelled)
    # same ids, shuffled order: same assignment of every event
    perm = np.random.default_rng(3).permutation(len(labelled))
    shuffled = prepare_finetune(tiny_task(), pretrained_run, labelled.take(perm))
    for name in ids:
        idx = shuffled.pool(name)
        got = set(
            zip(
                labelled.run[perm][idx].tolist(),
                labelled.luminosityBlock[perm][idx].tolist(),
                labelled.event[perm][idx].tolist(),
                strict=True,
            )
        )
        assert got == ids[name]
    # a label subset and its validation set come from their own splits
    train, val = setup.select(40, seed=0)
    assert set(train) <= set(setup.pool("train")) and set(val) <= set(setup.pool("val"))


def test_label_subsets_are_stratified_and_seeded():
    classes = np.array([0] * 300 + [1] * 100)
    pool = np.arange(400)
    a = sample_labels(classes, pool, 40, seed=0, n_classes=2)
    assert len(a) == len(set(a)) == 40
    assert np.bincount(classes[a]).tolist() == [30, 10]
    np.testing.assert_array_equal(a, sample_labels(classes, pool, 40, seed=0, n_classes=2))
    assert set(a) != set(sample_labels(classes, pool, 40, seed=1, n_classes=2))
    rare = np.array([0] * 399 + [1])
    assert 1 in rare[sample_labels(rare, pool, 5, seed=0, n_classes=2)]  # every class present
    np.testing.assert_array_equal(sample_labels(classes, pool, 400, 0, 2), pool)
    with pytest.raises(TrainingError):
        sample_labels(classes, pool, 401, 0, 2)
    assert balanced_batch_size(150, 128) == 75 and balanced_batch_size(40, 128) == 40


def test_labelled_fileset(labelled, labelled_fileset):
    assert labelled.label_counts() == {0: N_PER_DATASET, 1: N_PER_DATASET}
    assert labelled.datasets == ["collisions2012", "ttbar"]
    assert set(labelled.weight[labelled.label == 1].tolist()) == {2.0}
    assert labelled.provenance["labels"] == {"collisions2012": 0, "ttbar": 1}
    assert labelled.tokens.dtype == np.float32 and labelled.mask.any(1).all()
    sets = read_labelled_fileset(labelled_fileset)
    assert [d["label"] for d in sets] == [0, 1]


def test_bad_sources(tmp_path, singlemu):
    bad = tmp_path / "nolabel.json"
    bad.write_text(json.dumps({"d": {"files": [str(singlemu)], "metadata": {"process": "x"}}}))
    with pytest.raises(ConfigError, match=r"metadata\.label"):
        read_labelled_fileset(bad)
    rel = tmp_path / "rel.json"
    rel.write_text(json.dumps({"d": {"files": ["sub/f.root"], "metadata": {"label": 1}}}))
    assert read_labelled_fileset(rel)[0]["files"][0][0] == str(tmp_path / "sub" / "f.root")
    with pytest.raises(TrainingError, match="exactly one"):
        load_labelled()
    with pytest.raises(TrainingError, match="does not exist"):
        load_labelled(fileset=tmp_path / "missing.json")
    with pytest.raises(JetFMError):  # no shard loader yet, or no such store
        load_labelled(shards=tmp_path / "missing.zarr")


def test_task_config_validation(tmp_path):
    task = load_task_config(tiny_task())
    assert task.class_names == ["collisions", "ttbar"] and task.signal_class == "ttbar"
    assert task.label_map() == {0: 0, 1: 1}
    assert load_task_config({"classes": ["bkg", "sig"]}).classes == {"bkg": [0], "sig": [1]}
    path = tmp_path / "task.yaml"
    path.write_text(task.to_yaml())
    assert path.read_text().startswith(f"# hash: {task.hash()}")
    assert load_task_config(path) == task
    bad = [
        ({"classes": {"a": 0}}, "at least 2 classes"),
        ({"classes": {"a": 0, "b": 0}}, "data label 0 is in classes"),
        ({"classes": {"a": 0, "b": 1}, "signal": "c"}, "signal 'c' is not a class"),
        ({"classes": {"a": 0, "b": 1}, "splits": {"train": 0.5}}, "sum to"),
        ({"classes": {"a": 0, "b": 1}, "modes": ["probe"]}, "modes"),
        ({"classes": {"a": 0, "b": 1}, "labels": [0]}, "label counts"),
        ({"classes": {"a": 0, "b": 1}, "lr": 1}, "lr"),
    ]
    for cfg, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            load_task_config(cfg)


def test_a_class_named_after_a_process_cannot_take_another_process_label(labelled, resim_store):
    import dataclasses

    from jetfm_coffea.finetune.data import task_targets

    # the datasets as the generator names them: label 0 holds wjets, label 1 ttbar
    data = dataclasses.replace(labelled, datasets=["wjets_13TeV", "ttbar_13TeV"])
    swapped = load_task_config({"classes": {"ttbar": 0, "wjets": 1}})
    with pytest.raises(ConfigError, match=r"class 'ttbar' maps to data label 0, which holds 'wj"):
        task_targets(data, swapped)
    right = load_task_config({"classes": {"wjets": 0, "ttbar": 1}})
    targets, _ = task_targets(data, right)
    np.testing.assert_array_equal(targets, data.label)
    # class -> processes: the generator's stable labels, whatever the order of the classes
    named = load_task_config({"classes": {"ttbar": ["ttbar"], "tth": ["tth"]}})
    assert named.classes == {"ttbar": [0], "tth": [6]}
    with pytest.raises(ConfigError, match="neither a data label"):
        load_task_config({"classes": {"a": ["tt_bar"], "b": 1}})
    # a shard store of generated Z+jets (label 2): its shards name the process
    store = load_labelled(shards=resim_store)
    with pytest.raises(ConfigError, match=r"class 'qcd' maps to data label 2, which holds 'zjets'"):
        task_targets(store, load_task_config({"classes": {"qcd": 2, "hbb": 4}}))
