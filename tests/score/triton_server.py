"""Serve every model of a ``jetfm export --format triton`` repository with a real Triton
server (the one bundled with ``nvidia-pytriton``), for the Triton tests.

Runs in its own virtual environment (pytriton needs numpy < 2; no jetfm, no torch):
``python triton_server.py REPO GRPC_PORT HTTP_PORT METRICS_PORT``. pytriton's server has
only the Python backend, so each model is a Python callable that runs the repository's
``1/model.onnx`` with onnxruntime; its Triton config takes ``max_batch_size``, the
preferred batch sizes and the ``parameters`` (the model hash) from the repository's
``config.pbtxt``. Prints ``READY`` when every model is loaded; exits when stdin closes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.models import model as pytriton_model
from pytriton.triton import Triton, TritonConfig


def read_config(path: Path) -> dict:
    """The fields of a jetfm ``config.pbtxt`` this server needs."""
    text = path.read_text()
    dims = re.findall(r'name: "(\w+)" data_type: (\w+) dims: \[ ([-\d, ]+) \]', text)
    return {
        "max_batch_size": int(re.search(r"max_batch_size: (\d+)", text).group(1)),
        "preferred": [
            int(v)
            for v in re.search(r"preferred_batch_size: \[ ([\d, ]+) \]", text).group(1).split(",")
        ],
        "delay": int(re.search(r"max_queue_delay_microseconds: (\d+)", text).group(1)),
        "dims": {name: tuple(int(v) for v in d.split(",")) for name, _, d in dims},
        "parameters": dict(re.findall(r'key: "(\w+)" value: \{ string_value: "([^"]*)" \}', text)),
    }


def make_infer(onnx: Path):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])

    @batch
    def infer(tokens: np.ndarray, mask: np.ndarray) -> dict:
        scores, embedding = session.run(None, {"tokens": tokens, "mask": mask.astype(bool)})
        return {"scores": scores, "embedding": embedding}

    return infer


def main() -> None:
    repo = Path(sys.argv[1])
    grpc_port, http_port, metrics_port = (int(v) for v in sys.argv[2:5])
    configs = {d.name: read_config(d / "config.pbtxt") for d in sorted(repo.iterdir())}

    original = pytriton_model.Model._get_triton_model_config

    def with_parameters(self):  # pytriton's ModelConfig has no `parameters`; add them
        config = original(self)
        config.backend_parameters.update(configs[self.model_name]["parameters"])
        return config

    pytriton_model.Model._get_triton_model_config = with_parameters
    server = TritonConfig(
        grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port, log_verbose=0
    )
    with Triton(config=server) as triton:
        for name, cfg in configs.items():
            dims = cfg["dims"]
            triton.bind(
                model_name=name,
                infer_func=make_infer(repo / name / "1" / "model.onnx"),
                inputs=[
                    Tensor(name="tokens", dtype=np.float32, shape=dims["tokens"]),
                    Tensor(name="mask", dtype=np.bool_, shape=dims["mask"]),
                ],
                outputs=[
                    Tensor(name="scores", dtype=np.float32, shape=dims["scores"]),
                    Tensor(name="embedding", dtype=np.float32, shape=dims["embedding"]),
                ],
                config=ModelConfig(
                    max_batch_size=cfg["max_batch_size"],
                    batcher=DynamicBatcher(
                        preferred_batch_size=cfg["preferred"],
                        max_queue_delay_microseconds=cfg["delay"],
                    ),
                ),
                strict=True,
            )
        triton.run()
        print("READY", flush=True)
        sys.stdin.read()  # until the test closes the pipe


if __name__ == "__main__":
    main()
