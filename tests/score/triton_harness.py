"""Start a real Triton server (the one bundled with ``nvidia-pytriton``) serving a
``jetfm export --format triton`` repository: for the Triton tests and the benchmark.

pytriton needs numpy < 2, so the server runs from a virtual environment of its own,
built once into ``~/.cache/jetfm-triton-venv`` (override with ``JETFM_TRITON_VENV``);
``triton_server.py`` serves every model of the repository by running its
``1/model.onnx`` with onnxruntime in a Python callable (the bundled server has only
the Python backend). :func:`serve` raises :class:`TritonUnavailable` saying why when the
environment cannot be built or the server does not start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

VENV = Path(os.environ.get("JETFM_TRITON_VENV", Path.home() / ".cache" / "jetfm-triton-venv"))
SERVER_SCRIPT = Path(__file__).with_name("triton_server.py")
VENV_PACKAGES = ["nvidia-pytriton", "numpy<2", "onnxruntime"]


class TritonUnavailable(RuntimeError):
    """The Triton environment cannot be built or its server does not start here."""


def venv_python() -> Path:
    """The cached environment's python, building it on first use (minutes, once)."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import pytriton.triton, onnxruntime, numpy"]
    if python.is_file() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"\nbuilding the Triton test environment in {VENV} (once; a few minutes)", flush=True)
    tmp = VENV.with_name(VENV.name + f".build-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", str(tmp)],
        [str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", *VENV_PACKAGES],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise TritonUnavailable(
                f"cannot build the Triton environment ({' '.join(step)}): {done.stderr}"
            )
    shutil.rmtree(VENV, ignore_errors=True)
    tmp.rename(VENV)  # the venv's python is a symlink to the base: it survives the rename
    return python


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@contextlib.contextmanager
def serve(repo: Path, timeout_s: float = 180) -> Iterator[str]:
    """``triton+grpc://127.0.0.1:PORT``: a real Triton server serving ``repo``."""
    import tritonclient.grpc as tritonclient

    python = venv_python()
    grpc, http, metrics = free_ports(3)
    env = dict(os.environ)
    # the Python backend stub links libpython3.x.so: take the one of the venv's interpreter
    libdir = sysconfig.get_config_var("LIBDIR")
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (libdir, env.get("LD_LIBRARY_PATH")) if p)
    log = repo.parent / "triton.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(python), str(SERVER_SCRIPT), str(repo), str(grpc), str(http), str(metrics)],
            stdin=subprocess.PIPE,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    client = tritonclient.InferenceServerClient(f"127.0.0.1:{grpc}")
    models = [d.name for d in repo.iterdir()]
    deadline = time.monotonic() + timeout_s
    ready = False
    while not ready and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
        with contextlib.suppress(tritonclient.InferenceServerException):
            ready = all(client.is_model_ready(name) for name in models)
    client.close()
    if not ready:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        tail = log.read_text()[-3000:]
        raise TritonUnavailable(f"the bundled Triton server did not start on this machine:\n{tail}")
    try:
        yield f"triton+grpc://127.0.0.1:{grpc}"
    finally:
        proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
