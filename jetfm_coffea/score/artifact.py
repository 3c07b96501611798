"""Model artifacts for scoring: run directories and portable exports, checked before use.

A scoring model is a directory with ``model.safetensors`` (encoder + classification
head), ``model_config.json`` and ``token_config.yaml``: a training run directory
(:func:`jetfm_coffea.train.load_run`) or a portable export (:mod:`.export`, which adds
``manifest.json`` with the SHA-256 of every file). :func:`read_model_info` reads the
light part (configs, class names, hashes) on the client; :func:`load_model` builds the
torch model on a worker. Nothing in a model directory is ever unpickled: weights are
safetensors, configs JSON/YAML; pickle files are refused by name.

The *model hash* is the SHA-256 of the weights file. The run directory recorded it
when the weights were written (``run.json``'s ``weights_sha256``, an export's
manifest). Every check of the directory is :func:`jetfm_coffea.model.rundir.read_model_files`
(the one reader of runs and exports, shared with pretraining and fine-tuning); this
module adds the export manifest, the class names and the scoring view
(:class:`ModelInfo`). A weights mismatch is refused unless ``allow_modified_weights``
(then ``jetfm_weights_check: "modified"`` is recorded on every column). The hash is
recorded in the awkward parameters of every score column, and checked again when a
worker loads the weights, so every chunk of an analysis is scored by the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jetfm_coffea.digest import file_sha256
from jetfm_coffea.errors import JetFMError, ModelFileError
from jetfm_coffea.model.config import ModelConfig
from jetfm_coffea.model.model import HEADS, ScoredOutputs, score_head
from jetfm_coffea.model.rundir import (
    MANIFEST,
    WEIGHTS,
    build_model_from_bytes,
    read_json,
    read_model_files,
    refuse_pickles,
)
from jetfm_coffea.tokens.config import TokenConfig

__all__ = [
    "ModelInfo",
    "load_model",
    "read_model_info",
    "weights_to_carry",
]


@dataclass(frozen=True)
class ModelInfo:
    """What the client needs to know about a scoring model, without loading torch weights."""

    path: str
    model_hash: str
    model_version: str
    model_config: ModelConfig
    token_config: TokenConfig
    class_names: tuple[str, ...]
    heads: tuple[str, ...]
    kind: str  # "run" or "export"
    manifest: dict[str, Any] | None = field(default=None, repr=False)
    weights_check: str = "verified"  # or "modified" (allowed), "unrecorded" (old run)

    @property
    def score_head(self) -> str | None:
        """The downstream head scored (:func:`jetfm_coffea.model.score_head`: e.g.
        ``classifier``, ``regressor``), or None (a bare encoder)."""
        return score_head(self.heads)

    @property
    def scored(self) -> ScoredOutputs | None:
        """How the scored head's outputs are read (registered with the head), or None."""
        head = self.score_head
        return None if head is None else HEADS[head].scored

    @property
    def columns(self) -> tuple[str, ...]:
        """The scorer's output columns (e.g. ``score_<class>`` of a classifier, the
        recorded ``pred_<target>``, ``sigma_<target>`` of a regressor); () if unscored."""
        return () if self.scored is None else self.scored.columns(self.class_names)

    @property
    def short_hash(self) -> str:
        return self.model_hash[:12]

    @property
    def embedding_dim(self) -> int:
        return self.model_config.dim

    def parameters(self) -> dict[str, str]:
        """Awkward parameters recorded on every injected column."""
        from jetfm_coffea import __version__

        return {
            "jetfm_model_hash": self.model_hash,
            "jetfm_model_version": self.model_version,
            "jetfm_token_config_hash": self.token_config.hash(),
            "jetfm_coffea_version": __version__,
            "jetfm_weights_check": self.weights_check,
        }


def _check_manifest(folder: Path) -> dict[str, Any]:
    """Validate ``manifest.json`` and every file hash it lists."""
    from jetfm_coffea.schema import validate

    path = folder / MANIFEST
    manifest = read_json(path)
    try:
        validate(manifest, "model_manifest", name=str(path))
    except JetFMError as err:
        raise ModelFileError(str(path), f"invalid manifest: {err}") from err
    for name, entry in manifest["files"].items():
        if name == WEIGHTS:  # checked by weights_to_carry, which may be told to allow a change
            continue
        target = folder / name
        if not target.is_file():
            raise ModelFileError(str(target), "listed in the manifest but missing")
        actual = file_sha256(target)
        if actual != entry["sha256"]:
            raise ModelFileError(
                str(target),
                f"SHA-256 {actual[:12]}… does not match the manifest's {entry['sha256'][:12]}…: "
                "the file was modified or corrupted; refusing to load it",
            )
    if manifest["files"].get(WEIGHTS, {}).get("sha256") != manifest["model_hash"]:
        raise ModelFileError(str(path), "model_hash is not the SHA-256 of model.safetensors")
    return manifest


def read_model_info(
    path: str | Path, expected_hash: str | None = None, *, allow_modified_weights: bool = False
) -> ModelInfo:
    """Read and check a scoring model directory (run directory or export).

    Checks: weights are safetensors (pickles refused), the export manifest validates and
    every listed file has its recorded SHA-256, the weights have the SHA-256 their run
    directory recorded when they were written (``run.json`` or the manifest; a
    mismatch raises :class:`~jetfm_coffea.errors.ModifiedWeightsError` unless
    ``allow_modified_weights``), the configs parse and agree with each other and with
    the weights' metadata, and (if given) the weights hash equals ``expected_hash``
    (full hex digest or a prefix of at least 12 digits).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelFileError(str(folder), "model directory not found")
    refuse_pickles(folder)
    manifest = _check_manifest(folder) if (folder / MANIFEST).is_file() else None
    files = read_model_files(
        folder,
        recorded=manifest["model_hash"] if manifest else None,
        record=folder / MANIFEST if manifest else None,
        allow_modified_weights=allow_modified_weights,
    )
    model_hash = files.model_hash
    if expected_hash is not None and (
        len(expected_hash) < 12 or not model_hash.startswith(expected_hash.lower())
    ):
        raise ModelFileError(
            str(files.weights.path),
            f"SHA-256 {model_hash[:12]}… is not the expected {expected_hash[:12]}…; "
            "refusing to score with a different model",
        )
    model_config, token_config, heads = files.model_config, files.token_config, files.heads
    run_info = files.run_info
    source = manifest or run_info
    names = source.get("class_names") or source.get("classes")
    head = score_head(heads)
    if head is not None and HEADS[head].scored.column_prefix is None:  # named outputs
        names = source.get("class_names") if manifest else run_info.get("outputs")
    n = model_config.n_classes
    class_names = tuple(str(c) for c in names) if names else tuple(f"class{i}" for i in range(n))
    if len(class_names) != n:
        raise ModelFileError(
            str(folder), f"{len(class_names)} class names {list(class_names)} for {n} classes"
        )
    version = str(
        source.get("model_version")
        or f"{model_config.size}-{run_info.get('steps_done', 0)}steps-{model_config.hash()}"
    )
    return ModelInfo(
        path=str(folder.resolve()),
        model_hash=model_hash,
        model_version=version,
        model_config=model_config,
        token_config=token_config,
        class_names=class_names,
        heads=heads,
        kind="export" if manifest else "run",
        manifest=manifest,
        weights_check=files.weights.status,
    )


def weights_to_carry(info: ModelInfo) -> bytes:
    """The weights' bytes of ``info``, checked to have its SHA-256 (``info.model_hash``)."""
    import hashlib

    weights = Path(info.path) / WEIGHTS
    try:
        data = weights.read_bytes()
    except OSError as err:
        raise ModelFileError(str(weights), f"cannot read: {err}") from err
    actual = hashlib.sha256(data).hexdigest()
    if actual != info.model_hash:
        raise ModelFileError(
            str(weights),
            f"SHA-256 {actual[:12]}… is not the {info.model_hash[:12]}… read before: the file "
            "changed; refusing to carry it",
        )
    return data


def load_model(info: ModelInfo, device: Any = "cpu", data: bytes | None = None) -> Any:
    """Build the :class:`~jetfm_coffea.model.EventModel` of ``info`` in eval mode on ``device``.

    The weights are read once more (or taken from ``data``, the bytes a scorer carried
    to a remote worker), their SHA-256 compared with ``info.model_hash`` (the file must
    not have changed since the client read it) and deserialised from those same bytes
    by safetensors (:func:`jetfm_coffea.model.rundir.build_model_from_bytes`).
    """
    weights = Path(info.path) / WEIGHTS
    if data is None:
        try:
            data = weights.read_bytes()
        except OSError as err:
            raise ModelFileError(
                str(weights),
                f"cannot read: {err} (a remote worker without the model directory: "
                "JetFMScorer(..., carry_weights=True) sends the weights with the scorer)",
            ) from err
    return build_model_from_bytes(
        info.model_config,
        data,
        expected_hash=info.model_hash,
        path=weights,
        heads=info.heads,
        device=device,
    )
