"""NVIDIA Triton: model repositories for ``jetfm export --format triton``, and the client
that :class:`~jetfm_coffea.score.JetFMScorer` uses with ``server="triton+grpc://..."``.

A Triton model repository written by the ``triton`` exporter (:mod:`.exporters`)::

    REPO/<name>/config.pbtxt      platform onnxruntime_onnx; inputs tokens [-1, -1, F]
                                  float32 and mask [-1, -1] bool (dynamic batch and token
                                  axes), outputs scores [-1, C] and embedding [-1, D];
                                  dynamic batching with preferred batch sizes; the model
                                  hash and token-config hash as ``parameters``
    REPO/<name>/1/model.onnx      the conformance-tested ONNX (same bytes as model.onnx)
    REPO/<name>/manifest.json     the export manifest (SHA-256 of every file), beside
    REPO/<name>/token_config.yaml   the token config clients build the inputs with,
    REPO/<name>/MODEL_CARD.md       and a model card; model.safetensors, model_config.json

Triton reads ``config.pbtxt`` and the numbered version folders and ignores the rest;
the folder is also a jetfm export (``JetFMScorer(REPO/<name>)`` scores in-process).

The client (:class:`TritonModel`) sends the scorer's micro-batches -- the same tokens
from :func:`jetfm_coffea.tokens.build_tokens`, cut to the longest event of the batch --
over gRPC with ``tritonclient``, retries transient failures, and refuses a server
whose model carries another ``jetfm_model_hash`` than the local model directory.
"""

from __future__ import annotations

import atexit
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from jetfm_coffea.score.errors import ScoringServerError

__all__ = [
    "SCHEME",
    "TRITON_CONFIG",
    "TritonModel",
    "TritonTarget",
    "parse_server",
    "triton_config_text",
    "triton_model_card",
]

SCHEME = "triton+grpc"
TRITON_CONFIG = "config.pbtxt"
TRITON_ONNX = "1/model.onnx"
HASH_PARAMETER = "jetfm_model_hash"
PREFERRED_BATCH_SIZES = (256, 1024)
MAX_BATCH_SIZE = 4096
MAX_QUEUE_DELAY_US = 500


@dataclass(frozen=True)
class TritonTarget:
    """``triton+grpc://host:port/model[/version]`` split into its parts."""

    url: str  # host:port
    model: str
    version: str = ""

    def __str__(self) -> str:
        version = f"/{self.version}" if self.version else ""
        return f"{SCHEME}://{self.url}/{self.model}{version}"


def parse_server(server: str) -> TritonTarget:
    """Parse ``triton+grpc://host:port/model[/version]``; ValueError naming what is wrong."""
    parts = urlsplit(server)
    path = [p for p in parts.path.split("/") if p]
    if parts.scheme != SCHEME or not parts.netloc or not 1 <= len(path) <= 2:
        raise ValueError(
            f"server {server!r} is not {SCHEME}://HOST:PORT/MODEL[/VERSION] "
            "(e.g. triton+grpc://localhost:8001/jetfm)"
        )
    if parts.port is None:
        raise ValueError(f"server {server!r} has no port (Triton's gRPC port is 8001 by default)")
    return TritonTarget(parts.netloc, path[0], path[1] if len(path) == 2 else "")


# -- the repository (export side) -----------------------------------------------------------


def triton_config_text(
    name: str,
    n_features: int,
    n_classes: int,
    dim: int,
    parameters: dict[str, str],
    max_batch_size: int = MAX_BATCH_SIZE,
    preferred_batch_sizes: tuple[int, ...] = PREFERRED_BATCH_SIZES,
) -> str:
    """``config.pbtxt`` (Triton's ModelConfig protobuf, text format) for the ONNX model.

    With ``max_batch_size > 0`` Triton prepends the batch axis to ``dims``: tokens
    are ``[-1, -1, F]`` (batch, tokens, features), mask ``[-1, -1]``.
    """
    params = "\n".join(
        f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}'
        for k, v in sorted(parameters.items())
    )
    fitting = [b for b in preferred_batch_sizes if b <= max_batch_size] or [max_batch_size]
    preferred = ", ".join(str(b) for b in fitting)
    return f"""name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch_size}
input [
  {{ name: "tokens" data_type: TYPE_FP32 dims: [ -1, {n_features} ] }},
  {{ name: "mask" data_type: TYPE_BOOL dims: [ -1 ] }}
]
output [
  {{ name: "scores" data_type: TYPE_FP32 dims: [ {n_classes} ] }},
  {{ name: "embedding" data_type: TYPE_FP32 dims: [ {dim} ] }}
]
dynamic_batching {{
  preferred_batch_size: [ {preferred} ]
  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}
}}
version_policy: {{ latest: {{ num_versions: 1 }} }}
{params}
"""


def triton_model_card(name: str, manifest: dict[str, Any], label: str) -> str:
    """``MODEL_CARD.md`` text of a Triton model: what it takes, returns and how to call it
    (written by :func:`jetfm_coffea.model.rundir.write_model_card`, which adds the
    "Model files" section every card has). ``label`` names the scored head's kind
    (:attr:`jetfm_coffea.model.ScoredOutputs.label`, e.g. ``classifier``)."""
    features = ", ".join(manifest["feature_names"])
    classes = ", ".join(manifest["class_names"])
    scores = manifest["outputs"][0]["description"]
    return f"""# {name}: jetfm event {label} for NVIDIA Triton

- Model hash (SHA-256 of model.safetensors): `{manifest["model_hash"]}`
  (config.pbtxt parameter `{HASH_PARAMETER}`; clients refuse another hash)
- Version: {manifest["model_version"]}; token config hash `{manifest["token_config_hash"]}`
- Inputs: `tokens` float32 [batch, tokens, {len(manifest["feature_names"])}]
  ({features}), `mask` bool [batch, tokens]; both axes dynamic (at most
  {manifest["n_tokens"]} tokens). Build them with `jetfm_coffea.tokens.build_tokens`
  and `token_config.yaml` in this folder; padding slots are zero, valid tokens first.
- Outputs: `scores` float32 [batch, {len(manifest["class_names"])}] ({scores}:
  {classes}), `embedding` float32 [batch, D].
- Serve: `tritonserver --model-repository REPO` (onnxruntime backend). Score from coffea:
  `JetFMScorer("REPO/{name}", server="triton+grpc://HOST:8001/{name}")`.
"""


# -- the client ------------------------------------------------------------------------------


class TritonModel:
    """A model served by Triton, called like the in-process scoring module.

    ``TritonModel(target, expected_hash)`` connects (retrying), checks that the
    served model is ready and carries ``jetfm_model_hash == expected_hash``, and
    reads its ``max_batch_size``. :meth:`infer` sends one micro-batch.
    """

    def __init__(
        self,
        target: TritonTarget,
        expected_hash: str,
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 60.0,
    ):
        from jetfm_coffea._optional import import_optional

        self.grpc = import_optional("tritonclient.grpc", extra="triton", package="tritonclient")
        self.target = target
        self.expected_hash = expected_hash
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.timeout_s = float(timeout_s)
        self.client = self.grpc.InferenceServerClient(url=target.url)
        _OPEN.add(self)
        config = self._call("read the model config", self._model_config)
        served = config.get("parameters", {}).get(HASH_PARAMETER, {}).get("string_value")
        if served is None:
            raise ScoringServerError(
                str(target), f"the served model has no {HASH_PARAMETER} parameter in its config"
            )
        if served != expected_hash:
            raise ScoringServerError(
                str(target),
                f"serves model hash {served}, not {expected_hash} of the local model "
                "directory: refusing to score with a different model",
            )
        self.max_batch_size = int(config.get("max_batch_size", 0)) or None

    def _model_config(self) -> dict[str, Any]:
        if not self.client.is_model_ready(self.target.model, self.target.version):
            raise ConnectionError(f"model {self.target.model!r} is not ready on the server")
        return self.client.get_model_config(
            self.target.model, self.target.version, as_json=True, client_timeout=self.timeout_s
        )["config"]

    def _call(self, what: str, func: Any) -> Any:
        """``func()`` with retries on connection errors; ScoringServerError after the last."""
        exc_type = self.grpc.InferenceServerException
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                return func()
            except (exc_type, ConnectionError, OSError) as err:
                last = err
                if attempt < self.retries:
                    time.sleep(self.backoff_s * 2**attempt)
        reason = str(last).strip() or type(last).__name__
        raise ScoringServerError(
            str(self.target),
            f"could not {what} after {self.retries + 1} attempts (unreachable?): {reason}",
        ) from last

    def infer(self, tokens: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``[B, C]`` and embeddings ``[B, D]`` of one micro-batch."""
        grpc = self.grpc
        x = grpc.InferInput("tokens", list(tokens.shape), "FP32")
        x.set_data_from_numpy(np.ascontiguousarray(tokens, np.float32))
        m = grpc.InferInput("mask", list(mask.shape), "BOOL")
        m.set_data_from_numpy(np.ascontiguousarray(mask, bool))
        outputs = [grpc.InferRequestedOutput("scores"), grpc.InferRequestedOutput("embedding")]

        def send() -> Any:
            return self.client.infer(
                self.target.model,
                [x, m],
                model_version=self.target.version,
                outputs=outputs,
                client_timeout=self.timeout_s,
            )

        result = self._call(f"score {len(mask)} events", send)
        return result.as_numpy("scores"), result.as_numpy("embedding")

    def close(self) -> None:
        """Close the connection now (idempotent). Dropping the gRPC client here, while the
        interpreter is whole, keeps its ``__del__`` from failing noisily at exit."""
        if self.client is not None:
            self.client.close()
            self.client = None
        _OPEN.discard(self)


#: Connections still open: closed at interpreter exit (cached per worker by the scorer).
_OPEN: weakref.WeakSet[TritonModel] = weakref.WeakSet()


@atexit.register
def _close_open_connections() -> None:
    for model in list(_OPEN):
        model.close()


def onnx_path(model_dir: str | Path) -> Path:
    """Where a Triton model folder keeps the ONNX Triton loads."""
    return Path(model_dir) / TRITON_ONNX
