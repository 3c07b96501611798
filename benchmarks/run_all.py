"""Run every benchmark and write the table the README shows.

    python benchmarks/run_all.py [--out benchmarks/results] [--quick]

Each benchmark measures its own baseline in the same process (a bare uproot read, bare
Pythia, the same analysis without the score column, ...) and reports a ratio, because
these machines are shared and noisy. The JSON of each lands in ``--out``; the markdown
lines each script prints are collected into ``--out/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, list[str]] = {
    "tokens": ["bench_tokens.py"],
    "augment": ["bench_augment.py", "--events", "100000"],
    "shards": ["bench_shards.py"],
    "generate": ["bench_generate.py", "--events", "500"],
    "pretrain": ["bench_pretrain.py", "--store-events", "50000", "--workers", "2"],
    "finetune": ["bench_finetune.py", "--sizes", "tiny"],
    "score": ["bench_score.py", "--size", "small"],
}
QUICK: dict[str, list[str]] = {
    "augment": ["--events", "20000", "--repeats", "2"],
    "shards": ["--repeat", "1", "--repeats-in-big-file", "2"],
    "generate": ["--events", "200", "--repeats", "1"],
    "pretrain": ["--steps", "3", "--warmup", "1", "--sizes", "tiny", "--repeat", "1"],
    "finetune": ["--labels", "200", "--epochs", "1"],
    "score": ["--size", "tiny"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sections, failed = [], []
    for name, command in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        extra = QUICK.get(name, []) if args.quick else []
        cmd = [sys.executable, str(HERE / command[0]), *command[1:], *extra]
        cmd += ["--out", str(args.out / f"{name}.json")]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
        if proc.returncode:
            failed.append(name)
            table = [f"failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"]
        sections.append(f"### {name} ({seconds:.0f} s)\n\n" + "\n".join(table) + "\n")
        print("\n".join(table), flush=True)
    results = args.out / "RESULTS.md"
    results.write_text("\n".join(sections))
    print(f"wrote {results}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
