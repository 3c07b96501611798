"""The demo report: one Markdown page with the numbers, the plots and the provenance."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from jetfm_coffea import __version__
from jetfm_coffea.demo.plan import DemoPlan
from jetfm_coffea.demo.stages import StageRecord

__all__ = ["write_report"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _rel(path: str | Path, root: Path) -> str:
    return os.path.relpath(Path(path), root)


def _image(path: str | Path | None, root: Path, title: str) -> str:
    if not path or not Path(path).is_file():
        return f"*{title}: not produced*\n"
    return f"![{title}]({_rel(path, root)})\n"


def _provenance(workdir: Path) -> list[tuple[str, str]]:
    """sha256 of every artifact a user would pass on: files, manifests, weights, configs."""
    keep = (".root", ".json", ".safetensors", ".yaml", ".png", ".md", ".pkl")
    rows = []
    for path in sorted(workdir.rglob("*")):
        if path.is_file() and path.suffix in keep and "/checkpoints/" not in str(path):
            if path.name == "REPORT.md" or ("/runs/" in str(path) and path.suffix == ".png"):
                continue
            rows.append((_rel(path, workdir), _sha256(path)))
    return rows


def write_report(workdir: Path, records: dict[str, StageRecord], plan: DemoPlan) -> Path:
    """Write ``workdir/REPORT.md`` from the stage outputs; return its path."""
    out = records
    lines = [
        "# jetfm-coffea demo report",
        "",
        f"jetfm-coffea {__version__}; plan: {plan.events} events per labelled sample, "
        f"√s = {plan.sqrts / 1000:g} TeV, seed {plan.seed}, tiny model, "
        f"{plan.pretrain_steps} pretraining steps.",
        "",
        "## Stages",
        "",
        "| stage | seconds | status |",
        "|---|---|---|",
    ]
    for name, rec in out.items():
        status = "skipped (done before)" if rec.skipped else "ran"
        lines.append(f"| {name} | {rec.seconds:.1f} | {status} |")
    gen, shards = out["generate"].outputs, out["shards"].outputs
    lines += [
        "",
        "## Data",
        "",
        f"Datasets: {', '.join(gen['datasets'])}. Shards: {shards['events_written']} events "
        f"with views {shards['views_written']} in `{_rel(shards['store'], workdir)}`.",
        "",
        "## Pretraining",
        "",
        f"Final loss {out['pretrain'].outputs['final_loss']:.3f} after "
        f"{out['pretrain'].outputs['steps']} steps.",
        "",
        _image(out["pretrain"].outputs.get("plot"), workdir, "training curves"),
        "## Label efficiency (ttbar vs W+jets, test split)",
        "",
    ]
    fine = out["finetune"].outputs
    table = Path(fine["markdown"]).read_text().splitlines()
    lines.append("\n".join(line for line in table if not line.startswith("#")))
    for key, title in (
        ("label_efficiency", "label efficiency"),
        ("roc", "ROC"),
        ("scores", "score distributions"),
    ):
        lines.append(_image(fine["plots"].get(key), workdir, title))
    score = out["score"].outputs
    summary = json.loads((Path(workdir) / _score_summary(score)).read_text())
    model = next(iter(summary.get("datasets", {}).values()), {}).get("model", {})
    lines += [
        "## Scores in a coffea analysis",
        "",
        f"{score['events']} events scored through `ScoreAnalysisProcessor` "
        f"({score['mode']}) in {score['seconds']:.1f} s; model hash "
        f"`{str(model.get('hash', ''))[:16]}` ({model.get('version', '')}), cut "
        f"{model.get('cut')} on the {model.get('signal')} score:",
        "",
        "| dataset | events | pass |",
        "|---|---:|---:|",
        *[
            f"| {name} | {d['cutflow']['events']} | {d['cutflow']['pass']} |"
            for name, d in summary.get("datasets", {}).items()
        ],
        "",
        _image(
            next((f for f in score["files"] if f.endswith(".png")), None),
            workdir,
            "score per process",
        ),
        "## Augmentation check (real 2012 dimuon data)",
        "",
    ]
    check = out["augment-check"].outputs
    if "passed" in check:
        lines.append(f"{check['pairs']} muon pairs; spectrum unchanged: {check['passed']}.\n")
        lines.append(_image(check["plot"], workdir, "dimuon spectrum before/after"))
    else:
        lines.append(check.get("skipped", "") + "\n")
    lines += [
        "## Provenance (sha256, first 16 hex digits)",
        "",
        "| artifact | sha256 |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | `{digest}` |" for name, digest in _provenance(workdir)]
    report = workdir / "REPORT.md"
    tmp = report.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, report)
    return report


def _score_summary(score: dict[str, Any]) -> str:
    return next(f for f in score["files"] if f.endswith("summary.json"))
