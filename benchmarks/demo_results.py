"""The demo numbers of ``docs/label-efficiency.md``, written by code from ``jetfm demo`` runs.

    python benchmarks/demo_results.py --fresh WORKDIR [--repeat WORKDIR] [--stored WORKDIR]
        [--out FILE] [--page MD]

``--fresh``: a default-plan ``jetfm demo`` run; ``--repeat``: a second one from scratch in
another folder (its numbers are compared with the first: the demo reproduces when every
AUC is the same); ``--stored``: the same plan with ``--views stored``. Their fine-tuning
aggregates (test AUC, mean ± std over seeds), split sizes, pretraining pool and stage wall
times go to ``--out`` (``benchmarks/results/demo.json``) with the date, the load average
and the code version, and the block between :data:`BEGIN` and :data:`END` of ``--page`` (default
``docs/label-efficiency.md``) is rendered from that file; the fresh run's
``label_efficiency.png`` is copied to :data:`PLOT` (``tests/test_benchmark_results.py``
checks that the committed pair agrees).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "demo.json"
#: The fresh run's label-efficiency plot, shown on the docs page.
PLOT = HERE / "results" / "label_efficiency.png"

#: Markers of the generated block in the docs page.
BEGIN = "<!-- demo_results.py: begin (generated, do not edit) -->"
END = "<!-- demo_results.py: end -->"
MODES = ("linear-probe", "finetune", "scratch")


def _stage_dir(workdir: Path, stage: str) -> Path:
    (stage_dir,) = sorted(workdir.glob(f"*-{stage}"))
    return stage_dir


def _marker(workdir: Path, stage: str) -> dict[str, Any]:
    return json.loads((_stage_dir(workdir, stage) / ".done.json").read_text())


def collect(workdir: Path) -> dict[str, Any]:
    """What the docs page states of one finished demo run."""
    stages = {p.name.split("-", 1)[1]: p for p in sorted(workdir.glob("[0-9]-*"))}
    seconds = {name: round(_marker(workdir, name)["seconds"], 1) for name in stages}
    pre = _marker(workdir, "pretrain")["outputs"]
    fine = json.loads(Path(_marker(workdir, "finetune")["outputs"]["results"]).read_text())
    keep = ("mode", "n_labels", "n_seeds", "auc_mean", "auc_std")
    return {
        "stage_seconds": seconds,
        "pool_events": pre.get("pool_events"),
        "held_out_events": pre.get("held_out_events"),
        "splits": fine.get("splits", {}),
        "aggregate": [{k: e[k] for k in keep} for e in fine["aggregate"]],
    }


def compare_runs(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """How far a second run of the same plan is from the first: the largest AUC difference
    over the aggregate rows, and whether everything the docs state is the same."""
    a = {(e["mode"], e["n_labels"]): e for e in first["aggregate"]}
    b = {(e["mode"], e["n_labels"]): e for e in second["aggregate"]}
    if a.keys() != b.keys():
        raise SystemExit(f"the runs have different rows: {sorted(a)} vs {sorted(b)}")
    diff = max(abs(a[k][f] - b[k][f]) for k in a for f in ("auc_mean", "auc_std"))
    same = ("pool_events", "held_out_events", "splits")
    return {
        "max_abs_auc_difference": diff,
        "identical": diff == 0.0 and all(first[k] == second[k] for k in same),
        "stage_seconds": second["stage_seconds"],
    }


def _cell(agg: list[dict[str, Any]], mode: str, n: int) -> str:
    (e,) = [e for e in agg if e["mode"] == mode and e["n_labels"] == n]
    return f"{e['auc_mean']:.4f} ± {e['auc_std']:.4f}"


def render(results: dict[str, Any]) -> str:
    """The docs page's block (Markdown) of ``results`` (the content of :data:`RESULTS`)."""
    fresh = results["runs"]["fresh"]
    agg = fresh["aggregate"]
    seeds = max(e["n_seeds"] for e in agg)
    counts = sorted({e["n_labels"] for e in agg})
    s = fresh["splits"]
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in fresh["stage_seconds"].items())
    lines = [
        f"Default plan, {results['date']} (code {results['code_version']}, load average "
        f"{results['load_before']:.2f} before the runs): pretraining pool "
        f"{fresh['pool_events']:,} events ({fresh['held_out_events']:,} validation and test "
        f"events of the task left out); {s.get('train')} training, {s.get('val')} validation "
        f"and {s.get('test')} test events. Stage wall times: {secs}. Test AUC, mean ± std "
        f"over {seeds} seeds:",
        "",
        "| labels | " + " | ".join(MODES) + " |",
        "|---:|" + "---|" * len(MODES),
    ]
    lines += [f"| {n:,} | " + " | ".join(_cell(agg, m, n) for m in MODES) + " |" for n in counts]
    repeat = results.get("repeat")
    if repeat:
        verdict = (
            "the same numbers to the last digit"
            if repeat["identical"]
            else f"AUCs up to {repeat['max_abs_auc_difference']:.2g} away"
        )
        lines += [
            "",
            f"A second run of the default plan from scratch in another folder gave {verdict} "
            "(pool, splits, every mean and std).",
        ]
    stored = results["runs"].get("stored")
    if stored:
        lines += [
            "",
            "Fresh physics views every step (default) against the two stored views "
            "(`jetfm demo --views stored`, the same plan, seeds and events; pretraining "
            f"{fresh['stage_seconds']['pretrain']:.0f} s fresh, "
            f"{stored['stage_seconds']['pretrain']:.0f} s stored):",
            "",
            "| pretraining views | labels | linear-probe | finetune |",
            "|---|---:|---|---|",
        ]
        for n in counts:
            for name, run in (("fresh every step", fresh), ("2 stored views", stored)):
                cells = " | ".join(_cell(run["aggregate"], m, n) for m in MODES[:2])
                lines.append(f"| {name} | {n:,} | {cells} |")
    return "\n".join(lines)


def page_block(page: Path) -> str:
    """The generated block of ``page`` (without the markers)."""
    return page.read_text().split(BEGIN, 1)[1].split(END, 1)[0].strip()


def replace_block(page: Path, text: str) -> None:
    """Put ``text`` between the markers of ``page`` (which must have them)."""
    doc = page.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{page}: no generated block ({BEGIN} ... {END})")
    before, rest = doc.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    page.write_text(f"{before}{BEGIN}\n{text.strip()}\n{END}{after}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fresh", type=Path, required=True)
    ap.add_argument("--repeat", type=Path, help="a second default-plan run, from scratch")
    ap.add_argument("--stored", type=Path)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--page",
        type=Path,
        default=ROOT / "docs" / "label-efficiency.md",
        help="the Markdown page whose generated block is rendered (default: %(default)s)",
    )
    ap.add_argument("--load-before", type=float, default=None)
    args = ap.parse_args(argv)
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    runs = {"fresh": collect(args.fresh)}
    if args.stored is not None:
        runs["stored"] = collect(args.stored)
    results = {
        "date": dt.date.today().isoformat(),
        "code_version": rev or "unknown",
        "load_before": os.getloadavg()[0] if args.load_before is None else args.load_before,
        "machine": f"{os.cpu_count()} cores",
        "runs": runs,
    }
    if args.repeat is not None:
        results["repeat"] = compare_runs(runs["fresh"], collect(args.repeat))
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    if args.out == RESULTS:  # the page shows the committed plot beside the committed numbers
        shutil.copyfile(_stage_dir(args.fresh, "finetune") / "label_efficiency.png", PLOT)
    replace_block(args.page, render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
