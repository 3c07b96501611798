"""Analysis throughput with the jetfm score column over throughput without it.

The same processor (``jetfm_coffea.processors.analysis.ScoreAnalysisProcessor``) runs twice over
the same files in one invocation: without a model (observables only) and with a
``small`` (default) classifier scoring every event and cutting on it. Each
configuration gets a one-chunk warm-up first (imports, model load), then the timed
pass over all files. Reported: events/s, events/s per worker and the ratio
(with / without; the target for ``small`` on CPU is >= 0.5).

    python benchmarks/bench_score.py --size small --executor iterative --out bench_score.json
"""

from __future__ import annotations

import jetfm_coffea  # noqa: F401  # isort: skip  (first: OpenMP's wait policy before torch)

import argparse
import json
import platform
import tempfile
import time
import warnings
from pathlib import Path

import torch
from _common import real_file

from jetfm_coffea.cluster import Execution
from jetfm_coffea.finetune.testing import make_classifier_run
from jetfm_coffea.jobs.execution import run_coffea
from jetfm_coffea.processors.analysis import ScoreAnalysisProcessor
from jetfm_coffea.runtime import resolve_device


def _timed(proc, fileset, args) -> tuple[float, int]:
    execution = Execution(args.executor, workers=args.workers, chunksize=args.chunksize)
    run_coffea(proc, fileset, execution, maxchunks=1, status=False)  # warm-up
    start = time.perf_counter()
    out, _ = run_coffea(proc, fileset, execution, status=False)
    seconds = time.perf_counter() - start
    return seconds, sum(r["cutflow"]["events"] for r in out.values())


def _compute_budget(run: Path, path: str, args, rate_without: float) -> dict:
    """Why the ratio is what it is: the model's FLOPs per event on the file's real tokens
    (matmuls and attention, counted by ``torch.utils.flop_counter``; elementwise work
    not included, so a lower bound) against this CPU's float32 matmul rate with the same
    thread count (an upper bound for any model). The ratio reaches 0.5 only if the model
    costs at most the analysis's own time per event, i.e. runs at
    ``MFLOP/event x events/s without`` or more."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory
    from torch.utils.flop_counter import FlopCounterMode

    from jetfm_coffea.score import JetFMScorer
    from jetfm_coffea.tokens import build_tokens

    scorer = JetFMScorer(run, batch_size=args.batch_size, device="cpu", num_threads=args.threads)
    events = NanoEventsFactory.from_root(
        {path: "Events"}, schemaclass=NanoAODSchema, mode="virtual"
    ).events()
    tok = build_tokens(events, scorer.token_config)
    n = len(tok)
    with FlopCounterMode(display=False) as counter:
        scorer.numpy_call(tok.tokens.reshape(n, -1), tok.mask, tok.event)
    flop_per_event = counter.get_total_flops() / n
    a = torch.randn(1024, 1024)
    a @ a  # warm
    best = min(_matmul_seconds(a) for _ in range(5))
    gflops = 2 * 1024**3 / best / 1e9
    return {
        "mflop_per_event": round(flop_per_event / 1e6, 3),
        "mean_tokens_per_event": round(float(tok.mask.sum(1).mean()), 2),
        "matmul_gflops": round(gflops, 1),
        "gflops_needed_for_half": round(flop_per_event * rate_without / 1e9, 1),
    }


def _matmul_seconds(a: torch.Tensor) -> float:
    start = time.perf_counter()
    a @ a
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "base"])
    parser.add_argument("--files", nargs="*", help="ROOT files (default: 2012 SingleMu 10k)")
    parser.add_argument("--executor", default="iterative", choices=["iterative", "futures"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--chunksize", type=int, default=5_000)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"])
    parser.add_argument(
        "--variations",
        default=None,
        help="also time the column with these variations (e.g. JES,lepton: 4 variations); "
        "reports the cost of scoring relative to the nominal-only column",
    )
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    files = args.files or [str(real_file("Run2012B_SingleMu_10000.root"))]
    fileset = {"bench": {"files": {f: "Events" for f in files}}}
    device = str(resolve_device(args.device))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run = make_classifier_run(Path(tmp) / "run", args.size)
        t_without, n = _timed(ScoreAnalysisProcessor(), fileset, args)
        scored = ScoreAnalysisProcessor(
            run,
            cut=0.5,
            batch_size=args.batch_size,
            device=device,
            num_threads=args.threads,
            precision=args.precision,
            backend=args.backend,
        )
        t_with, n_with = _timed(scored, fileset, args)
        varied = {}
        if args.variations:
            from jetfm_coffea.tokens import standard_variations

            names = args.variations.split(",")
            variations = standard_variations(names)
            with_var = ScoreAnalysisProcessor(
                run,
                cut=0.5,
                batch_size=args.batch_size,
                device=device,
                num_threads=args.threads,
                backend=args.backend,
                variations=variations,
            )
            t_var, _ = _timed(with_var, fileset, args)
            # scoring cost = analysis time with the column minus without, per configuration
            cost = (t_var - t_without) / (t_with - t_without)
            varied = {
                "variations": list(variations),
                "seconds_with_variations": round(t_var, 3),
                "variation_cost_over_nominal": round(cost, 2),
                "variation_cost_limit": 1 + len(variations),
            }
        budget = _compute_budget(run, files[0], args, n / t_without)
    assert n == n_with
    result = {
        "benchmark": "score_column",
        "size": args.size,
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "precision": args.precision,
        "executor": args.executor,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "events": n,
        "seconds_without": round(t_without, 3),
        "seconds_with": round(t_with, 3),
        "events_per_s_without": round(n / t_without, 1),
        "events_per_s_with": round(n / t_with, 1),
        "events_per_s_per_worker_without": round(n / t_without / args.workers, 1),
        "events_per_s_per_worker_with": round(n / t_with / args.workers, 1),
        "ratio": round(t_without / t_with, 3),
        "backend": args.backend,
        **varied,
        **budget,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        "| model | device | executor | workers | events | ev/s without | ev/s with "
        "| ev/s/worker with | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.size} ({args.backend}) | {result['device']} | {args.executor} "
        f"| {args.workers} | {n} "
        f"| {result['events_per_s_without']:.0f} | {result['events_per_s_with']:.0f} "
        f"| {result['events_per_s_per_worker_with']:.0f} | {result['ratio']:.2f} |"
    )
    if varied:
        print(
            f"\nvariations {varied['variations']}: scoring cost "
            f"{varied['variation_cost_over_nominal']:.2f} x nominal "
            f"(limit {varied['variation_cost_limit']})"
        )
    print()
    print("| model | MFLOP/event | matmul GFLOP/s (same threads) | needed for ratio 0.5 |")
    print("|---|---|---|---|")
    print(
        f"| {args.size} | {budget['mflop_per_event']:.2f} | {budget['matmul_gflops']:.0f} "
        f"| {budget['gflops_needed_for_half']:.0f} |"
    )


if __name__ == "__main__":
    main()
