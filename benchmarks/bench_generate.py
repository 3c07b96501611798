"""Benchmark: generation + detector + NanoAOD writing against bare Pythia 8, one core.

Both sides generate the same events (same process, energy and seed) on one core:

* bare: ``Pythia.nextBatch`` in batches of 100, nothing else;
* full: :func:`jetfm_coffea.generate.generate` with ``workers=1`` (Pythia, FastJet,
  detector, uproot writing, fileset JSON).

Pythia's initialisation is timed separately and excluded from both rates (the full
run's wall time minus the bare run's init time); the rates including it are reported
too.  Runs alternate and the fastest of ``--repeats`` is kept, which limits the effect of
other load on the machine.  Prints a markdown table row and writes JSON to ``--out``.

    python benchmarks/bench_generate.py --process ttbar --events 500 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from jetfm_coffea.generate import generate, get_process
from jetfm_coffea.generate.processes import pythia_settings
from jetfm_coffea.generate.run import chunk_seeds, make_pythia


def bare_pythia(process: str, n_events: int, sqrts: int, seed: int) -> tuple[float, float]:
    """(init seconds, event-loop seconds) of bare Pythia for the chunk-0 seed of ``seed``."""
    pythia_seed, _ = chunk_seeds(seed, 0)
    settings = pythia_settings(get_process(process), sqrts, pythia_seed)
    start = time.perf_counter()
    pythia = make_pythia(settings)
    init = time.perf_counter() - start
    start = time.perf_counter()
    done = 0
    while done < n_events:
        done += len(pythia.nextBatch(min(100, n_events - done)))
    return init, time.perf_counter() - start


def full_pipeline(process: str, n_events: int, sqrts: int, seed: int) -> float:
    """Wall seconds of ``generate(..., workers=1)`` into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate(process, n_events, sqrts=sqrts, seed=seed, out=tmp, workers=1)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process", default="ttbar")
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--sqrts", type=int, default=13000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="JSON result file")
    args = parser.parse_args()

    inits, bares, fulls = [], [], []
    for _ in range(args.repeats):
        init, loop = bare_pythia(args.process, args.events, args.sqrts, args.seed)
        inits.append(init)
        bares.append(loop)
        fulls.append(full_pipeline(args.process, args.events, args.sqrts, args.seed))
    init, bare, full = min(inits), min(bares), min(fulls)
    full_steady = max(full - init, 1e-9)
    result = {
        "process": args.process,
        "sqrts": args.sqrts,
        "events": args.events,
        "repeats": args.repeats,
        "pythia_init_s": init,
        "bare_events_per_s": args.events / bare,
        "full_events_per_s": args.events / full_steady,
        "ratio": bare / full_steady,
        "bare_events_per_s_incl_init": args.events / (bare + init),
        "full_events_per_s_incl_init": args.events / full,
        "ratio_incl_init": (bare + init) / full,
        "target_ratio": 0.8,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    print("| process | √s [GeV] | events | bare Pythia [ev/s] | full pipeline [ev/s] | ratio |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.process} | {args.sqrts} | {args.events} | {result['bare_events_per_s']:.1f} "
        f"| {result['full_events_per_s']:.1f} | {result['ratio']:.2f} |"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
