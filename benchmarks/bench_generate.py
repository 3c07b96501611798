"""Benchmark: generation + detector + NanoAOD writing against bare Pythia 8, one core.

Both sides generate the same events (same process, energy and seed) on one core:

* bare: ``Pythia.nextBatch`` in batches of 100, nothing else;
* full: :func:`jetfm_coffea.generate.generate` with ``workers=1`` (Pythia, FastJet,
  detector, uproot writing, fileset JSON).

Pythia's initialisation is timed separately and excluded from both rates (the full
run's time minus the bare run's init time); the rates including it are reported too.
Rates are measured in CPU time of this process (``time.process_time``: one core, and
robust against other load on a shared machine) and, for reference, in wall time.  Runs
alternate and the fastest of ``--repeats`` is kept.  Prints a markdown table row and
writes JSON to ``--out``.

    python benchmarks/bench_generate.py --process ttbar --events 500 --out bench.json

With ``--workers N`` (N > 1) it measures parallel generation instead, per core: bare
Pythia in N spawned processes (each its chunk's seed and share of the events, the pool
started before the clock) against ``generate(..., execution=Execution(executor, workers=N))``,
both in wall time, so the ratio is "events per second per core of the full pipeline / of bare
Pythia" under the same load (the full side includes its own pool start-up and Pythia
initialisations, the bare side its initialisations).  The target is >= 0.8.

    python benchmarks/bench_generate.py --workers 16 --executor dask --events 20000
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from jetfm_coffea.cluster import Execution
from jetfm_coffea.generate import PROCESSES, generate
from jetfm_coffea.generate.processes import pythia_settings
from jetfm_coffea.generate.run import chunk_seeds, make_pythia


def _now() -> np.ndarray:
    return np.array([time.process_time(), time.perf_counter()])


def bare_pythia(
    process: str, n_events: int, sqrts: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(init, event loop) [cpu, wall] seconds of bare Pythia with the chunk-0 seed."""
    pythia_seed, _ = chunk_seeds(seed, 0)
    settings = pythia_settings(PROCESSES[process], sqrts, pythia_seed)
    start = _now()
    pythia = make_pythia(settings)
    init = _now() - start
    start = _now()
    done = 0
    while done < n_events:
        done += len(pythia.nextBatch(min(250, n_events - done)))
    return init, _now() - start


def full_pipeline(process: str, n_events: int, sqrts: int, seed: int) -> np.ndarray:
    """[cpu, wall] seconds of ``generate(...)`` (one worker) into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        start = _now()
        generate(process, n_events, sqrts=sqrts, seed=seed, out=tmp)
        return _now() - start


def _bare_chunk(args: tuple[str, int, int, int, int]) -> int:
    """Bare Pythia for one chunk (its own seed), initialisation included; returns events."""
    process, n_events, sqrts, seed, chunk = args
    pythia_seed, _ = chunk_seeds(seed, chunk)
    pythia = make_pythia(pythia_settings(PROCESSES[process], sqrts, pythia_seed))
    done = 0
    while done < n_events:
        done += len(pythia.nextBatch(min(250, n_events - done)))
    return done


def _ready(_: int) -> int:
    return 0


def bare_parallel(process: str, n_events: int, sqrts: int, seed: int, workers: int) -> float:
    """Wall seconds of bare Pythia spread over ``workers`` processes (pool already up)."""
    sizes = [n_events // workers + (i < n_events % workers) for i in range(workers)]
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        list(pool.map(_ready, range(workers)))
        start = time.perf_counter()
        list(pool.map(_bare_chunk, [(process, k, sqrts, seed, i) for i, k in enumerate(sizes)]))
        return time.perf_counter() - start


def full_parallel(
    process: str, n_events: int, sqrts: int, seed: int, workers: int, executor: str
) -> float:
    """Wall seconds of ``generate(..., workers, executor)`` into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate(process, n_events, sqrts=sqrts, seed=seed, out=tmp,
                 execution=Execution(executor, workers=workers))  # fmt: skip
        return time.perf_counter() - start


def parallel_main(args: argparse.Namespace) -> None:
    bares, fulls = [], []
    for _ in range(args.repeats):
        bares.append(bare_parallel(args.process, args.events, args.sqrts, args.seed, args.workers))
        fulls.append(
            full_parallel(
                args.process, args.events, args.sqrts, args.seed, args.workers, args.executor
            )
        )
    bare, full = min(bares), min(fulls)
    n, w = args.events, args.workers
    result = {
        "process": args.process,
        "sqrts": args.sqrts,
        "events": n,
        "workers": w,
        "executor": args.executor,
        "repeats": args.repeats,
        "bare_events_per_s_per_core": n / bare / w,
        "full_events_per_s_per_core": n / full / w,
        "ratio": bare / full,
        "target_ratio": 0.8,
        "clock": "wall time, both sides in the same number of processes",
        "cpu_count": mp.cpu_count(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    print("| process | events | workers | executor | bare [ev/s/core] | full [ev/s/core] | ratio |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.process} | {n} | {w} | {args.executor} "
        f"| {result['bare_events_per_s_per_core']:.1f} "
        f"| {result['full_events_per_s_per_core']:.1f} | {result['ratio']:.2f} |"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process", default="ttbar")
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--sqrts", type=int, default=13000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="JSON result file")
    parser.add_argument("--workers", type=int, default=1, help=">1: parallel, per core")
    parser.add_argument("--executor", default="futures", choices=["futures", "dask"])
    args = parser.parse_args()
    if args.workers > 1:
        parallel_main(args)
        return

    inits, bares, fulls = [], [], []
    for _ in range(args.repeats):
        init, loop = bare_pythia(args.process, args.events, args.sqrts, args.seed)
        inits.append(init)
        bares.append(loop)
        fulls.append(full_pipeline(args.process, args.events, args.sqrts, args.seed))
    init, bare, full = (np.min(np.array(x), axis=0) for x in (inits, bares, fulls))
    steady = np.maximum(full - init, 1e-9)
    n = args.events
    result = {
        "process": args.process,
        "sqrts": args.sqrts,
        "events": n,
        "repeats": args.repeats,
        "pythia_init_cpu_s": init[0],
        "bare_events_per_s": n / bare[0],
        "full_events_per_s": n / steady[0],
        "ratio": bare[0] / steady[0],
        "ratio_incl_init": (bare[0] + init[0]) / full[0],
        "wall_bare_events_per_s": n / bare[1],
        "wall_full_events_per_s": n / max(full[1] - init[1], 1e-9),
        "wall_ratio": bare[1] / max(full[1] - init[1], 1e-9),
        "clock": "process CPU time (one core); wall_* for reference",
        "target_ratio": 0.8,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    print(
        "| process | √s [GeV] | events | bare Pythia [ev/s CPU] | full pipeline [ev/s CPU] "
        "| ratio | ratio incl. init | wall ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.process} | {args.sqrts} | {n} | {result['bare_events_per_s']:.1f} "
        f"| {result['full_events_per_s']:.1f} | {result['ratio']:.2f} "
        f"| {result['ratio_incl_init']:.2f} | {result['wall_ratio']:.2f} |"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
