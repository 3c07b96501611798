"""Write the label-efficiency study's generated blocks from the committed summary JSONs.

For each task of the `cpu` study: the README's block (every stated difference with its
68% and 95% intervals, ``finetune.cellreport.readme_block``) and the docs' block (the AUC
of every row, ``rows_block``) from ``benchmarks/results/label_efficiency_cpu_<task>.json``
(the pending text while none is committed), and the docs' plan block from
``benchmarks/results/label_efficiency_cpu_plan.md`` (``label_efficiency_plan.py``).
``tests/finetune/test_cell_study.py`` regenerates them and compares them byte for byte::

    python benchmarks/label_efficiency_blocks.py
"""

from __future__ import annotations

import json
from pathlib import Path

from jetfm_coffea.finetune.cellreport import readme_block, replace_block, rows_block

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("tth_vs_ttbar", "vh_vs_vz_bb")
README = ROOT / "README.md"
DOCS = ROOT / "docs" / "label-efficiency.md"


def summary(task: str) -> dict | None:
    path = ROOT / "benchmarks" / "results" / f"label_efficiency_cpu_{task}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    readme, docs = README.read_text(), DOCS.read_text()
    for task in TASKS:
        s = summary(task)
        readme = replace_block(readme, f"label-efficiency-cpu:{task}", readme_block(s, task))
        docs = replace_block(docs, f"label-efficiency-cpu-rows:{task}", rows_block(s, task))
    plan = ROOT / "benchmarks" / "results" / "label_efficiency_cpu_plan.md"
    docs = replace_block(docs, "label-efficiency-cpu:plan", plan.read_text())
    README.write_text(readme)
    DOCS.write_text(docs)


if __name__ == "__main__":
    main()
