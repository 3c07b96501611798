"""The public API of every subpackage is pinned: its ``__all__`` is this list.

Adding, renaming or removing a public name is a decision: change the list below in the
same commit (the failure message prints the new list). Every pinned name resolves (lazy
names included) and every subpackage declares ``__all__``.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings

import pytest

import jetfm_coffea

PUBLIC_API: dict[str, list[str]] = {
    "jetfm_coffea": ["__version__"],
    "jetfm_coffea.augment": [
        "AUGMENTATIONS",
        "AugmentationPipeline",
        "AugmentationSpec",
        "AugmentationStep",
        "BoostTransverse",
        "BoostZ",
        "DropObjects",
        "MaskObjects",
        "ReflectEta",
        "RotatePhi",
        "SmearEnergy",
        "SmearWidth",
        "StepContext",
        "StepRandom",
        "apply_acceptance",
        "apply_pipeline",
        "augment_objects",
        "augment_tensors",
        "augment_tokens",
        "augment_views",
        "describe_augmentations",
        "event_step_keys",
        "load_pipeline",
        "register",
        "standard_pipeline",
    ],
    "jetfm_coffea.cli": ["COMMANDS", "main"],
    "jetfm_coffea.pipelines": ["DemoPlan", "Sample", "run_campaign", "run_demo"],
    "jetfm_coffea.finetune": [
        "FinetuneLoopConfig",
        "FinetuneOptimConfig",
        "FinetuneResult",
        "FinetuneSetup",
        "LabelledEvents",
        "MODES",
        "PretrainedEncoder",
        "SPLITS",
        "SplitConfig",
        "StudyResult",
        "TASK_TYPES",
        "TaskConfig",
        "TaskType",
        "aggregate",
        "assign_splits",
        "background_rejection",
        "build_classifier",
        "build_finetune_optimizer",
        "build_task_model",
        "calibration",
        "check_classes",
        "classification_metrics",
        "confusion",
        "dataset_keys",
        "evaluate_run",
        "event_hash",
        "finetune",
        "label_efficiency",
        "load_classifier",
        "load_labelled",
        "load_pretrained",
        "load_task_config",
        "markdown_table",
        "plan_task",
        "predict",
        "predict_outputs",
        "prepare_finetune",
        "read_labelled_fileset",
        "register_task_type",
        "regression_metrics",
        "roc",
        "sample_labels",
        "split_assignment",
        "task_type_for",
    ],
    "jetfm_coffea.generate": [
        "GenerationResult",
        "PROCESSES",
        "ProcessSpec",
        "SQRTS_CHOICES",
        "dataset_name",
        "generate",
        "register_process",
    ],
    "jetfm_coffea.generate.detector": [
        "BTAG_WP_MEDIUM",
        "DetectorConfig",
        "Particles",
        "particle_record",
        "simulate",
    ],
    "jetfm_coffea.jobs": [],
    "jetfm_coffea.model": [
        "ClassificationHead",
        "EncoderOutput",
        "EventEncoder",
        "EventModel",
        "HEADS",
        "Head",
        "MaskedObjectDecoder",
        "ModelConfig",
        "PAIR_FEATURES",
        "ProjectionHead",
        "SIZES",
        "ScoredOutputs",
        "build_model",
        "count_parameters",
        "event_lengths",
        "length_batches",
        "length_groups",
        "model_config_for",
        "pack_tokens",
        "packed_width",
        "pair_features",
        "register_head",
        "score_head",
    ],
    "jetfm_coffea.opendata": [
        "Catalogue",
        "CatalogueFile",
        "Dataset",
        "FileListUnavailableError",
        "FileReport",
        "GoldenJSONError",
        "LumiMaskInfo",
        "MissingCrossSectionError",
        "PROTOCOLS",
        "ReadOptions",
        "UnknownDatasetError",
        "UnknownLumiMaskError",
        "UnreachableFilesError",
        "apply_lumimask",
        "build_fileset",
        "check_file",
        "check_fileset",
        "dataset_metadata",
        "ensure_handler",
        "get_dataset",
        "golden_json_path",
        "load_catalogue",
        "load_lumimask",
        "lumimask_for",
        "lumimask_provenance",
        "open_file",
        "read_golden_json",
        "write_fileset",
    ],
    "jetfm_coffea.score": [
        "JetFMScorer",
        "ModelFileError",
        "ModelInfo",
        "ScoreInputError",
        "Variation",
        "count_nonfinite",
        "load_model",
        "read_model_info",
        "scoped_torch_threads",
        "score_fields",
        "standard_variations",
        "weights_to_carry",
    ],
    "jetfm_coffea.selection": [
        "BlindingConfig",
        "BlindingError",
        "CERTIFIED_LUMI",
        "LumiMaskWarning",
        "LumiPolicy",
        "MissingLumiMaskError",
        "certify",
        "load_blinding",
        "resolve_lumi_masks",
    ],
    "jetfm_coffea.shards": [
        "Problem",
        "SCHEMA_VERSION",
        "Shard",
        "ShardDataset",
        "ShardInfo",
        "ShardLoader",
        "ShardRecord",
        "ShardSource",
        "ShardStore",
        "VerifyReport",
        "create_store",
        "load_augmentation",
        "migrate_store",
        "open_loader",
        "open_resim_loader",
        "open_shard",
        "open_store",
        "scan_shards",
        "shard_arrays",
        "shard_path",
        "stored_views",
        "verify",
        "write_manifest",
        "write_shard",
    ],
    "jetfm_coffea.tokens": [
        "CollectionSpec",
        "Cut",
        "EventObjects",
        "EventTokens",
        "FEATURES",
        "ID_FIELDS",
        "OBJECT_FIELDS",
        "RaggedObjects",
        "TokenConfig",
        "VARIED",
        "Variation",
        "build_tokens",
        "check_collections",
        "check_token_config",
        "compute_features",
        "energy",
        "load_token_config",
        "load_variations",
        "select_objects",
        "select_ragged",
        "standard_variations",
        "token_record",
        "tokens_from_objects",
    ],
    "jetfm_coffea.train": [
        "BatchSource",
        "Encoded",
        "LoopConfig",
        "ModelSection",
        "OBJECTIVES",
        "Objective",
        "ObjectiveConfig",
        "ObjectiveParams",
        "OptimConfig",
        "PretrainConfig",
        "PretrainResult",
        "PretrainTask",
        "RunConfigs",
        "TensorEventDataset",
        "ValidationConfig",
        "batch_provenance",
        "check_token_config",
        "collapse_metrics",
        "events_source",
        "jitter_views",
        "knn_accuracy",
        "load_pretrain_config",
        "load_run",
        "make_views",
        "masked_object_loss",
        "nt_xent",
        "open_data",
        "pretrain",
        "read_metrics",
        "register_objective",
        "shards_source",
        "vicreg",
    ],
    "jetfm_coffea.finetune.task_types": [
        "Classification",
        "NoOptions",
        "Regression",
        "RegressionOptions",
        "TASK_TYPES",
        "TaskLoss",
        "TaskType",
        "register_task_type",
        "task_type_for",
    ],
    "jetfm_coffea.processors": [],
}


def test_every_subpackage_is_pinned():
    found = {"jetfm_coffea"} | {
        m.name for m in pkgutil.walk_packages(jetfm_coffea.__path__, "jetfm_coffea.") if m.ispkg
    }
    assert found == set(PUBLIC_API)


@pytest.mark.parametrize("name", sorted(PUBLIC_API))
def test_all_is_pinned_and_resolves(name):
    module = importlib.import_module(name)
    declared = getattr(module, "__all__", None)
    assert declared is not None, f"{name} declares no __all__"
    assert len(declared) == len(set(declared)), f"{name}.__all__ repeats a name"
    assert sorted(declared) == PUBLIC_API[name], (
        f"{name}.__all__ changed; if intended, pin it in tests/test_public_api.py:\n"
        f"    {name!r}: {sorted(declared)!r},"
    )
    missing = [n for n in declared if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_every_module_declares_its_public_names():
    """Not only the subpackages: every module says what it exports, and it all resolves."""
    for info in pkgutil.walk_packages(jetfm_coffea.__path__, "jetfm_coffea."):
        if info.name == "jetfm_coffea.__main__":
            continue
        with warnings.catch_warnings():  # deprecated re-export modules warn on import
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(info.name)
        assert isinstance(getattr(module, "__all__", None), list), info.name
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, (info.name, missing)
