"""The inspection job: tokenize a file or fileset, count tokens per collection, cutflow."""

from __future__ import annotations

from typing import Any

from jetfm_coffea.cluster import Execution
from jetfm_coffea.fileset import load_fileset
from jetfm_coffea.jobs.execution import RunReport, run_coffea
from jetfm_coffea.processors.tokenize import TokenizeProcessor, finalize_output
from jetfm_coffea.selection.lumi import resolve_lumi_masks
from jetfm_coffea.tokens import load_token_config
from jetfm_coffea.tokens.build import required_branches

__all__ = ["run_inspection"]


def run_inspection(
    source: str,
    config: str | None = None,
    *,
    execution: Execution | None = None,
    skip_bad_files: bool = False,
    lumi_mask: str | None = None,
    no_lumi_mask: bool = False,
) -> tuple[dict[str, Any], RunReport]:
    """Run the TokenizeProcessor over a file or fileset; return (output, report).

    Collision data are masked with their golden JSON (or ``lumi_mask``); see
    :func:`jetfm_coffea.selection.lumi.resolve_lumi_masks`. ``execution``: where and how
    coffea runs (:class:`~jetfm_coffea.cluster.Execution`; default iterative).
    """
    execution = execution or Execution()
    source = resolve_lumi_masks(load_fileset(source), lumi_mask, no_lumi_mask)

    proc = TokenizeProcessor(load_token_config(config), return_tokens=False)
    required = required_branches(proc.token_config)  # a file lacking one: named up front
    out, report = run_coffea(
        proc, source, execution, skip_bad_files=skip_bad_files, required=required
    )
    if execution.dask_mode:  # Runner post-processes; dask mode leaves it to us
        out = finalize_output(out, proc.token_config)
    return out, report
