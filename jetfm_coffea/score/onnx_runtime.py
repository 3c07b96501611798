"""In-process scoring with ONNX Runtime: the CPU speed option of the scorer.

``JetFMScorer(model, backend="onnxruntime")`` runs the model's ONNX (the export's
``model.onnx`` when the model directory has one, its SHA-256 checked against the
manifest; otherwise the ONNX traced from the verified weights at load, in memory)
with one ONNX Runtime session per process, on the same micro-batches as torch.
Measured on the 2-core development CPU (``benchmarks/bench_score.py``) it runs the
``tiny`` model ~1.6x faster than torch; its scores and embeddings equal torch's within
1e-5 on real events (tested): the pair features are computed without float32
cancellation (``pair_version`` 2; a model trained with the legacy definition 1 moves
by up to ~4e-4 between the two runtimes). Torch stays the default backend.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from jetfm_coffea.errors import ModelFileError
from jetfm_coffea.score.artifact import ModelInfo, load_model
from jetfm_coffea.score.formats import ONNX, ScoringModule, example_inputs, write_onnx

__all__ = ["OnnxRuntimeModel"]


class OnnxRuntimeModel:
    """The scoring model of ``info`` as an ONNX Runtime session; :meth:`infer` scores."""

    def __init__(self, info: ModelInfo, threads: int | None = None):
        from jetfm_coffea._optional import import_optional

        ort = import_optional("onnxruntime", extra="onnx")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # pool threads wait asleep instead of spinning: on a CPU shared with other
        # processes (the analysis's own workers) spinning steals their cores (issue 27)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            _onnx_bytes(info), options, providers=["CPUExecutionProvider"]
        )
        self.max_batch_size = None

    def infer(self, tokens: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``[B, C]`` and embeddings ``[B, D]`` of one micro-batch."""
        feed = {
            "tokens": np.ascontiguousarray(tokens, np.float32),
            "mask": np.ascontiguousarray(mask),
        }
        scores, embedding = self.session.run(["scores", "embedding"], feed)
        return scores, embedding


def _onnx_bytes(info: ModelInfo) -> bytes:
    """The export's verified ``model.onnx``, or the ONNX traced from the verified weights."""
    entry = (info.manifest or {}).get("files", {}).get(ONNX)
    if entry is not None:
        path = Path(info.path) / ONNX
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ModelFileError(str(path), "SHA-256 changed since the manifest was checked")
        return data
    buffer = io.BytesIO()
    write_onnx(ScoringModule(load_model(info, "cpu")).eval(), example_inputs(info), buffer)
    return buffer.getvalue()
