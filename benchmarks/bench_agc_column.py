"""The AGC tt̄ analysis with a jetfm score column over the same analysis without it.

The minimal AGC-style column of ``docs/examples/agc_ttbar.py``: the nominal score and
the two jet variations (``pt_scale_up``, ``pt_res_up``) of every event (``--region-only``
adds the row scoring only each variation's 4j2b events), scorer defaults (one torch
thread, scoped), iterative executor, on the shipped NanoAODv5 tt̄ file (``--copies``
datasets of it) and the 2015 AGC input file. ``--busy N`` starts N busy processes
(a Python spin loop each) for the whole measurement, as on a shared login node or a
laptop with one other job; they are ended by their pid at the end. Configurations are
interleaved (best of ``--repeat``), each warmed up once; the ratio is events/s with the
column over events/s without it in the same run (target: >= 0.45 with one busy process
on a 2-core machine).

    python benchmarks/bench_agc_column.py --busy 1 --out benchmarks/results/agc_column.json
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from _common import interleaved, real_file, write_result

from jetfm_coffea.cluster import Execution
from jetfm_coffea.finetune.testing import make_classifier_run
from jetfm_coffea.jobs.execution import run_coffea
from jetfm_coffea.score import JetFMScorer

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "agc_ttbar.py"


def _agc():
    spec = importlib.util.spec_from_file_location("agc_ttbar", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", help="model size (random weights)")
    parser.add_argument("--copies", type=int, default=4, help="datasets of the NanoAODv5 file")
    parser.add_argument("--busy", type=int, default=1, help="busy processes started here")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--region-only", action="store_true", help="also time region-only")
    parser.add_argument("--out")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # end the busy processes too
    agc = _agc()
    fileset = {
        f"ttbar_v5_{i}": {"files": {str(real_file("NanoAODv5_ttbar_1000.root")): "Events"}}
        for i in range(args.copies)
    }
    fileset["ttbar_2015"] = {
        "files": {str(real_file("nanoAOD_2015_CMS_Open_Data_ttbar.root")): "Events"}
    }
    n_events = 1000 * args.copies + 200
    threads_before = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        run = make_classifier_run(Path(tmp) / "run", args.size, seed=0)
        scorer = JetFMScorer(run, device="cpu")  # defaults: one thread, scoped
        procs = {
            "without": agc.TtbarScoreAnalysis(),
            "with_all_events": agc.TtbarScoreAnalysis(scorer, region_only=False),
        }
        if args.region_only:
            procs["with_region_only"] = agc.TtbarScoreAnalysis(scorer)

        def runner(proc):
            return lambda: run_coffea(
                proc,
                fileset,
                Execution(executor="iterative", chunksize=args.chunksize),
                status=False,
            )

        busy = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
        ]
        try:
            load_start = os.getloadavg()[0]
            for proc in procs.values():  # warm-up: imports, model load, file cache
                runner(proc)()
            best = interleaved({k: runner(p) for k, p in procs.items()}, repeat=args.repeat)
            load_end = os.getloadavg()[0]
        finally:
            for p in busy:
                p.terminate()
                p.wait()
    rates = {k: n_events / s for k, s in best.items()}
    result = {
        "benchmark": "agc_column",
        "model": args.size,
        "events": n_events,
        "executor": "iterative",
        "busy_processes": args.busy,
        "cpus": os.cpu_count(),
        "loadavg_1min": [round(load_start, 2), round(load_end, 2)],
        "seconds": {k: round(v, 4) for k, v in best.items()},
        "events_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ratio": {k: round(rates[k] / rates["without"], 3) for k in rates if k != "without"},
        "torch_threads_unchanged": torch.get_num_threads() == threads_before,
        "torch_threads": threads_before,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
