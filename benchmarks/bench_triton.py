"""Triton round-trip overhead per event: scoring through a Triton server vs in-process.

Exports a classifier (``tiny`` by default) as a Triton repository, starts the Triton
server bundled with ``nvidia-pytriton`` (``tests/score/triton_harness.py``: its own
cached virtualenv; the server runs the repository's ``1/model.onnx`` with onnxruntime,
one thread) and scores the same tokens (2012 SingleMu, 10k events) three ways in one
run, interleaved, best of ``--repeats``: in-process torch, in-process onnxruntime on
the same ONNX, and through the server over gRPC. Overhead per event = (Triton -
in-process onnxruntime) / events: the cost of serialisation, gRPC and the server's
batching, the model work being equal; the ratio Triton / in-process onnxruntime is the
same comparison as a rate ratio measured in one run. Server and client share this
machine's cores.

    python benchmarks/bench_triton.py --size tiny --out bench_triton.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from jetfm_coffea.finetune.testing import make_classifier_run
from jetfm_coffea.model.packing import length_batches
from jetfm_coffea.score import JetFMScorer
from jetfm_coffea.score.export import export_model
from jetfm_coffea.tokens import build_tokens

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.score.triton_harness
from _common import interleaved, real_file

from tests.score.triton_harness import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    path = real_file("Run2012B_SingleMu_10000.root")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

        run = make_classifier_run(Path(tmp) / "run", args.size)
        folder = export_model(run, Path(tmp) / "repo", formats=("triton",))
        events = NanoEventsFactory.from_root(
            {str(path): "Events"}, schemaclass=NanoAODSchema, mode="virtual"
        ).events()
        opts = {"batch_size": args.batch_size, "num_threads": 1}
        tok = build_tokens(events, JetFMScorer(run).token_config)
        n = len(tok)
        inputs = (tok.tokens.reshape(n, -1), tok.mask, tok.event)
        requests = sum(1 for _ in length_batches(tok.mask, args.batch_size))
        with serve(folder.parent) as url:
            scorers = {
                "torch": JetFMScorer(run, **opts),
                "onnxruntime": JetFMScorer(folder, backend="onnxruntime", **opts),
                "triton": JetFMScorer(folder, server=f"{url}/{folder.name}", **opts),
            }
            for scorer in scorers.values():  # warm-up: load the model / connect
                scorer.numpy_call(*(a[:64] for a in inputs))
            best = interleaved(
                {k: (lambda s=s: s.numpy_call(*inputs)) for k, s in scorers.items()},
                repeat=args.repeats,
            )
        t_torch, t_ort, t_triton = best["torch"], best["onnxruntime"], best["triton"]
    result = {
        "benchmark": "triton_round_trip",
        "size": args.size,
        "events": n,
        "requests": requests,
        "seconds_torch": round(t_torch, 4),
        "seconds_onnxruntime": round(t_ort, 4),
        "seconds_triton": round(t_triton, 4),
        "ratio_triton_to_onnxruntime": round(t_triton / t_ort, 3),
        "overhead_us_per_event": round((t_triton - t_ort) / n * 1e6, 2),
        "overhead_ms_per_request": round((t_triton - t_ort) / requests * 1e3, 3),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        "| model | events | requests | torch s | onnxruntime s | Triton s "
        "| Triton / onnxruntime | overhead/event |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.size} | {n} | {requests} | {t_torch:.3f} | {t_ort:.3f} | {t_triton:.3f} "
        f"| {result['ratio_triton_to_onnxruntime']:.2f} "
        f"| {result['overhead_us_per_event']:.1f} µs ({result['overhead_ms_per_request']:.2f} "
        "ms/request) |"
    )


if __name__ == "__main__":
    main()
