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
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import awkward as ak
import numpy as np
from coffea.ml_tools.helper import nonserializable_attribute, numpy_call_wrapper

from jetfm_coffea.errors import ConfigError, MissingCollectionError
from jetfm_coffea.model.packing import length_batches
from jetfm_coffea.runtime import precision_context, resolve_device, resolve_precision
from jetfm_coffea.score.artifact import ModelInfo, load_model, read_model_info, weights_to_carry
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
from jetfm_coffea.tokens.fields import ID_FIELDS

__all__ = [
    "JetFMScorer",
    "count_nonfinite",
    "scoped_torch_threads",
    "score_fields",
]

_MODEL_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()
#: Scoring precisions: explicit only ("auto" would hide which arithmetic made a column).
SCORING_PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")


@contextmanager
def scoped_torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads, then restore the previous
    count (None: leave it). The process-wide setting is never changed for good."""
    if threads is None or "torch" not in sys.modules:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


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
        torch (or ONNX Runtime) intra-op threads of the forward pass on CPU. ``"auto"``
        (default): 1 everywhere -- in the main process as in a dask or Runner worker --
        so that a column never oversubscribes a loaded machine (one worker, one core)
        and the same event gets the same score bit for bit in every executor (the
        thread count changes float sums in the last bit). An int asks for that many.
        The setting is scoped: the process-wide ``torch.get_num_threads()`` is set for
        the forward pass only and restored after it, so the rest of an analysis keeps
        its own.
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
    carry_weights
        Carry the weights' bytes inside the scorer (``pickle`` sends them to every
        remote worker with the processor): no shared filesystem is needed. The bytes
        are read now, checked against the model hash, checked again on each worker
        before safetensors deserialises them, and the model is built once per worker
        process (cached by hash). Default False: each worker reads the weights from
        the model directory, at the same absolute path. Torch backend only.
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
        carry_weights: bool = False,
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
                f"{bare} have no scored head (such as a classification or regression head; "
                "a pretrained encoder?): fine-tune it, "
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
        if any(v.has_arrays() for v in self.variations.values()):
            raise ConfigError(
                "per-object factor arrays belong to one chunk of events: pass such "
                "variations when scoring, scorer(events, variations={...})"
            )
        if carry_weights and (servers or backend != "torch"):
            raise ConfigError("carry_weights=True carries torch weights: not with a server or ONNX")
        self.carried: tuple[bytes, ...] | None = (
            tuple(weights_to_carry(i) for i in self.infos) if carry_weights else None
        )
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

    @property
    def required_branches(self) -> list[str]:
        """The NanoAOD branches the scores need (for a skim or a ServiceX request).

        The event ids, then per collection of the token config its counter (``nJet``)
        and kinematics, charge and ID-cut branches. The b-tag branch is optional (see
        :attr:`optional_branches`); optional collections are left out.
        """
        out = list(ID_FIELDS)
        for spec in self.token_config.collections:
            if spec.optional:
                continue
            out += _collection_branches(spec)
        return out

    @property
    def optional_branches(self) -> list[str]:
        """Branches read when present: b-tag scores (first present wins) and the
        branches of optional collections."""
        out = []
        for spec in self.token_config.collections:
            out += [f"{spec.name}_{b}" for b in spec.btag_branches]
            if spec.optional:
                out += _collection_branches(spec)
        return out

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
        device = str(resolve_device(self.device))
        threads = self._threads()
        if self.backend == "onnxruntime":
            with _CACHE_LOCK:
                for info in self.infos:
                    key = (info.model_hash, f"onnxruntime:{threads}")
                    if key not in _MODEL_CACHE:
                        _MODEL_CACHE[key] = OnnxRuntimeModel(info, threads)
                return [_MODEL_CACHE[(i.model_hash, f"onnxruntime:{threads}")] for i in self.infos]
        models = []
        carried = self.carried or (None,) * len(self.infos)
        with _CACHE_LOCK:
            for info, data in zip(self.infos, carried, strict=True):
                key = (info.model_hash, device)
                if key not in _MODEL_CACHE:
                    _MODEL_CACHE[key] = load_model(info, device, data)
                models.append(_MODEL_CACHE[key])
        return models

    def _threads(self) -> int | None:
        """Intra-op threads of the forward pass: ``num_threads``, ``"auto"`` = 1."""
        if self.num_threads is None:
            return None
        return 1 if self.num_threads == "auto" else int(self.num_threads)

    # -- numpy_call_wrapper interface ----------------------------------------------------

    def prepare_awkward(
        self, events: Any, mask: Any = None, variations: Mapping[str, Any] | None = None
    ) -> tuple[tuple, dict]:
        """Tokens through the shared token path, per scored set (nominal, then each
        variation): ``tokens [N, T*F]``, ``mask [N, T]``, ``scored [N]`` (the events
        scored), with the event numbers after the nominal's."""
        self._check_inputs(events)
        variations = self.variations if variations is None else load_variations(variations)
        selections = {} if mask is None else _selections(mask, ["nominal", *variations], events)
        arrays = []
        for name, variation in (("nominal", None), *variations.items()):
            sel = selections.get(name)
            tokens, tmask = self._set_tokens(events, variation, sel)
            arrays += [tokens, tmask]
            if variation is None:
                arrays.append(events["event"])
            arrays.append(_all_true(events["event"]) if sel is None else sel)
        return tuple(arrays), {"names": tuple(variations)}

    def _set_tokens(self, events: Any, variation: Any, sel: np.ndarray | None) -> tuple[Any, Any]:
        """``(tokens, mask)`` of all events; with ``sel``, built for the selected events
        only (the others: no tokens, not scored)."""
        cfg = self.token_config
        width = cfg.n_tokens * len(cfg.features)
        if sel is None or sel.all():
            record = build_tokens(events, cfg, variation)
            if isinstance(record, EventTokens):
                return record.tokens.reshape(len(record), width), record.mask
            return record["tokens"], record["mask"]
        tokens = np.zeros((len(events), width), np.float32)
        tmask = np.zeros((len(events), cfg.n_tokens), bool)
        if sel.any():
            varied = None if variation is None else variation.select(sel)
            part = build_tokens(events[sel], cfg, varied)
            tokens[sel] = part.tokens.reshape(len(part), width)
            tmask[sel] = part.mask
        return tokens, tmask

    def _check_inputs(self, events: Any) -> None:
        """The event record with every branch the model needs: one error listing all."""
        names = " + ".join(i.path for i in self.infos)
        fields = list(getattr(events, "fields", None) or [])
        collections = [c.name for c in self.token_config.collections]
        if "pt" in fields and not set(collections) & set(fields):
            raise ScoreInputError.wrong_input(names, _source_name(events), fields, collections)
        missing = _missing_inputs(events, self.token_config)
        if missing:
            raise ScoreInputError.missing_branches(names, _source_name(events), missing)
        try:
            check_collections(events, self.token_config)  # warns of optional collections
        except MissingCollectionError as err:  # pragma: no cover - _missing_inputs saw it
            raise ScoreInputError(names, err) from err

    def validate_numpy_input(self, *arrays: Any, names: tuple[str, ...] = ()) -> None:
        f = len(self.token_config.features)
        event = arrays[2]
        n = len(event)
        sets = [(arrays[0], arrays[1], arrays[3])]
        rest = arrays[4:]
        sets += [tuple(rest[3 * i : 3 * i + 3]) for i in range(len(rest) // 3)]
        if len(sets) != len(names) + 1 or len(rest) % 3:
            raise ValueError(f"{len(arrays)} token arrays for {len(names)} variations")
        for tok, msk, scored in sets:
            t = msk.shape[1] if msk.ndim == 2 else -1
            if (
                t != self.token_config.n_tokens
                or tok.shape != (n, t * f)
                or len(msk) != n
                or len(scored) != n
            ):
                raise ValueError(
                    f"token input of shape {tok.shape}, mask {msk.shape}, event {event.shape} "
                    f"do not match the token config ({self.token_config.n_tokens} tokens x {f})"
                )

    def numpy_call(self, *arrays: np.ndarray, names: tuple[str, ...] = ()) -> ak.Array:
        """Score one chunk of numpy tokens (and its variations); returns the record array."""
        params = self.parameters()
        tokens, mask, event, scored = arrays[:4]
        rest = arrays[4:]
        columns = self._columns(
            tokens, mask, event, params, embedding=self.want_embedding, scored=scored
        )
        if names:
            columns["variations"] = ak.zip(
                {
                    name: ak.zip(
                        self._columns(
                            rest[3 * i], rest[3 * i + 1], event, params, False, rest[3 * i + 2]
                        ),
                        depth_limit=1,
                    )
                    for i, name in enumerate(names)
                },
                depth_limit=1,
            )
        return ak.zip(columns, depth_limit=1, parameters=params)

    def _columns(
        self,
        tokens: Any,
        mask: Any,
        event: Any,
        params: dict[str, Any],
        embedding: bool,
        scored: Any = None,
    ) -> dict[str, ak.Array]:
        n = len(mask)
        cfg = self.token_config
        tokens = np.asarray(tokens, np.float32).reshape(n, cfg.n_tokens, len(cfg.features))
        mask = np.asarray(mask, bool)
        scored = np.ones(n, bool) if scored is None else np.asarray(scored, bool)
        outputs = self._forward(tokens, mask, np.asarray(event), scored)
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
        self, tokens: np.ndarray, mask: np.ndarray, event: np.ndarray, scored: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Model outputs of the ``scored`` events; the others get NaN."""
        n = len(mask)
        info = self.infos[0]
        out = {
            "scores": np.zeros((n, len(self.class_names)), np.float32),
            "embedding": np.zeros((n, info.embedding_dim), np.float32),
        }
        if not scored.all():
            out["scores"][~scored] = np.nan
            out["embedding"][~scored] = np.nan
        if not scored.any():
            return out
        models = self.model
        with scoped_torch_threads(None if self.servers else self._threads()):
            self._forward_models(models, out, tokens, mask, event, scored)
        return out

    def _forward_models(
        self,
        models: list[Any],
        out: dict[str, np.ndarray],
        tokens: np.ndarray,
        mask: np.ndarray,
        event: np.ndarray,
        scored: np.ndarray,
    ) -> None:
        n = len(mask)
        k = len(models)
        fold = np.zeros(n, np.int64) if k == 1 else np.asarray(event, np.int64) % k
        fold = np.where(scored, fold, -1)
        for i, model in enumerate(models):
            batch_size = min(
                self.batch_size, getattr(model, "max_batch_size", None) or self.batch_size
            )
            # one group per token count, cut to it: no padding is computed at all
            for sel, width in length_batches(mask, batch_size, select=fold == i):
                self._fill(out, sel, model, tokens, mask, width)

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
                info = self.infos[0]
                outputs = model.heads[info.score_head](emb).float()
                probs = info.scored.activation(outputs).cpu().numpy()
            emb_np = emb.float().cpu().numpy() if self.want_embedding else None
        return probs, emb_np

    def postprocess_awkward(self, return_array: Any, *args: Any, **kwargs: Any) -> Any:
        """Dask: coffea unpacks the record into a dict of fields; zip it back, with parameters."""
        if isinstance(return_array, dict):
            import dask_awkward as dak

            return dak.zip(return_array, depth_limit=1, parameters=self.parameters())
        return return_array

    def __call__(
        self, events: Any, *, mask: Any = None, variations: Mapping[str, Any] | None = None
    ) -> Any:
        """Score NanoEvents (eager, virtual or dask-awkward); returns a record array.

        ``events`` is the event record as read (every collection of
        :attr:`required_branches`), not a collection nor already-selected objects: the
        model sees the objects its token config selects, as in training.

        Fields: the scored head's columns (``score_<class>``, the softmax probabilities
        of a classifier; those registered with the head otherwise, see
        :class:`jetfm_coffea.model.ScoredOutputs`), ``embedding`` (when asked for) and
        ``n_tokens`` (tokens the model saw; events with none get the model's
        response to an empty event). Each carries the model hash and version in its
        awkward parameters.

        ``mask``: score only the selected events -- a boolean array (the nominal and
        every variation), or ``{"nominal": sel, "<variation>": sel_up, ...}`` (each
        set its own selection, e.g. the events a region selects under that
        variation; a set not named is scored for every event). The others get NaN
        scores and ``n_tokens`` 0; the result stays aligned with ``events``. Tokens
        and forward passes are computed for the selected events only.

        ``variations``: this chunk's variations, replacing the constructor's
        (``{name: Variation}``; needed for per-object factor arrays, which belong to
        one chunk).
        """
        if mask is None and variations is None:
            return super().__call__(events)
        return super().__call__(events, mask=mask, variations=variations)


def _all_true(ids: Any) -> Any:
    """True per event, lazily for dask-awkward."""
    if _is_dask(ids):
        import dask_awkward as dak

        return dak.ones_like(ids, dtype=bool)
    return ak.ones_like(ids, dtype=bool)


def _selections(mask: Any, names: list[str], events: Any) -> dict[str, np.ndarray]:
    """Per scored set (``nominal``, variations), its boolean selection (absent: all)."""
    if _is_dask(events) or ak.backend(events) == "typetracer":
        raise ConfigError(
            "score masks need eager or virtual events (Runner); in dask mode score "
            "events[mask] instead"
        )
    n = len(events)
    if isinstance(mask, Mapping):
        unknown = sorted(set(mask) - set(names))
        if unknown:
            raise ConfigError(f"mask for {unknown}: the scored sets are {names}")
        return {name: _bool_mask(m, n, name) for name, m in mask.items()}
    sel = _bool_mask(mask, n, "mask")
    return dict.fromkeys(names, sel)


def _bool_mask(mask: Any, n: int, name: str) -> np.ndarray:
    sel = np.asarray(ak.to_numpy(mask) if isinstance(mask, ak.Array) else mask)
    if sel.dtype != bool or sel.shape != (n,):
        raise ConfigError(f"score mask {name!r}: {sel.dtype}{list(sel.shape)}, not bool[{n}]")
    return sel


def _collection_branches(spec: Any) -> list[str]:
    """NanoAOD branches of one collection of the token config (without the b-tag)."""
    names = ["pt", "phi"] if spec.kind == "met" else ["pt", "eta", "phi", "mass"]
    if spec.has_charge:
        names.append("charge")
    names += [c.branch for c in spec.cuts if c.branch not in names]
    counter = [] if spec.kind == "met" else [f"n{spec.name}"]
    return counter + [f"{spec.name}_{n}" for n in names]


def _fields_of(events: Any, name: str) -> list[str]:
    """The fields of a collection, also when its behaviour refuses it (a MET without phi)."""
    try:
        return list(events[name].fields)
    except ValueError:
        return list(ak.Array(ak.to_layout(events)).layout.content(name).fields)


def _missing_inputs(events: Any, config: Any) -> list[str]:
    """Every branch of the token config the events lack (optional collections aside)."""
    present = set(events.fields)
    missing = [name for name in ID_FIELDS if name not in present]
    for spec in config.collections:
        if spec.optional:
            continue
        branches = _collection_branches(spec)[0 if spec.kind == "met" else 1 :]
        if spec.name not in present:
            missing += branches
            continue
        have = set(_fields_of(events, spec.name))
        missing += [b for b in branches if b[len(spec.name) + 1 :] not in have]
    return missing


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
