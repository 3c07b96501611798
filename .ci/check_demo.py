"""CI check of a ``jetfm demo`` run: real 2012 collision data in the shards, a quiet stderr,
and no validation or test event of the fine-tuning task in the pretraining pool (by event id).

Usage: python .ci/check_demo.py WORKDIR STDERR_FILE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REAL = "data2012_singlemu"


def _held_out_problems(workdir: Path) -> list[str]:
    """The pool the encoder was pretrained on against the task's val/test events."""
    from jetfm_coffea.finetune import load_labelled, plan_task
    from jetfm_coffea.finetune.heldout import event_keys, held_out_index, read_pool_events
    from jetfm_coffea.model.rundir import POOL_EVENTS
    from jetfm_coffea.pipelines import DemoPlan
    from jetfm_coffea.pipelines.demo import demo_task

    data = load_labelled(shards=workdir / "2-shards" / "store")
    setup = plan_task(demo_task(DemoPlan()), data)  # the splits do not depend on the plan
    held_out = event_keys(data, held_out_index(setup))
    pool = read_pool_events(workdir / "3-pretrain" / "run" / POOL_EVENTS)
    problems = []
    if pool & held_out:
        problems.append(f"{len(pool & held_out)} val/test events of the task in pretraining")
    if not held_out or len(pool) + len(held_out) != len(data):
        problems.append(f"pool {len(pool)} + held out {len(held_out)} != {len(data)} events")
    return problems


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
    problems += _held_out_problems(workdir)
    warned = [line for line in stderr.read_text().splitlines() if "warn" in line.lower()]
    if warned:
        problems.append("warnings on stderr:\n  " + "\n  ".join(warned))
    for p in problems:
        print(f"demo check: {p}", file=sys.stderr)
    if not problems:
        print(
            f"demo check: real 2012 data used ({real['events']} events), stderr quiet, "
            "no val/test event of the task in the pretraining pool"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
