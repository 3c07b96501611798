"""The demo report: one Markdown page with the numbers, the plots and the provenance."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from jetfm_coffea import __version__
from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.digest import file_sha256
from jetfm_coffea.model.rundir import WEIGHTS
from jetfm_coffea.pipelines.demo_plan import DemoPlan
from jetfm_coffea.pipelines.stages import StageRecord

__all__ = ["PROVENANCE", "REPORT", "write_demo_report"]

REPORT = "REPORT.md"
#: Every artifact of the demo with its full sha256 (the report shows one line per stage).
PROVENANCE = "provenance.json"


def _rel(path: str | Path, root: Path) -> str:
    return os.path.relpath(Path(path), root)


def _image(path: str | Path | None, root: Path, title: str) -> str:
    if not path or not Path(path).is_file():
        return f"*{title}: not produced*\n"
    return f"![{title}]({_rel(path, root)})\n"


def _provenance(workdir: Path) -> dict[str, str]:
    """sha256 of every artifact a user would pass on: files, manifests, weights, configs."""
    keep = (".root", ".json", ".safetensors", ".yaml", ".png", ".md", ".pkl")
    rows = {}
    for path in sorted(workdir.rglob("*")):
        if path.is_file() and path.suffix in keep and "/checkpoints/" not in str(path):
            if path.name in (REPORT, PROVENANCE) or (
                "/runs/" in str(path) and path.suffix == ".png"
            ):
                continue
            rows[_rel(path, workdir)] = file_sha256(path)
    return rows


def _combined(digests: dict[str, str]) -> str:
    """One sha256 over a set of files: of their sorted ``name sha256`` lines."""
    text = "".join(f"{name} {digest}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _stage_outputs(
    records: dict[str, StageRecord], files: dict[str, str], workdir: Path
) -> list[tuple[str, str, str]]:
    """One ``(stage, output, sha256)`` row per stage output, from the full file list."""

    def one(stage: str, path: str | Path | None, what: str) -> list[tuple[str, str, str]]:
        rel = _rel(path, workdir) if path else None
        return [(stage, f"{what} `{rel}`", files[rel])] if rel in files else []

    rows: list[tuple[str, str, str]] = []
    gen = records["generate"].outputs
    gen_dir = _rel(Path(gen["fileset"]).parent, workdir)
    roots = {k: v for k, v in files.items() if k.startswith(gen_dir + "/") and k.endswith(".root")}
    if roots:
        rows.append(
            ("generate", f"{len(roots)} generated NanoAOD files (combined)", _combined(roots))
        )
    rows += one("generate", gen["fileset"], "pretraining fileset")
    store = Path(records["shards"].outputs["store"])
    rows += one("shards", store / "manifest.json", "store manifest (every shard's checksum)")
    run = records["pretrain"].outputs.get("run")
    rows += one("pretrain", Path(run) / WEIGHTS if run else None, "encoder weights")
    fine = records["finetune"].outputs
    rows += one("finetune", fine.get("results"), "label-efficiency results")
    classifier = fine.get("classifier")
    rows += one(
        "finetune",
        Path(classifier) / WEIGHTS if classifier else None,
        "classifier weights",
    )
    score = records["score"].outputs
    rows += one("score", _score_summary(score), "analysis summary")
    check = records["augment-check"].outputs
    plot = check.get("plot")
    rows += one("augment-check", Path(plot).with_suffix(".md") if plot else None, "check")
    return rows


def _headline(fine: dict[str, Any]) -> str:
    """Fine-tuned with the fewest labels vs from scratch with the fewest and with all."""
    agg = json.loads(Path(fine["results"]).read_text()).get("aggregate", [])

    def auc(mode: str, n: int) -> str:
        e = next((e for e in agg if e["mode"] == mode and e["n_labels"] == n), None)
        return f"{e['auc_mean']:.4f} ± {e['auc_std']:.4f}" if e else "n/a"

    counts = sorted({e["n_labels"] for e in agg})
    if not counts:
        return "no label-efficiency result"
    low, top = counts[0], counts[-1]
    return (
        f"fine-tuned with {low} labels AUC {auc('finetune', low)} vs from scratch "
        f"{auc('scratch', low)}; from scratch with all {top} labels {auc('scratch', top)}"
    )


def _pool_text(pre: dict[str, Any]) -> str:
    """What the encoder was pretrained on (markers of older demos lack the pool counts)."""
    if "pool_events" not in pre:
        return ""
    return (
        f", on {pre['pool_events']} events: the shards minus the {pre['held_out_events']} "
        "validation and test events of the fine-tuning task (by dataset and event id)"
    )


def _scope_text(fine: dict[str, Any]) -> str:
    """What the demo's label-efficiency numbers measure, with the split sizes."""
    splits = json.loads(Path(fine["results"]).read_text()).get("splits", {})
    return (
        f"A demonstration, not a study: {splits.get('train', '?')} training, "
        f"{splits.get('val', '?')} validation and {splits.get('test', '?')} test events; "
        "few labels and a small test set, whose events pretraining never saw. The "
        "label-efficiency study "
        "(`jetfm label-efficiency`) is the measurement."
    )


def write_demo_report(workdir: Path, records: dict[str, StageRecord], plan: DemoPlan) -> Path:
    """Write ``workdir/REPORT.md`` from the stage outputs; return its path."""
    out = records
    files = _provenance(workdir)
    gen, shards = out["generate"].outputs, out["shards"].outputs
    score = out["score"].outputs
    real = gen.get("real_data")
    real_text = (
        f" + {real['events']} real CMS 2012 SingleMu collision events (CMS Open Data)"
        if real
        else " (no real collision data)"
    )
    lines = [
        "# jetfm-coffea demo report",
        "",
        f"**What ran:** generate → shards → pretrain ({plan.pretrain_steps} steps, "
        f"{plan.pretrain_size}) → fine-tune → score → augment-check, "
        f"{sum(r.seconds for r in out.values()):.0f} s in all.  ",
        f"**Data:** {shards['events_written']} events in the shards: Pythia 8 samples"
        f"{real_text}.  ",
        f"**Headline:** {_headline(out['finetune'].outputs)} (ttbar vs W+jets, test split); "
        f"{score['events']} events scored in a coffea processor in {score['seconds']:.1f} s.",
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
    skipped = shards.get("skipped") or []
    lines += [
        "",
        "## Data",
        "",
        f"Datasets: {', '.join(gen['datasets'])}. Shards: {shards['events_written']} events "
        f"with views {shards['views_written']} in `{_rel(shards['store'], workdir)}`.",
        "",
        *(
            [f"Skipped files ({len(skipped)}):", "", *[f"- `{f}`: {r}" for f, r in skipped], ""]
            if skipped
            else []
        ),
        "## Pretraining",
        "",
        f"Final loss {out['pretrain'].outputs['final_loss']:.3f} after "
        f"{out['pretrain'].outputs['steps']} steps{_pool_text(out['pretrain'].outputs)}.",
        "",
        _image(out["pretrain"].outputs.get("plot"), workdir, "training curves"),
        "## Label efficiency (ttbar vs W+jets, test split)",
        "",
    ]
    fine = out["finetune"].outputs
    lines += [_scope_text(fine), ""]
    table = Path(fine["markdown"]).read_text().splitlines()
    lines.append("\n".join(line for line in table if not line.startswith("#")))
    for key, title in (
        ("label_efficiency", "label efficiency"),
        ("roc", "ROC"),
        ("scores", "score distributions"),
    ):
        lines.append(_image(fine["plots"].get(key), workdir, title))
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
    lines.append(f"{check['pairs']} muon pairs; spectrum unchanged: {check['passed']}.\n")
    lines.append(_image(check["plot"], workdir, "dimuon spectrum before/after"))
    lines += [
        "## Provenance (sha256, first 16 hex digits)",
        "",
        f"One line per stage output; every file with its full sha256 is in `{PROVENANCE}`.",
        "",
        "| stage | output | sha256 |",
        "|---|---|---|",
    ]
    lines += [
        f"| {s} | {what} | `{d[:16]}` |" for s, what, d in _stage_outputs(out, files, workdir)
    ]
    atomic_write_text(workdir / PROVENANCE, json.dumps(files, indent=1) + "\n")
    report = workdir / REPORT
    atomic_write_text(report, "\n".join(lines) + "\n")
    return report


def _score_summary(score: dict[str, Any]) -> str:
    return next(f for f in score["files"] if f.endswith("summary.json"))
