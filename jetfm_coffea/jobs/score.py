"""The scoring-analysis job: a fileset and a model -> scores, cut, histograms, files.

:func:`run_score_analysis` runs :class:`jetfm_coffea.processors.analysis.ScoreAnalysisProcessor`
(``jetfm score`` and the demo's score stage); :func:`write_outputs` writes what it made.
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

import awkward as ak

from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import MissingBranchesError
from jetfm_coffea.figures import save_figure, styled, subplots
from jetfm_coffea.fileset import NO_EVENT_IDS, load_fileset
from jetfm_coffea.jobs.execution import run_coffea
from jetfm_coffea.model.rundir import read_data_sheet
from jetfm_coffea.processors.analysis import ScoreAnalysisProcessor, finalize_analysis
from jetfm_coffea.selection.blinding import load_blinding
from jetfm_coffea.selection.datasheet import check_model_blinding
from jetfm_coffea.selection.lumi import LumiPolicy, resolve_lumi_masks
from jetfm_coffea.tokens.build import required_branches

__all__ = ["run_score_analysis", "write_outputs"]


def run_score_analysis(
    fileset: Any,
    model: list[str],
    cut: float = 0.5,
    signal: str | None = None,
    return_scores: bool = False,
    *,
    execution: Execution | None = None,
    skip_bad_files: bool = False,
    lumi_mask: str | None = None,
    no_lumi_mask: bool = False,
    analysis_region: str | None = None,
    require_blinded: bool = False,
    **scorer_options: Any,
) -> tuple[dict, Any, float]:
    """Run :class:`~jetfm_coffea.processors.analysis.ScoreAnalysisProcessor`.

    Returns ``(output, report, seconds)``.

    Collision data are masked with their golden JSON (or ``lumi_mask``); see
    :func:`jetfm_coffea.selection.lumi.resolve_lumi_masks`. With ``analysis_region``
    (a blinding YAML) and collision data among the inputs, a model whose pretraining
    was not blinded for those regions gives a warning (an error with ``require_blinded``).
    ``execution``: where and how coffea runs (:class:`~jetfm_coffea.cluster.Execution`;
    default iterative).
    """
    execution = execution or Execution()
    fileset = resolve_lumi_masks(load_fileset(fileset), lumi_mask, no_lumi_mask)
    analysis = load_blinding(analysis_region)
    kinds = {
        LumiPolicy.from_metadata({**s["metadata"], "dataset": n}).kind for n, s in fileset.items()
    }
    if analysis is not None and kinds - {"mc"}:
        sheets = {str(m): read_data_sheet(m) for m in model}
        check_model_blinding(sheets, analysis, require=require_blinded)

    proc = ScoreAnalysisProcessor(
        model if len(model) > 1 else model[0], cut, signal, return_scores, **scorer_options
    )
    # each file is opened once (with the branches the model needs) before any chunk runs:
    # a bad one is named, or with skip_bad_files skipped and reported; the scorer then
    # checks the collections of the usable files only
    checks: dict[str, Any] = {}
    if proc.scorer is not None:
        checks = {
            "required": required_branches(proc.scorer.token_config),
            "before_run": proc.scorer.check_files,
        }
    start = time.perf_counter()
    try:
        out, report = run_coffea(
            proc, fileset, execution, skip_bad_files=skip_bad_files, status=False, **checks
        )
        if execution.dask_mode:  # Runner post-processes; dask mode leaves it to us
            out = finalize_analysis(out, proc)
    except MissingBranchesError as err:  # name the model whose token config needs them
        hint = f" (needed by the token config of model {' + '.join(map(str, model))})"
        if "event ids" in err.missing:
            hint += NO_EVENT_IDS
        raise MissingBranchesError(err.path, err.missing, hint) from err
    return out, report, time.perf_counter() - start


@styled  # the CMS style as a context, like every figure of the package
def _plot(output: dict, path: Path) -> None:
    import mplhep  # deferred: it loads matplotlib (seconds), needed only for this figure

    fig, axes = subplots(1, 3, figsize=(15, 4.5))
    for dataset, result in output.items():
        if "score" in result:
            mplhep.histplot(result["score"], ax=axes[0], label=dataset, density=True)
        for ax, name in zip(axes[1:], ("jet_pt", "dimuon_mass"), strict=True):
            for stage, style in (("all", "-"), ("pass", "--")):
                h = result[name][{"stage": stage}]
                if h.sum().value > 0:
                    mplhep.histplot(h, ax=ax, ls=style, label=f"{dataset} ({stage})")
    cut = next((r["model"]["cut"] for r in output.values() if "model" in r), None)
    if cut is not None:
        axes[0].axvline(cut, color="k", ls=":", label=f"cut {cut:g}")
    for ax in axes:
        ax.legend(fontsize="small")
    axes[1].set_yscale("log")
    save_figure(fig, path, dpi=110)


def write_outputs(output: dict, out: Path, parquet: bool, summary: dict) -> list[Path]:
    """Write ``histograms.pkl``, ``summary.json``, ``score.png`` and maybe ``scores.parquet``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    hists = {
        ds: {k: v for k, v in res.items() if k not in ("cutflow", "scores", "model")}
        for ds, res in output.items()
    }
    with open(out / "histograms.pkl", "wb") as fh:
        pickle.dump(hists, fh)
    written.append(out / "histograms.pkl")
    summary = {
        **summary,
        "datasets": {
            ds: {"cutflow": res["cutflow"], "model": res.get("model")} for ds, res in output.items()
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    written.append(out / "summary.json")
    _plot(output, out / "score.png")
    written.append(out / "score.png")
    if parquet:
        parts = []
        for ds, res in output.items():
            scores = res.get("scores")
            if scores is not None and len(scores):
                parts.append(ak.with_field(scores, ds, "dataset"))
        if parts:
            table = ak.concatenate(parts)
            ak.to_parquet(table, out / "scores.parquet")
            written.append(out / "scores.parquet")
    return written
