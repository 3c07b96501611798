"""Classifier scores and event embeddings as coffea analysis columns.

>>> scorer = JetFMScorer("runs/ttbar-vs-qcd")            # doctest: +SKIP
>>> scores = scorer(events)                              # doctest: +SKIP
>>> selected = events[scores.score_ttbar > 0.8]          # doctest: +SKIP

``JetFMScorer`` is a :class:`coffea.ml_tools.numpy_call_wrapper`: the same object
scores eager or virtual NanoEvents (one numpy call per chunk) and dask-awkward
NanoEvents (one ``map_partitions`` layer, computed wherever the partition lives). The
torch model is a :class:`coffea.ml_tools.helper.nonserializable_attribute`: it is
never pickled with the scorer and is built on first use in each process, once per
process (a module-level cache keyed by model hash and device), so Runner executors
that unpickle the processor for every chunk do not reload it.

Inputs are built by :func:`jetfm_coffea.tokens.build_tokens`, the function the shard
builder uses, so a model sees exactly the tensors it was trained on.

Keep the scores as their own array
----------------------------------
``scores = scorer(events)`` returns a record array aligned with ``events``. Use it
directly (``events[scores.score_sig > cut]``, ``hist.fill(score=scores.score_sig)``)
rather than writing ``events["JetFM"] = scores`` early in a processor: in dask mode
assigning a field makes a new ``events`` collection whose every column depends on the
model layer, so every later computation on ``events`` -- even a plain jet-pT sum --
carries (and may re-run) the model. If you do want the field in ``events``, assign it
last, after the other columns have been taken from the original ``events``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import awkward as ak
import numpy as np
from coffea.ml_tools.helper import nonserializable_attribute, numpy_call_wrapper

from jetfm_coffea.errors import ConfigError, MissingCollectionError
from jetfm_coffea.model.packing import length_batches
from jetfm_coffea.runtime import precision_context, resolve_precision
from jetfm_coffea.score.artifact import ModelInfo, load_model, read_model_info
from jetfm_coffea.score.errors import ScoreInputError
from jetfm_coffea.score.onnx_runtime import OnnxRuntimeModel
from jetfm_coffea.score.triton import TritonModel, TritonTarget, parse_server
from jetfm_coffea.tokens import (
    EventTokens,
    Variation,
    build_tokens,
    check_collections,
    load_variations,
)

__all__ = ["JetFMScorer", "count_nonfinite", "resolve_device", "score_fields"]

_MODEL_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()
#: Scoring precisions: explicit only ("auto" would hide which arithmetic made a column).
SCORING_PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")


def resolve_device(device: str = "auto") -> str:
    """``"auto"``: ``"cuda:0"`` when a CUDA device is visible, else ``"cpu"`` (one process).

    The rules are :func:`jetfm_coffea.runtime.resolve_device`'s.
    """
    from jetfm_coffea.runtime import resolve_device as resolve

    return str(resolve(device))


def _in_worker() -> bool:
    """True inside a dask worker or a child process (a Runner futures pool)."""
    if multiprocessing.parent_process() is not None:
        return True
    distributed = sys.modules.get("distributed")  # a dask worker has it imported already
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def score_fields(class_names: Sequence[str]) -> list[str]:
    """Record field of each class score: ``score_<class>``."""
    return [f"score_{name}" for name in class_names]


def _is_dask(array: Any) -> bool:
    return type(array).__module__.startswith("dask_awkward")


class JetFMScorer(numpy_call_wrapper, nonserializable_attribute):
    """Per-event classifier scores (softmax) and, on request, event embeddings.

    Parameters
    ----------
    model
        A scoring model directory (training run or export), or a sequence of ``k``
        directories for k-fold scoring: ``model[i]`` scores the events with
        ``event % k == i`` and must have been trained without them (with two folds:
        the model trained on odd event numbers comes first, then the one trained on
        even event numbers).
    embedding
        Also return the event embedding ``[N, D]`` as field ``embedding``.
    scores
        Return the class scores (needs a classification head).
    batch_size
        Events per forward pass; bounds the memory of any chunk size. Events are sorted
        by token count and each micro-batch is cut to its longest event, so padding
        costs nothing.
    device
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    num_threads
        torch intra-op threads in the process that runs the model. ``"auto"``: 1 inside
        a dask worker or a Runner worker process (one model per worker, no
        oversubscription), torch's default in the main process. An int forces it.
    precision
        ``"fp32"`` (default: every device, TF32 off, so CPU and GPU scores agree within
        1e-5), ``"tf32"`` or ``"bf16"`` (explicit only: faster on GPUs; bf16 scores differ
        from fp32 by up to ~1e-2). The arithmetic lives in :mod:`jetfm_coffea.runtime`.
    expected_hash
        Refuse a model whose weights SHA-256 differs (prefix of at least 12 hex digits;
        a sequence for k-fold).
    allow_modified_weights
        Score with weights whose SHA-256 differs from the one their run directory
        recorded when it wrote them (refused by default, with
        :class:`~jetfm_coffea.errors.ModifiedWeightsError`); every column then carries
        ``jetfm_weights_check: "modified"``.
    backend
        ``"torch"`` (default; the same scores on every device within 1e-5) or
        ``"onnxruntime"`` (CPU: the model's ONNX in an ONNX Runtime session, ~1.6x
        faster for ``tiny``; scores differ from torch's by up to ~5e-4, see
        :mod:`jetfm_coffea.score.onnx_runtime`).
    variations
        Also score systematically varied inputs: ``{name: Variation or spec}`` (see
        :mod:`jetfm_coffea.tokens.variations`; :func:`~jetfm_coffea.tokens.standard_variations`
        gives ``JES_up``, ``JES_down``, ``JER_*``, ``lepton_*``, ``unclustered_*``).
        The tokens of each are built by the same token path, MET propagated; the
        result gets a field ``variations`` with one record per variation holding the
        same score fields: ``scores.variations["JES_up"].score_signal`` (and
        ``n_tokens``). Costs one more forward pass per variation.
    server
        Score through an NVIDIA Triton server instead of in-process:
        ``"triton+grpc://host:port/name"`` (one per model for k-fold) serving the
        ``jetfm export --format triton`` of ``model``. Tokens, micro-batches (capped
        at the server's ``max_batch_size``) and folds are the same as in-process; the
        served model must carry the local model's hash (checked now and on every
        worker); transient failures are retried ``server_retries`` times.
    """

    def __init__(
        self,
        model: str | Path | Sequence[str | Path],
        *,
        embedding: bool = False,
        scores: bool = True,
        batch_size: int = 2048,
        device: str = "auto",
        num_threads: int | Literal["auto"] | None = "auto",
        precision: Literal["fp32", "tf32", "bf16"] = "fp32",
        expected_hash: str | Sequence[str] | None = None,
        allow_modified_weights: bool = False,
        server: str | Sequence[str] | None = None,
        server_retries: int = 3,
        variations: Mapping[str, Any] | None = None,
        backend: Literal["torch", "onnxruntime"] = "torch",
    ):
        numpy_call_wrapper.__init__(self)
        paths = [model] if isinstance(model, str | Path) else list(model)
        if not paths:
            raise ConfigError("JetFMScorer needs at least one model directory")
        hashes = (
            [expected_hash] * len(paths)
            if expected_hash is None or isinstance(expected_hash, str)
            else list(expected_hash)
        )
        if len(hashes) != len(paths):
            raise ConfigError(f"{len(hashes)} expected hashes for {len(paths)} models")
        self.infos: tuple[ModelInfo, ...] = tuple(
            read_model_info(p, h, allow_modified_weights=allow_modified_weights)
            for p, h in zip(paths, hashes, strict=True)
        )
        first = self.infos[0]
        for info in self.infos[1:]:
            if info.token_config.hash() != first.token_config.hash():
                raise ConfigError(
                    f"k-fold models need one token config: {first.path} has "
                    f"{first.token_config.hash()}, {info.path} has {info.token_config.hash()}"
                )
            if info.class_names != first.class_names or info.embedding_dim != first.embedding_dim:
                raise ConfigError(
                    f"k-fold models disagree on classes or embedding size: {first.path}, "
                    f"{info.path}"
                )
        if scores and not all(i.score_head for i in self.infos):
            bare = [i.path for i in self.infos if not i.score_head]
            raise ConfigError(
                f"{bare} have no classification head nor a regression head (a pretrained "
                "encoder?): fine-tune it, "
                "or score with scores=False, embedding=True"
            )
        if not (scores or embedding):
            raise ConfigError("nothing to compute: ask for scores, embedding or both")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, not {batch_size}")
        servers = [server] if isinstance(server, str) else list(server or [])
        if servers and len(servers) != len(paths):
            raise ConfigError(f"{len(servers)} servers for {len(paths)} models")
        try:
            self.servers: tuple[TritonTarget, ...] = tuple(parse_server(s) for s in servers)
        except ValueError as err:
            raise ConfigError(str(err)) from err
        self.server_retries = int(server_retries)
        if backend not in ("torch", "onnxruntime"):
            raise ConfigError(f"backend {backend!r} is not 'torch' or 'onnxruntime'")
        self.backend = backend
        if precision not in SCORING_PRECISIONS:
            raise ConfigError(
                f"unknown precision {precision!r}; choose from {list(SCORING_PRECISIONS)}"
            )
        if precision in ("bf16", "tf32") and (backend != "torch" or servers):
            raise ConfigError(
                f"precision={precision!r} is a torch option; ONNX Runtime and Triton run the "
                "float32 ONNX"
            )
        self.variations: dict[str, Variation] = load_variations(variations)
        for target, info in zip(self.servers, self.infos, strict=bool(self.servers)):
            self._connect(target, info).close()  # unreachable or another model: fail now
        self.want_scores = scores
        self.want_embedding = embedding
        self.batch_size = int(batch_size)
        self.device = device
        self.num_threads = num_threads
        self.precision = precision
        nonserializable_attribute.__init__(self, ["model"])

    # -- properties ---------------------------------------------------------------------

    @property
    def token_config(self) -> Any:
        """The token configuration the model(s) were trained on."""
        return self.infos[0].token_config

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.infos[0].class_names

    @property
    def k_folds(self) -> int:
        return len(self.infos)

    @property
    def model_hash(self) -> str:
        """SHA-256 of the weights (k-fold: SHA-256 of the folds' hashes, in order)."""
        if len(self.infos) == 1:
            return self.infos[0].model_hash
        joined = ",".join(i.model_hash for i in self.infos)
        return hashlib.sha256(joined.encode()).hexdigest()

    @property
    def fields(self) -> list[str]:
        """Fields of the returned record array."""
        out = list(self.infos[0].columns) if self.want_scores else []
        if self.want_embedding:
            out.append("embedding")
        out.append("n_tokens")
        return [*out, "variations"] if self.variations else out

    def parameters(self) -> dict[str, Any]:
        """Awkward parameters recorded on the record array and on each of its fields."""
        params: dict[str, Any] = dict(self.infos[0].parameters())
        params["jetfm_model_hash"] = self.model_hash
        params["jetfm_precision"] = self.precision
        params["jetfm_backend"] = self.backend
        if self.servers:
            params["jetfm_server"] = ",".join(str(t) for t in self.servers)
        checks = {i.weights_check for i in self.infos}
        params["jetfm_weights_check"] = "modified" if "modified" in checks else min(checks)
        if len(self.infos) > 1:
            params["jetfm_fold_hashes"] = [i.model_hash for i in self.infos]
            params["jetfm_model_version"] = ",".join(i.model_version for i in self.infos)
        return params

    def __getstate__(self) -> dict:
        state = nonserializable_attribute.__getstate__(self)
        state.pop("_delayed_wrapper", None)  # coffea's dask.delayed(self), rebuilt on use
        return state

    def check_files(self, fileset: Any) -> None:
        """Open every file of a fileset (or one path) and check the collections the model needs.

        Raises :class:`ScoreInputError` naming the model, the collection and the file,
        before any chunk is processed (Runner would otherwise retry the failing chunk).
        """

        from coffea.nanoevents import NanoEventsFactory

        from jetfm_coffea.fileset import load_fileset
        from jetfm_coffea.nanoevents import JetFMNanoAODSchema

        for spec in load_fileset(fileset).values():
            for path, tree in spec["files"].items():
                events = NanoEventsFactory.from_root(  # the schema is quiet about slim files
                    {path: tree},
                    schemaclass=JetFMNanoAODSchema,
                    mode="virtual",
                    entry_stop=1,
                    metadata={"filename": path},
                ).events()
                self.prepare_awkward(events[:0])

    # -- model (per process) -------------------------------------------------------------

    def _connect(self, target: TritonTarget, info: ModelInfo) -> TritonModel:
        return TritonModel(target, info.model_hash, retries=self.server_retries)

    def _create_model(self) -> list[Any]:
        if self.servers:  # one client per process and server, checked on connection
            with _CACHE_LOCK:
                for target, info in zip(self.servers, self.infos, strict=True):
                    key = (info.model_hash, str(target))
                    if key not in _MODEL_CACHE:
                        _MODEL_CACHE[key] = self._connect(target, info)
                return [
                    _MODEL_CACHE[(i.model_hash, str(t))]
                    for t, i in zip(self.servers, self.infos, strict=True)
                ]
        import torch

        device = resolve_device(self.device)
        threads = self.num_threads
        if threads == "auto":
            threads = 1 if _in_worker() and device == "cpu" else None
        if self.backend == "onnxruntime":
            with _CACHE_LOCK:
                for info in self.infos:
                    key = (info.model_hash, f"onnxruntime:{threads}")
                    if key not in _MODEL_CACHE:
                        _MODEL_CACHE[key] = OnnxRuntimeModel(info, threads)
                return [_MODEL_CACHE[(i.model_hash, f"onnxruntime:{threads}")] for i in self.infos]
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(int(threads))
        models = []
        with _CACHE_LOCK:
            for info in self.infos:
                key = (info.model_hash, device)
                if key not in _MODEL_CACHE:
                    _MODEL_CACHE[key] = load_model(info, device)
                models.append(_MODEL_CACHE[key])
        return models

    # -- numpy_call_wrapper interface ----------------------------------------------------

    def prepare_awkward(self, events: Any) -> tuple[tuple, dict]:
        """Tokens through the shared token path: ``(tokens [N, T*F], mask [N, T], event)``,
        then ``(tokens, mask)`` of each variation."""
        try:
            check_collections(events, self.token_config)
        except MissingCollectionError as err:
            names = " + ".join(i.path for i in self.infos)
            if err.path is None:
                err = MissingCollectionError(err.collection, _source_name(events), err.missing)
            raise ScoreInputError(names, err) from err
        arrays = []
        for variation in (None, *self.variations.values()):
            record = build_tokens(events, self.token_config, variation)
            if isinstance(record, EventTokens):
                record = record.to_awkward()
            arrays += [record["tokens"], record["mask"]]
            if variation is None:
                arrays.append(record["event"])
        return tuple(arrays), {}

    def validate_numpy_input(self, tokens: Any, mask: Any, event: Any, *varied: Any) -> None:
        f = len(self.token_config.features)
        n = len(event)
        pairs = [(tokens, mask), *zip(varied[::2], varied[1::2], strict=True)]
        for tok, msk in pairs:
            t = msk.shape[1] if msk.ndim == 2 else -1
            if t != self.token_config.n_tokens or tok.shape != (n, t * f) or len(msk) != n:
                raise ValueError(
                    f"token input of shape {tok.shape}, mask {msk.shape}, event {event.shape} "
                    f"do not match the token config ({self.token_config.n_tokens} tokens x {f})"
                )

    def numpy_call(
        self, tokens: np.ndarray, mask: np.ndarray, event: np.ndarray, *varied: np.ndarray
    ) -> ak.Array:
        """Score one chunk of numpy tokens (and its variations); returns the record array."""
        params = self.parameters()
        columns = self._columns(tokens, mask, event, params, embedding=self.want_embedding)
        if self.variations:
            columns["variations"] = ak.zip(
                {
                    name: ak.zip(
                        self._columns(varied[2 * i], varied[2 * i + 1], event, params, False),
                        depth_limit=1,
                    )
                    for i, name in enumerate(self.variations)
                },
                depth_limit=1,
            )
        return ak.zip(columns, depth_limit=1, parameters=params)

    def _columns(
        self, tokens: Any, mask: Any, event: Any, params: dict[str, Any], embedding: bool
    ) -> dict[str, ak.Array]:
        n = len(mask)
        cfg = self.token_config
        tokens = np.asarray(tokens, np.float32).reshape(n, cfg.n_tokens, len(cfg.features))
        mask = np.asarray(mask, bool)
        outputs = self._forward(tokens, mask, np.asarray(event))
        columns: dict[str, ak.Array] = {}
        if self.want_scores:
            probs = outputs["scores"]
            for j, name in enumerate(self.infos[0].columns):
                columns[name] = _with_params(probs[:, j], params)
        if embedding:
            columns["embedding"] = _with_params(outputs["embedding"], params)
        columns["n_tokens"] = ak.Array(mask.sum(axis=1).astype(np.int32))
        return columns

    def _forward(
        self, tokens: np.ndarray, mask: np.ndarray, event: np.ndarray
    ) -> dict[str, np.ndarray]:
        n = len(mask)
        info = self.infos[0]
        out = {
            "scores": np.zeros((n, len(self.class_names)), np.float32),
            "embedding": np.zeros((n, info.embedding_dim), np.float32),
        }
        if n == 0:
            return out
        models = self.model
        k = len(models)
        fold = np.zeros(n, np.int64) if k == 1 else np.asarray(event, np.int64) % k
        for i, model in enumerate(models):
            batch_size = min(
                self.batch_size, getattr(model, "max_batch_size", None) or self.batch_size
            )
            # one group per token count, cut to it: no padding is computed at all
            for sel, width in length_batches(mask, batch_size, select=fold == i):
                self._fill(out, sel, model, tokens, mask, width)
        return out

    def _fill(
        self,
        out: dict[str, np.ndarray],
        sel: np.ndarray,
        model: Any,
        tokens: np.ndarray,
        mask: np.ndarray,
        t: int,
    ) -> None:
        probs, emb = self._run(model, tokens[sel, :t], mask[sel, :t])
        if probs is not None:
            out["scores"][sel] = probs
        if emb is not None:
            out["embedding"][sel] = emb

    def _run(
        self, model: Any, tokens: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if isinstance(model, TritonModel | OnnxRuntimeModel):
            probs, emb = model.infer(tokens, mask)
            return (probs if self.want_scores else None), (emb if self.want_embedding else None)
        import torch

        device = next(model.parameters()).device
        precision = resolve_precision(self.precision, device, "inference")
        x = torch.from_numpy(np.ascontiguousarray(tokens)).to(device, non_blocking=True)
        m = torch.from_numpy(np.ascontiguousarray(mask)).to(device, non_blocking=True)
        with torch.inference_mode(), precision_context(precision, device):
            emb = model.encoder(x, m).embedding
            probs = None
            if self.want_scores:
                head = self.infos[0].score_head
                outputs = model.heads[head](emb).float()  # regressor: value, width
                if head == "classifier":
                    outputs = torch.softmax(outputs, dim=-1)
                probs = outputs.cpu().numpy()
            emb_np = emb.float().cpu().numpy() if self.want_embedding else None
        return probs, emb_np

    def postprocess_awkward(self, return_array: Any, *args: Any, **kwargs: Any) -> Any:
        """Dask: coffea unpacks the record into a dict of fields; zip it back, with parameters."""
        if isinstance(return_array, dict):
            import dask_awkward as dak

            return dak.zip(return_array, depth_limit=1, parameters=self.parameters())
        return return_array

    def __call__(self, events: Any) -> Any:
        """Score NanoEvents (eager, virtual or dask-awkward); returns a record array.

        Fields: ``score_<class>`` (softmax probabilities), ``embedding`` (when asked
        for) and ``n_tokens`` (tokens the model saw; events with none get the model's
        response to an empty event). Each carries the model hash and version in its
        awkward parameters.
        """
        return super().__call__(events)


def _source_name(events: Any) -> str | None:
    """The file (or dataset) events come from, for error messages."""
    meta = getattr(events, "metadata", None) or {}
    if meta.get("filename"):
        return str(meta["filename"])
    try:  # NanoEventsFactory.from_root(...).events() outside a Runner
        return str(events.attrs["@events_factory"].file_handle.file_path)
    except (AttributeError, KeyError, TypeError):
        pass
    return f"dataset {meta['dataset']}" if meta.get("dataset") else None


def _with_params(values: np.ndarray, params: dict[str, Any]) -> ak.Array:
    layout = ak.from_numpy(values, regulararray=True, highlevel=False)
    return ak.Array(layout.copy(parameters={**(layout.parameters or {}), **params}))


def count_nonfinite(scores: Any) -> Any:
    """Events with any non-finite nominal score or embedding value (an int, lazy for dask)."""
    lib: Any = ak
    if _is_dask(scores):
        import dask_awkward as lib  # type: ignore[no-redef]
    bad = None
    for name in scores.fields:
        if name in ("n_tokens", "variations"):
            continue
        col = scores[name]
        finite = np.isfinite(col)
        if col.ndim > 1:
            finite = lib.all(finite, axis=1)
        bad = ~finite if bad is None else bad | ~finite
    return lib.sum(bad, axis=0)
