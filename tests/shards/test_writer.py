"""Writing shards: exact round trip, schema validation on write, atomicity, existing shards."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from jetfm_coffea.errors import SchemaValidationError, ShardExistsError
from jetfm_coffea.shards import (
    create_store,
    load_augmentation,
    open_shard,
    scan_shards,
    stored_views,
    verify,
    write_manifest,
    write_shard,
)
from jetfm_coffea.shards import writer as writer_module
from jetfm_coffea.shards.format import OBJECT_COLUMNS, SCHEMA_VERSION
from jetfm_coffea.shards.store import scan_temporaries
from jetfm_coffea.shards.writer import ShardSource
from jetfm_coffea.tokens import build_tokens
from jetfm_coffea.tokens.fields import OBJECT_FIELDS

AUG = {"views": 2, "seed": 11, "steps": [{"name": "rotate_phi"}, {"name": "boost_z"}]}


@pytest.fixture(scope="module")
def events(singlemu):
    from coffea.nanoevents import NanoEventsFactory

    from jetfm_coffea.nanoevents import JetFMNanoAODSchema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ev = NanoEventsFactory.from_root(
            {str(singlemu): "Events"},
            schemaclass=JetFMNanoAODSchema,
            mode="virtual",
            entry_stop=3000,
        ).events()
    return ev


@pytest.fixture(scope="module")
def tokens(events, token_config):
    return build_tokens(events, token_config)


def _source(n=3000, uuid="0000-test"):
    return ShardSource("singlemu", "/data/f.root", uuid, 0, n)


def test_round_trip_keeps_the_selected_objects_exactly(tmp_path, tokens, token_config):
    pipeline = load_augmentation(AUG)
    views = stored_views(tokens.objects, pipeline, token_config)
    create_store(tmp_path, token_config, pipeline)
    weight = np.linspace(0.5, 1.5, len(tokens)).astype(np.float32)
    info = write_shard(
        tmp_path,
        tokens.objects,
        _source(),
        token_config,
        views=views,
        pipeline=pipeline,
        label=4,
        weight=weight,
        chunk_events=1024,
    )
    assert info.status == "written" and info.n_events == 3000 and info.n_views == 2
    shard = open_shard(tmp_path, info.path)
    arrays = shard.read_all()
    assert "tokens" not in arrays  # 2.0.0: tokens are computed by the loader
    mask = tokens.mask
    np.testing.assert_array_equal(np.diff(arrays["objects/offsets"]), tokens.counts)
    for name in OBJECT_FIELDS:
        stored = arrays[f"objects/{name}"]
        assert stored.dtype == np.dtype(OBJECT_COLUMNS[name])
        original = getattr(tokens.objects, name)[mask]
        np.testing.assert_array_equal(stored.astype(np.float32), original)
    for name in ("run", "luminosityBlock", "event"):
        np.testing.assert_array_equal(arrays[name], getattr(tokens, name))
    view_counts = np.diff(arrays["views/offsets"]).reshape(3000, 2)
    for v, view in enumerate(views):
        np.testing.assert_array_equal(view_counts[:, v], view.mask.sum(1))
    first, n = arrays["views/offsets"][2], view_counts[1, 0]  # event 1, view 0
    np.testing.assert_array_equal(
        arrays["views/pt"][first : first + n], views[0].pt[1][views[0].mask[1]]
    )
    np.testing.assert_array_equal(arrays["label"], np.full(3000, 4))
    np.testing.assert_array_equal(arrays["weight"], weight)
    # provenance
    a = shard.attrs
    assert a["schema_version"] == SCHEMA_VERSION and a["n_objects"] == int(tokens.counts.sum())
    assert a["token_config_hash"] == token_config.hash()
    assert a["augmentation"]["hash"] == pipeline.hash() and a["augmentation"]["seed"] == 11
    assert a["source"] == {
        "file": "/data/f.root",
        "uuid": "0000-test",
        "treename": "Events",
        "entry_start": 0,
        "entry_stop": 3000,
    }
    assert info.checksum == a["checksum"]["value"] and a["checksum"]["algorithm"] == "crc32c"
    # zstd + crc32c, chunked, readable by zarr itself (which checks the CRCs too)
    import zarr

    assert '"crc32c"' in (tmp_path / info.path / "objects" / "pt" / "zarr.json").read_text()
    group = zarr.open_group(str(tmp_path / info.path), mode="r")
    for name in ("event", "objects/offsets", "objects/pt", "objects/charge", "views/eta"):
        np.testing.assert_array_equal(group[name][...], arrays[name])
    assert group["event"].chunks[0] < 3000  # several chunks, the last one partial
    write_manifest(tmp_path)
    assert verify(tmp_path).ok


def test_provenance_takes_extra_keys(tmp_path, tokens, token_config):
    create_store(tmp_path, token_config)
    extra = {"lumimask": {"name": "golden", "sha256": "0" * 64}, "events_before": 3100}
    info = write_shard(tmp_path, tokens, _source(), token_config, provenance=extra)
    assert open_shard(tmp_path, info.path).attrs["provenance"] == extra
    manifest = write_manifest(tmp_path)
    assert manifest["shards"][0]["provenance"] == extra


def test_invalid_attributes_are_refused_and_leave_nothing(
    tmp_path, tokens, token_config, monkeypatch
):
    create_store(tmp_path, token_config)
    monkeypatch.setattr(
        writer_module,
        "pipeline_document",
        lambda p: {"pipeline": None, "hash": "not-a-hash", "seed": None, "n_views": 0},
    )
    with pytest.raises(SchemaValidationError, match="shard"):
        write_shard(tmp_path, tokens, _source(), token_config)
    assert scan_shards(tmp_path) == [] and scan_temporaries(tmp_path) == []


def test_failed_write_leaves_no_shard(tmp_path, tokens, token_config, monkeypatch):
    create_store(tmp_path, token_config)
    real = writer_module._write_group

    def half_written(target, specs, files, *args):
        real(target, specs, dict(list(files.items())[:2]), *args)
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(writer_module, "_write_group", half_written)
    with pytest.raises(KeyboardInterrupt):
        write_shard(tmp_path, tokens, _source(), token_config)
    assert scan_shards(tmp_path) == [] and scan_temporaries(tmp_path) == []


def test_killed_writer_leftover_is_never_a_shard(tmp_path, tokens, token_config):
    """A SIGKILL mid-write leaves only the hidden temporary; it is reported, not read."""
    create_store(tmp_path, token_config)
    info = write_shard(tmp_path, tokens, _source(), token_config)
    final = tmp_path / info.path
    leftover = final.parent / ".0-3000.tmp-deadbeef0000"
    leftover.mkdir()
    (leftover / "zarr.json").write_text("{}")
    assert scan_shards(tmp_path) == [info.path]
    write_manifest(tmp_path)
    report = verify(tmp_path)
    assert report.ok
    assert [(p.kind, p.severity) for p in report.problems] == [("temporary", "warning")]
    assert leftover.exists()  # verify never deletes


def test_existing_shards_skip_error_or_overwrite(tmp_path, tokens, token_config):
    create_store(tmp_path, token_config)
    first = write_shard(tmp_path, tokens, _source(), token_config)
    again = write_shard(tmp_path, tokens, _source(), token_config)
    assert again.status == "existing" and again.checksum == first.checksum
    with pytest.raises(ShardExistsError, match=first.path):
        write_shard(tmp_path, tokens, _source(), token_config, if_exists="error")
    weight = np.full(3000, 2.0, np.float32)
    new = write_shard(
        tmp_path, tokens, _source(), token_config, weight=weight, if_exists="overwrite"
    )
    assert new.status == "written" and new.checksum != first.checksum
    assert scan_shards(tmp_path) == [first.path] and scan_temporaries(tmp_path) == []
    np.testing.assert_array_equal(open_shard(tmp_path, new.path).read("weight"), weight)
