"""Benchmark: re-simulation (``--resim K``) per-copy throughput against bare Pythia 8.

Same process, energy and events-per-copy on one core, in CPU time of this process
(``time.process_time``: robust against other load on a shared machine), Pythia's
initialisations timed separately:

* bare: ``Pythia.nextBatch`` of ``--events`` full events (hard process, shower,
  hadronisation), in batches of 250;
* resim: the hard process of ``--events`` events written once as Les Houches events
  (:func:`~jetfm_coffea.generate.resim.write_hard_events`), then K shower instances
  reading it back (``Beams:frameType = 4``), each ``nextBatch`` over the file.

The per-copy rate is ``K * events / (hard loop + K shower loops)``; the ratio
resim / bare is reported without and with the initialisations (target >= 0.8).
Runs alternate and the fastest of ``--repeats`` is kept.

    python benchmarks/bench_resim.py --process ttbar --events 1000 --resim 4 --out r.json
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_result

from jetfm_coffea.generate import PROCESSES
from jetfm_coffea.generate.processes import pythia_settings
from jetfm_coffea.generate.resim import (
    copy_seed,
    hard_level_settings,
    shower_settings,
    write_hard_events,
)
from jetfm_coffea.generate.run import chunk_seeds, make_pythia


def _loop(pythia: object, n_events: int) -> int:
    done = 0
    while True:
        got = len(pythia.nextBatch(min(250, n_events - done)))  # type: ignore[attr-defined]
        done += got
        if got == 0 or done >= n_events:
            return done


def bare(process: str, n_events: int, sqrts: int, seed: int) -> tuple[float, float]:
    """(init, loop) CPU seconds of bare Pythia."""
    pythia_seed, _ = chunk_seeds(seed, 0)
    start = time.process_time()
    pythia = make_pythia(pythia_settings(PROCESSES[process], sqrts, pythia_seed))
    init = time.process_time() - start
    start = time.process_time()
    assert _loop(pythia, n_events) == n_events
    return init, time.process_time() - start


def resim(process: str, n_events: int, sqrts: int, seed: int, k: int) -> tuple[float, float]:
    """(inits, loops) CPU seconds of the hard level plus ``k`` shower copies."""
    pythia_seed, _ = chunk_seeds(seed, 0)
    settings = pythia_settings(PROCESSES[process], sqrts, pythia_seed)
    init = loop = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        lhef = Path(tmp) / "hard.lhe"
        start = time.process_time()
        hard = make_pythia(hard_level_settings(settings))
        init += time.process_time() - start
        start = time.process_time()
        write_hard_events(hard, n_events, lhef)
        loop += time.process_time() - start
        for copy in range(k):
            start = time.process_time()
            shower = make_pythia(shower_settings(lhef, copy_seed(seed, 0, copy)))
            init += time.process_time() - start
            start = time.process_time()
            got = _loop(shower, n_events)
            loop += time.process_time() - start
            assert got >= n_events - 2, got
    return init, loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process", default="ttbar")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--resim", type=int, default=4)
    parser.add_argument("--sqrts", type=int, default=13000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    bares, resims = [], []
    for _ in range(args.repeats):
        bares.append(bare(args.process, args.events, args.sqrts, args.seed))
        resims.append(resim(args.process, args.events, args.sqrts, args.seed, args.resim))
    b_init, b_loop = min(bares, key=lambda t: t[1])
    r_init, r_loop = min(resims, key=lambda t: t[1])
    n, k = args.events, args.resim
    bare_rate, copy_rate = n / b_loop, n * k / r_loop
    bare_rate_init, copy_rate_init = n / (b_init + b_loop), n * k / (r_init + r_loop)
    result = {
        "benchmark": "resim",
        "process": args.process,
        "events_per_copy": n,
        "copies": k,
        "bare_events_per_cpu_s": bare_rate,
        "resim_copy_events_per_cpu_s": copy_rate,
        "ratio": copy_rate / bare_rate,
        "ratio_with_init": copy_rate_init / bare_rate_init,
        "bare_init_cpu_s": b_init,
        "resim_init_cpu_s": r_init,
        "host": platform.node(),
        "numpy": np.__version__,
    }
    write_result(result, args.out)
    print(
        f"| {args.process} | {n} x {k} | {bare_rate:.1f} | {copy_rate:.1f} | "
        f"{result['ratio']:.2f} | {result['ratio_with_init']:.2f} |"
    )


if __name__ == "__main__":
    main()
