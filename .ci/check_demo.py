"""CI check of a ``jetfm demo`` run: real 2012 collision data in the shards, a quiet stderr.

Usage: python .ci/check_demo.py WORKDIR STDERR_FILE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REAL = "data2012_singlemu"


def main(workdir: Path, stderr: Path) -> int:
    problems = []
    generated = json.loads((workdir / "1-generate" / ".done.json").read_text())["outputs"]
    real = generated.get("real_data") or {}
    if not real.get("events") or "Run2012B_SingleMu_10000.root" not in real.get("file", ""):
        problems.append(f"the demo did not read the real 2012 SingleMu file: {real}")
    manifest = json.loads((workdir / "2-shards" / "store" / "manifest.json").read_text())
    if REAL not in json.dumps(manifest):
        problems.append(f"no {REAL} events in the shard store's manifest")
    report = (workdir / "REPORT.md").read_text()
    if "real CMS 2012 SingleMu collision events" not in report.split("##")[0]:
        problems.append("REPORT.md's summary does not name the real 2012 data")
    warned = [line for line in stderr.read_text().splitlines() if "warn" in line.lower()]
    if warned:
        problems.append("warnings on stderr:\n  " + "\n  ".join(warned))
    for p in problems:
        print(f"demo check: {p}", file=sys.stderr)
    if not problems:
        print(f"demo check: real 2012 data used ({real['events']} events), stderr quiet")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
