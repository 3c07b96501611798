"""The model directory on disk: the one owner of its files, their checks and their writes.

Every model the package writes or reads -- a pretraining run, a fine-tuning run, an
export, a Triton model folder -- is a directory with::

    model.safetensors   weights (encoder + heads); metadata: model and token config hashes
    model_config.json   ModelConfig (architecture, feature order, pair-feature version)
    token_config.yaml   TokenConfig the inputs are built with
    run.json            (runs) status, provenance and ``weights_sha256``, the SHA-256 of
                        model.safetensors recorded when the weights were written
    manifest.json       (exports) SHA-256 of every file, ``model_hash`` = the weights'
    MODEL_CARD.md       human summary; its "Model files" section is written here
    data_sheet.json     (exports) what the encoder was pretrained on (runs keep it in
                        run.json's ``data_sheet``; :func:`read_data_sheet` reads either)

This module owns that layout: it writes the weights and records their hash
(:func:`save_run_weights`, :func:`write_run_json`), the configs
(:func:`write_model_configs`) and the model card (:func:`write_model_card`), all
atomically; and it reads a directory back with every check in one place
(:func:`read_model_files`: pickles refused by name, weights verified against the
recorded SHA-256 -- :class:`~jetfm_coffea.errors.ModifiedWeightsError` unless allowed --,
configs parsed and consistent with each other and with the weights' metadata) and
builds the model from the verified bytes (:func:`build_model_from`). Pretraining
(:mod:`.run`, :mod:`.loop`), fine-tuning, export and the scorer all go through it.
Nothing in a model directory is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_bytes

from jetfm_coffea.atomic import atomic_write_bytes, atomic_write_text
from jetfm_coffea.digest import file_sha256
from jetfm_coffea.errors import JetFMError, ModelFileError, ModifiedWeightsError
from jetfm_coffea.model.config import (
    ModelConfig,
    load_model_config,
    pair_features_description,
)
from jetfm_coffea.model.model import EventModel
from jetfm_coffea.tokens.config import TokenConfig, load_token_config

__all__ = [
    "AUGMENT_CONFIG",
    "DATA_SHEET",
    "DATA_SHEET_KEY",
    "MANIFEST",
    "METRICS",
    "MODEL_CARD",
    "MODEL_CONFIG",
    "PICKLE_SUFFIXES",
    "POOL_EVENTS",
    "RUN_CONFIG",
    "RUN_INFO",
    "TOKEN_CONFIG",
    "WEIGHTS",
    "WEIGHTS_HASH_KEY",
    "ModelFiles",
    "VerifiedWeights",
    "build_model_from",
    "build_model_from_bytes",
    "canonical_safetensors",
    "read_data_sheet",
    "read_json",
    "read_model_configs",
    "read_model_files",
    "read_weights",
    "refuse_pickles",
    "safetensors_header",
    "save_run_weights",
    "save_weights",
    "write_model_card",
    "write_model_configs",
    "write_run_json",
    "write_weights",
]

WEIGHTS = "model.safetensors"
MODEL_CONFIG = "model_config.json"
TOKEN_CONFIG = "token_config.yaml"
RUN_INFO = "run.json"
MANIFEST = "manifest.json"
RUN_CONFIG = "config.yaml"  # the run's resolved configuration (pretraining or fine-tuning)
AUGMENT_CONFIG = "augment_config.yaml"  # (pretraining runs) the augmentation config given
METRICS = "metrics.jsonl"  # one JSON record per logged step or validation
POOL_EVENTS = "pool_events.npz"  # (pretraining runs) the event keys of the pretraining pool
MODEL_CARD = "MODEL_CARD.md"
DATA_SHEET = "data_sheet.json"  # (exports) the data sheet of the pretraining data
WEIGHTS_HASH_KEY = "weights_sha256"  # in run.json
DATA_SHEET_KEY = "data_sheet"  # in run.json: what the encoder was pretrained on
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")


def save_weights(path: Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Save tensors as safetensors, atomically, with a canonical header.

    safetensors writes its ``__metadata__`` in hash-map order, which changes from one
    process to the next; the model hash is the SHA-256 of this file, so the header is
    rewritten with sorted keys: the same weights and metadata give the same bytes.
    """
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write_bytes(Path(path), canonical_safetensors(save_bytes(tensors, metadata=metadata)))


def canonical_safetensors(data: bytes) -> bytes:
    """The same safetensors file with its JSON header in sorted, compact form (padded
    with spaces to 8 bytes, as the format allows); the tensor bytes are unchanged."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def safetensors_header(data: bytes) -> tuple[list[str], dict[str, str]]:
    """Tensor names and ``__metadata__`` of safetensors bytes, from the JSON header (no
    tensor decoded); ValueError if the header is not JSON or the data section is
    truncated or too long."""
    n = int.from_bytes(data[:8], "little")
    if len(data) < 8 or n > len(data) - 8:
        raise ValueError(f"header length {n} exceeds the {len(data)} bytes")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"header is not JSON: {err}") from err
    meta = dict(header.pop("__metadata__", None) or {})
    try:
        end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError) as err:
        raise ValueError(f"header entry without data_offsets: {err}") from err
    if end != len(data) - 8 - n:
        raise ValueError(f"tensors end at byte {end} of a {len(data) - 8 - n}-byte data section")
    return list(header), meta


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON file of a model directory; unreadable JSON is a :class:`ModelFileError`."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(str(path), f"unreadable JSON: {err}") from err


def refuse_pickles(folder: str | Path) -> None:
    """Raise unless ``folder`` has ``model.safetensors``, naming any pickled weights found."""
    folder = Path(folder)
    if (folder / WEIGHTS).is_file():
        return
    pickles = sorted(p.name for p in folder.glob("*") if p.suffix in PICKLE_SUFFIXES)
    hint = (
        f"; found {pickles}: pickled weights are refused (loading pickles can run arbitrary code)"
        if pickles
        else ""
    )
    raise ModelFileError(str(folder), f"no {WEIGHTS}{hint}")


@dataclass(frozen=True)
class VerifiedWeights:
    """The bytes of a weights file, read once, and how they compare with the recorded hash.

    ``status`` is ``"verified"`` (the SHA-256 recorded when the weights were written
    matches), ``"modified"`` (it does not, and the caller allowed it) or
    ``"unrecorded"`` (a run written before hashes were recorded).
    """

    path: Path
    data: bytes = field(repr=False)
    sha256: str
    recorded: str | None
    status: str

    @property
    def modified(self) -> bool:
        return self.status == "modified"


def read_weights(
    path: str | Path,
    *,
    recorded: str | None = None,
    record: str | Path | None = None,
    allow_modified: bool = False,
) -> VerifiedWeights:
    """Read a weights file and check it against the SHA-256 recorded when it was written.

    ``path`` is a run directory (its ``model.safetensors``, checked against
    ``run.json``'s ``weights_sha256``) or a weights file with its ``recorded`` hash
    and the ``record`` (file) that holds it. A mismatch raises
    :class:`~jetfm_coffea.errors.ModifiedWeightsError` naming the file and both
    hashes, unless ``allow_modified``.
    """
    path = Path(path)
    weights = path / WEIGHTS if path.is_dir() else path
    if recorded is None and path.is_dir() and (path / RUN_INFO).is_file():
        record = path / RUN_INFO
        recorded = read_json(record).get(WEIGHTS_HASH_KEY)
    try:
        data = weights.read_bytes()
    except OSError as err:
        raise ModelFileError(str(weights), f"cannot read: {err}") from err
    actual = hashlib.sha256(data).hexdigest()
    if recorded is None:
        status = "unrecorded"
    elif actual == recorded:
        status = "verified"
    elif allow_modified:
        status = "modified"
    else:
        raise ModifiedWeightsError(str(weights), recorded, actual, str(record or "its record"))
    return VerifiedWeights(weights, data, actual, recorded, status)


@dataclass(frozen=True)
class ModelFiles:
    """A model directory read and checked by :func:`read_model_files` (no torch model yet)."""

    folder: Path
    model_config: ModelConfig
    token_config: TokenConfig
    weights: VerifiedWeights = field(repr=False)
    heads: tuple[str, ...]
    metadata: dict[str, str]
    run_info: dict[str, Any]

    @property
    def model_hash(self) -> str:
        """SHA-256 of the weights file: the identity of the model."""
        return self.weights.sha256


def read_model_configs(folder: str | Path) -> tuple[ModelConfig, TokenConfig]:
    """The model and token configs of a model directory, checked against each other
    (the weights are not read: a run being resumed has none yet). Every failure is a
    :class:`ModelFileError` naming the file."""
    folder = Path(folder)
    try:
        model_config = load_model_config(folder / MODEL_CONFIG)
        token_data = yaml.safe_load((folder / TOKEN_CONFIG).read_text())
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise ModelFileError(str(folder), f"incomplete model directory: {err}") from err
    try:
        token_config = load_token_config(token_data)
    except JetFMError as err:
        raise ModelFileError(str(folder / TOKEN_CONFIG), str(err)) from err
    if model_config.token_config_hash not in (None, token_config.hash()):
        raise ModelFileError(
            str(folder),
            f"model built for token config {model_config.token_config_hash}, "
            f"{TOKEN_CONFIG} has {token_config.hash()}",
        )
    return model_config, token_config


def read_model_files(
    folder: str | Path,
    *,
    recorded: str | None = None,
    record: str | Path | None = None,
    allow_modified_weights: bool = False,
) -> ModelFiles:
    """Read and check a model directory: the one reader of runs and exports.

    Checks, in order: the directory exists; the weights are safetensors (pickles
    refused); the weights have the SHA-256 recorded when they were written
    (``run.json``, or ``recorded`` from ``record``, e.g. an export's manifest;
    :class:`~jetfm_coffea.errors.ModifiedWeightsError` unless
    ``allow_modified_weights``); both configs parse (a ``model_config.json`` without
    ``pair_version`` is a legacy model, :func:`~jetfm_coffea.model.config.load_model_config`);
    the model was built for this token config; the weights were written for this model
    config. Every failure is a :class:`ModelFileError` naming the file. A released
    encoder's name (``builtin:<name>``) is resolved, and its files checked against its
    release card, by :func:`jetfm_coffea.model.released.resolve_run` before this.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(str(folder), "model directory not found")
    refuse_pickles(folder)
    weights = read_weights(
        folder / WEIGHTS if recorded is not None else folder,
        recorded=recorded,
        record=record,
        allow_modified=allow_modified_weights,
    )
    model_config, token_config = read_model_configs(folder)
    try:
        keys, metadata = safetensors_header(weights.data)
    except ValueError as err:
        raise ModelFileError(str(weights.path), f"not a valid safetensors file: {err}") from err
    if metadata.get("model_config_hash") not in (None, model_config.hash()):
        raise ModelFileError(
            str(weights.path),
            f"written for model config {metadata['model_config_hash']}, "
            f"{MODEL_CONFIG} has {model_config.hash()}",
        )
    heads = tuple(sorted({k.split(".")[1] for k in keys if k.startswith("heads.")}))
    run_info = read_json(folder / RUN_INFO) if (folder / RUN_INFO).is_file() else {}
    return ModelFiles(folder, model_config, token_config, weights, heads, metadata, run_info)


def build_model_from(
    files: ModelFiles,
    data: bytes | None = None,
    *,
    heads: tuple[str, ...] | None = None,
    device: str | torch.device = "cpu",
) -> EventModel:
    """The :class:`EventModel` of ``files`` in eval mode on ``device``, from verified bytes.

    ``data``: the weights' bytes read again (on a worker; default: the bytes ``files``
    verified), ``heads``: default every head in the weights; see :func:`build_model_from_bytes`.
    """
    return build_model_from_bytes(
        files.model_config,
        files.weights.data if data is None else data,
        expected_hash=files.model_hash,
        path=files.weights.path,
        heads=files.heads if heads is None else heads,
        device=device,
    )


def build_model_from_bytes(
    model_config: ModelConfig,
    data: bytes,
    *,
    expected_hash: str,
    path: str | Path,
    heads: tuple[str, ...],
    device: str | torch.device = "cpu",
) -> EventModel:
    """The :class:`EventModel` of weights ``data`` (from ``path``) in eval mode on ``device``.

    The bytes must have the SHA-256 ``expected_hash`` (the file must not have changed
    since its directory was read and checked); they are deserialised by safetensors only.
    """
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_hash:
        raise ModelFileError(
            str(path),
            f"SHA-256 changed from {expected_hash[:12]}… to {actual[:12]}… since the "
            "model directory was read; refusing to load it",
        )
    try:
        state = load_safetensors(data)
    except Exception as err:  # corrupt tensor data
        raise ModelFileError(str(path), f"not a valid safetensors file: {err}") from err
    model = EventModel(model_config, heads=heads)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelFileError(str(path), f"weights do not fit the model config: {err}") from err
    return model.to(torch.device(device)).eval()


# -- writing ----------------------------------------------------------------------------------


def write_model_configs(folder: str | Path, model: ModelConfig, tokens: TokenConfig) -> None:
    """Write ``model_config.json`` and ``token_config.yaml`` (atomically)."""
    folder = Path(folder)
    atomic_write_text(folder / MODEL_CONFIG, json.dumps(model.model_dump(mode="json"), indent=1))
    atomic_write_text(folder / TOKEN_CONFIG, f"# hash: {tokens.hash()}\n{tokens.to_yaml()}")


def write_weights(
    folder: str | Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, str]
) -> Path:
    """Write a model directory's ``model.safetensors`` (canonical header, atomically).

    Write the weights first, then ``run.json`` (:func:`write_run_json`), which records
    their SHA-256; :func:`save_run_weights` does both for an existing run.
    """
    path = Path(folder) / WEIGHTS
    save_weights(path, state_dict, metadata)
    return path


def write_run_json(folder: str | Path, info: dict[str, Any]) -> dict[str, Any]:
    """Write ``run.json`` with ``weights_sha256`` of the weights present now; returns it."""
    folder = Path(folder)
    info = {k: v for k, v in info.items() if k != WEIGHTS_HASH_KEY}
    if (folder / WEIGHTS).is_file():
        info[WEIGHTS_HASH_KEY] = file_sha256(folder / WEIGHTS)
    atomic_write_text(folder / RUN_INFO, json.dumps(info, indent=1, default=str))
    return info


def read_data_sheet(model_dir: str | Path) -> dict[str, Any] | None:
    """The data sheet of a run directory (``run.json``) or an export folder; None if none.

    The sheet itself (what it holds, how it is written into cards) belongs to
    :mod:`jetfm_coffea.selection.datasheet`; this reads where a model folder keeps it.
    """
    exported = Path(model_dir) / DATA_SHEET
    if exported.is_file():
        return read_json(exported)
    path = Path(model_dir) / RUN_INFO
    if not path.is_file():
        return None
    return read_json(path).get(DATA_SHEET_KEY)


def save_run_weights(
    run_dir: str | Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, str]
) -> str:
    """Replace a run's weights and record their SHA-256 in its ``run.json``; returns it.

    For tools that legitimately rewrite the weights of an existing run directory
    (a training run writes its weights, then its run files).
    """
    run_dir = Path(run_dir)
    write_weights(run_dir, state_dict, metadata)
    info = read_json(run_dir / RUN_INFO) if (run_dir / RUN_INFO).is_file() else {}
    return write_run_json(run_dir, info)[WEIGHTS_HASH_KEY]


def write_model_card(folder: str | Path, text: str, model: ModelConfig) -> str:
    """Write ``MODEL_CARD.md``: the stage's ``text`` plus the "Model files" section.

    That section is the same on every card (pretraining, fine-tuning, Triton export):
    the weights' SHA-256 (what the scorer verifies), the pair-feature definition the
    model was trained with, and the files. Written atomically; returns the card.
    """
    folder = Path(folder)
    weights = folder / WEIGHTS
    sha = file_sha256(weights) if weights.is_file() else "(no weights written yet)"
    card = (
        text.rstrip()
        + f"""

## Model files
- `{WEIGHTS}`: SHA-256 `{sha}` (recorded in `{RUN_INFO}` or `{MANIFEST}`; the scorer,
  `finetune --pretrained` and `export` refuse other bytes). Never pickled.
- Pair features: {pair_features_description(model)}.
- `{MODEL_CONFIG}` (hash `{model.hash()}`), `{TOKEN_CONFIG}` (how the inputs are built).
"""
    )
    atomic_write_text(folder / MODEL_CARD, card)
    return card
