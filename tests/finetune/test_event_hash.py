"""The split hash uses the one splitmix64 (augment.rng.mix64); its values are pinned."""

from __future__ import annotations

import numpy as np

from jetfm_coffea.finetune.data import dataset_keys, event_hash

RUN = np.array([194050, 194050, 1, -5])
LUMI = np.array([1, 2, 3, 4])
EVENT = np.array([10, 11, 2**40, 7])


def test_event_hash_values_are_pinned():
    """Values of the implementation before splitmix64 had one owner: splits never move."""
    assert event_hash(RUN, LUMI, EVENT).tolist() == [
        0.12346693485225013,
        0.8220146443570386,
        0.8246832991292197,
        0.5702773599193472,
    ]
    keys = dataset_keys(["a", "b", "a", "c"])
    assert event_hash(RUN, LUMI, EVENT, salt=3, dataset=keys).tolist() == [
        0.9608504059771819,
        0.5621426032784376,
        0.2912210578272608,
        0.05765572616828685,
    ]


def test_event_hash_keeps_the_shape_of_scalar_ids():
    assert event_hash(np.int64(1), np.int64(2), np.int64(3)).shape == ()
