"""The run directory: resolved configs, weights, metrics, model card; and :func:`load_run`.

Layout::

    RUN/config.yaml            resolved PretrainConfig, first line "# hash: <sha256[:16]>"
    RUN/model_config.json      ModelConfig (architecture, feature order, token-config hash)
    RUN/token_config.yaml      TokenConfig of the training data
    RUN/augment_config.yaml    augmentation config (when one was given)
    RUN/model.safetensors      final weights (encoder + heads), metadata: config hashes
    RUN/metrics.jsonl          one JSON object per logged step
    RUN/run.json               status, steps, hashes, data provenance, versions, and
                               ``weights_sha256``: the SHA-256 of model.safetensors
    RUN/MODEL_CARD.md          human summary
    RUN/checkpoints/           resumable checkpoints (see checkpoint.py)

Verified weights: this module owns reading a run's weights. :func:`write_run_files`
records the SHA-256 of the weights file present when it writes ``run.json`` (runs save
their weights first, then their run files), and :func:`read_weights` -- used by
:func:`load_run` and by the scorer and exporter (``jetfm_coffea.score.artifact``) --
reads the bytes once, hashes them and refuses a mismatch with
:class:`~jetfm_coffea.errors.ModifiedWeightsError` unless ``allow_modified`` is given
(the result then says so, for the caller to record).
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load as load_safetensors

from jetfm_coffea import __version__
from jetfm_coffea.errors import ModifiedWeightsError, TrainingError
from jetfm_coffea.model.config import ModelConfig
from jetfm_coffea.model.model import EventModel
from jetfm_coffea.selection.datasheet import DATA_SHEET_KEY, data_sheet_markdown
from jetfm_coffea.tokens.config import TokenConfig, load_token_config
from jetfm_coffea.train.checkpoint import atomic_write_text, safetensors_header, save_weights
from jetfm_coffea.train.config import PretrainConfig, load_pretrain_config

__all__ = [
    "PICKLE_SUFFIXES",
    "WEIGHTS",
    "WEIGHTS_HASH_KEY",
    "RunConfigs",
    "VerifiedWeights",
    "file_sha256",
    "load_run",
    "read_metrics",
    "read_weights",
    "save_run_weights",
    "write_model_card",
    "write_run_files",
]

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
WEIGHTS = "model.safetensors"
WEIGHTS_HASH_KEY = "weights_sha256"  # in run.json


def file_sha256(path: str | Path) -> str:
    """Hexadecimal SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    if recorded is None and path.is_dir() and (path / "run.json").is_file():
        record = path / "run.json"
        try:
            recorded = json.loads(record.read_text()).get(WEIGHTS_HASH_KEY)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise TrainingError(f"{record}: unreadable JSON: {err}") from err
    try:
        data = weights.read_bytes()
    except OSError as err:
        raise TrainingError(f"{weights}: cannot read: {err}") from err
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


@dataclass
class RunConfigs:
    """Everything a run directory records besides the weights."""

    pretrain: PretrainConfig
    model: ModelConfig
    tokens: TokenConfig
    augment: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def write_run_files(run_dir: Path, configs: RunConfigs) -> None:
    """Write the config files and ``run.json`` of a run (rank 0 only)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", configs.pretrain.to_yaml())
    atomic_write_text(
        run_dir / "model_config.json", json.dumps(configs.model.model_dump(mode="json"), indent=1)
    )
    atomic_write_text(
        run_dir / "token_config.yaml",
        f"# hash: {configs.tokens.hash()}\n{configs.tokens.to_yaml()}",
    )
    if configs.augment is not None:
        atomic_write_text(
            run_dir / "augment_config.yaml", yaml.safe_dump(configs.augment, sort_keys=False)
        )
    info = {
        **configs.info,
        "config_hash": configs.pretrain.hash(),
        "model_config_hash": configs.model.hash(),
        "token_config_hash": configs.tokens.hash(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "jetfm_coffea": _version(),
        },
    }
    info.pop(WEIGHTS_HASH_KEY, None)
    if (run_dir / WEIGHTS).is_file():
        info[WEIGHTS_HASH_KEY] = file_sha256(run_dir / WEIGHTS)
    configs.info = info
    atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1, default=str))


def save_run_weights(
    run_dir: Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, str]
) -> str:
    """Replace a run's weights and record their SHA-256 in its ``run.json``; returns it.

    For tools that legitimately rewrite the weights of an existing run directory
    (a training run writes its weights, then :func:`write_run_files`).
    """
    run_dir = Path(run_dir)
    save_weights(run_dir / WEIGHTS, state_dict, metadata)
    sha = file_sha256(run_dir / WEIGHTS)
    path = run_dir / "run.json"
    info = json.loads(path.read_text()) if path.is_file() else {}
    info[WEIGHTS_HASH_KEY] = sha
    atomic_write_text(path, json.dumps(info, indent=1, default=str))
    return sha


def _version() -> str:
    return __version__


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (a torn last line is ignored)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise TrainingError(f"{run_dir} has no metrics.jsonl")
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def write_model_card(run_dir: Path, configs: RunConfigs, n_parameters: int) -> None:
    """Write ``MODEL_CARD.md``: provenance, objective, size, steps."""
    cfg, info = configs.pretrain, configs.info
    obj = cfg.objective
    parts = []
    if obj.uses_contrastive:
        t = f", temperature {obj.temperature}" if obj.contrastive == "ntxent" else ""
        parts.append(
            f"contrastive {obj.contrastive} (weight {obj.contrastive_weight}, "
            f"{obj.n_views} views{t})"
        )
    if obj.masked_weight > 0:
        parts.append(
            f"masked object modelling (weight {obj.masked_weight}, "
            f"{obj.mask_fraction:.0%} of tokens, type CE weight {obj.type_weight})"
        )
    if obj.supervised_weight > 0:
        parts.append(f"supervised auxiliary (weight {obj.supervised_weight})")
    data = info.get("data", {})
    views = info.get("views", {})
    if views.get("mode") in ("fresh", "resim+physics"):
        of = " of the re-simulated siblings" if views["mode"] == "resim+physics" else ""
        parts.append(
            f"fresh physics views{of} every step: {views['n_views']} per event, pipeline "
            f"{' -> '.join(views['steps'])} (hash `{views['pipeline_hash']}`, seed "
            f"{views['seed']}; `augment_config.yaml`)"
        )
    elif views.get("mode") in ("stored", "hook"):
        parts.append(f"views: {views['mode']} {views.get('hook', '(from the shards)')}")
    elif views.get("mode") == "resim":
        parts.append("views: the re-simulated siblings of each hard event (RS3L)")
    m = configs.model
    text = f"""# Model card: jetfm event encoder ({m.size})

## Model
- Transformer over event tokens: {m.layers} blocks, width {m.dim}, {m.heads} heads,
  {m.pooling} pooling, pair-feature attention bias: {m.pair_features}.
- Parameters: {n_parameters:,} (encoder + heads: {", ".join(info.get("heads", []))}).
- Input features: {", ".join(m.feature_names)}; token config hash `{configs.tokens.hash()}`.

## Objective
{chr(10).join("- " + p for p in parts)}

## Training
- Steps: {info.get("steps_done", 0)} of {cfg.train.steps}; batch {cfg.train.batch_size} per rank
  x {info.get("world_size", 1)} rank(s); AdamW lr {cfg.optim.lr}, warm-up
  {cfg.optim.warmup_steps} steps then cosine; precision {info.get("precision", "?")}.
- Status: {info.get("status", "?")}; config hash `{cfg.hash()}`.

## Data provenance
```json
{json.dumps(data, indent=1, default=str)}
```

## Pretraining data sheet
{data_sheet_markdown(info.get(DATA_SHEET_KEY))}

## Intended use and limits
Self-supervised event representation for CMS NanoAOD events with the token
configuration above; fine-tune or probe before using its outputs for physics.
Embeddings of events built with a different token configuration are meaningless
(`load_run` checks the hash).
"""
    atomic_write_text(Path(run_dir) / "MODEL_CARD.md", text)


def load_run(
    run_dir: str | Path,
    *,
    heads: bool = True,
    device: str | torch.device = "cpu",
    allow_modified_weights: bool = False,
) -> tuple[EventModel, RunConfigs]:
    """Load a trained model and its configs from a run directory (safetensors only).

    Pickled weight files are never loaded: a run directory without
    ``model.safetensors`` is refused even if ``.pt``/``.bin`` files are present.
    The weights must have the SHA-256 that ``run.json`` recorded when they were
    written (:func:`read_weights`); ``allow_modified_weights`` loads them anyway and
    says so in the returned ``info["loaded_weights"]`` (``sha256``, ``check``).
    ``heads=False`` returns the bare encoder (heads dropped).
    """
    run_dir = Path(run_dir)
    weights = run_dir / WEIGHTS
    if not weights.is_file():
        pickles = sorted(p.name for p in run_dir.glob("*") if p.suffix in PICKLE_SUFFIXES)
        hint = (
            f"; found {pickles}, which are pickles and are refused (untrusted code execution)"
            if pickles
            else ""
        )
        raise TrainingError(f"{run_dir} has no model.safetensors{hint}")
    try:
        model_cfg = ModelConfig.model_validate_json((run_dir / "model_config.json").read_text())
        pretrain = load_pretrain_config(run_dir / "config.yaml")
        tokens = load_token_config(run_dir / "token_config.yaml")
    except (OSError, ValueError) as err:
        raise TrainingError(f"{run_dir} is not a complete run directory: {err}") from err
    augment = None
    if (run_dir / "augment_config.yaml").is_file():
        augment = yaml.safe_load((run_dir / "augment_config.yaml").read_text())
    info = {}
    if (run_dir / "run.json").is_file():
        info = json.loads((run_dir / "run.json").read_text())
    verified = read_weights(run_dir, allow_modified=allow_modified_weights)
    info["loaded_weights"] = {"sha256": verified.sha256, "check": verified.status}
    _, meta = safetensors_header(verified.data)
    state = load_safetensors(verified.data)
    if meta.get("model_config_hash") not in (None, model_cfg.hash()):
        raise TrainingError(
            f"{weights} was written for model config {meta['model_config_hash']}, "
            f"but model_config.json has hash {model_cfg.hash()}"
        )
    if model_cfg.token_config_hash not in (None, tokens.hash()):
        raise TrainingError(
            f"{run_dir}: model built for token config {model_cfg.token_config_hash}, "
            f"token_config.yaml has {tokens.hash()}"
        )
    head_names = sorted({k.split(".")[1] for k in state if k.startswith("heads.")})
    model = EventModel(model_cfg, heads=head_names)
    model.load_state_dict(state, strict=True)
    if not heads:
        model.drop_heads()
    model.to(device).eval()
    return model, RunConfigs(pretrain, model_cfg, tokens, augment, info)
