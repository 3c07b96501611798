"""``jetfm score`` (scores -> cut -> histograms, plot, parquet) and ``jetfm export``."""

from __future__ import annotations

from pathlib import Path

import click

from jetfm_coffea.cli.common import (
    console,
    execution_options,
    fail_cleanly,
    finite_float,
    lumi_options,
    report_bad_files,
)
from jetfm_coffea.cluster import Execution

__all__ = ["export_cmd", "score_cmd"]


@click.command("score")
@click.argument("fileset", metavar="FILE_OR_FILESET")
@click.option(
    "--model",
    "models",
    required=True,
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Scoring model (run directory or export); give it k times for k-fold scoring "
    "(the i-th model scores events with event % k == i).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--cut",
    default=0.5,
    show_default=True,
    type=float,
    callback=finite_float,
    help="Keep events with score > CUT (a finite number).",
)
@click.option("--signal", default=None, help="Class to cut on (default: the last class).")
@click.option("--parquet", is_flag=True, help="Also write per-event scores to scores.parquet.")
@click.option("--batch-size", default=2048, show_default=True, help="Events per forward pass.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1...")
@click.option(
    "--server",
    "servers",
    multiple=True,
    help="Score through NVIDIA Triton: triton+grpc://HOST:PORT/NAME serving the "
    "`jetfm export --format triton` of --model (once per --model for k-fold).",
)
@click.option(
    "--variations",
    default=None,
    help="Comma-separated systematic variations scored besides the nominal: JES, JER, "
    "lepton, unclustered (each up and down; JES 3%, JER a 5% jet-pT stand-in, lepton "
    "0.2%/0.5%, unclustered 10%); fills histogram score_variations.",
)
@click.option(
    "--backend",
    type=click.Choice(["torch", "onnxruntime"]),
    default="torch",
    show_default=True,
    help="In-process runtime; onnxruntime is faster on CPU, scores within ~5e-4 of torch.",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16"]),
    default="fp32",
    show_default=True,
    help="fp32: the same scores on CPU and GPU (TF32 off); bf16: autocast, faster on GPUs, "
    "scores differ by up to ~1e-2.",
)
@click.option(
    "--allow-modified-weights",
    is_flag=True,
    help="Score with weights whose SHA-256 differs from the one their run recorded "
    "(recorded in summary.json and on every score column).",
)
@click.option(
    "--analysis-region",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="blinding YAML of the analysis's signal regions: warn if a model's pretraining "
    "data were not blinded for them",
)
@click.option(
    "--require-blinded", is_flag=True, help="with --analysis-region: an error, not a warning"
)
@execution_options
@lumi_options
@fail_cleanly
def score_cmd(
    fileset: str,
    models: tuple[str, ...],
    out: str,
    cut: float,
    signal: str | None,
    parquet: bool,
    batch_size: int,
    device: str,
    servers: tuple[str, ...],
    variations: str | None,
    backend: str,
    precision: str,
    allow_modified_weights: bool,
    execution: Execution,
    skip_bad_files: bool,
    analysis_region: str | None,
    require_blinded: bool,
    lumi_mask: str | None,
    no_lumi_mask: bool,
) -> None:
    """Score FILE_OR_FILESET with a jetfm classifier, cut on it and histogram the result."""
    from jetfm_coffea.jobs.score import run_score_analysis, write_outputs
    from jetfm_coffea.score import standard_variations

    output, report, seconds = run_score_analysis(
        fileset,
        list(models),
        cut,
        signal,
        return_scores=parquet,
        execution=execution,
        skip_bad_files=skip_bad_files,
        lumi_mask=lumi_mask,
        no_lumi_mask=no_lumi_mask,
        analysis_region=analysis_region,
        require_blinded=require_blinded,
        batch_size=batch_size,
        device=device,
        server=list(servers) or None,
        variations=standard_variations(variations.split(",")) if variations else None,
        precision=precision,
        backend=backend,
        allow_modified_weights=allow_modified_weights,
    )
    n_events = sum(r["cutflow"]["events"] for r in output.values())
    summary = {
        "mode": report.mode,
        "files": report.files,
        "events": n_events,
        "seconds": round(seconds, 3),
        "events_per_s": round(n_events / seconds, 1) if seconds > 0 else None,
        "bad_files": [{"path": b.path, "reason": b.reason} for b in report.bad_files],
        "allow_modified_weights": allow_modified_weights,
    }
    written = write_outputs(output, Path(out), parquet, summary)
    console.print(f"[bold]mode[/]: {report.mode}   events: {n_events}   {seconds:.1f} s")
    report_bad_files(report.bad_files)
    for dataset, result in output.items():
        flow = result["cutflow"]
        model = result.get("model", {})
        console.print(
            f"{dataset}: {flow['events']} events, {flow.get('pass', 0)} pass "
            f"{model.get('signal')} > {cut:g} (model {str(model.get('hash'))[:12]})"
        )
        if flow.get("nonfinite_scores"):
            console.print(
                f"[yellow]warning[/]: {dataset}: {flow['nonfinite_scores']} events with "
                "non-finite scores (excluded from the score histogram and the selection)"
            )
    for path in written:
        console.print(f"wrote {path}")


class ExporterChoice(click.Choice):
    """``--format`` choices: the exporters registry (:mod:`jetfm_coffea.score.formats`),
    read when ``export`` parses or shows its options, so ``jetfm score --help`` loads
    no torch."""

    def __init__(self) -> None:
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        from jetfm_coffea.score.formats import EXPORTERS

        return tuple(EXPORTERS)


@click.command("export")
@click.argument("model", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Export folder.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=ExporterChoice(),
    default=("torch.export",),
    show_default=True,
    help="Compiled programs to add next to the safetensors weights; triton: --out is a "
    "Triton model repository, the model goes to OUT/NAME (config.pbtxt, 1/model.onnx).",
)
@click.option(
    "--name", "triton_name", default="jetfm", show_default=True, help="Triton model name."
)
@click.option(
    "--max-batch-size",
    "triton_max_batch_size",
    default=4096,
    show_default=True,
    help="Triton max_batch_size.",
)
@click.option("--model-version", default=None, help="Version recorded in the manifest.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out.")
@click.option(
    "--allow-modified-weights",
    is_flag=True,
    help="Export weights whose SHA-256 differs from the one their run recorded "
    "(recorded as source_weights_check in the manifest).",
)
@fail_cleanly
def export_cmd(
    model: str,
    out: str,
    formats: tuple[str, ...],
    triton_name: str,
    triton_max_batch_size: int,
    model_version: str | None,
    overwrite: bool,
    allow_modified_weights: bool,
) -> None:
    """Export MODEL (a run directory) to a portable, hash-checked scoring model."""
    from jetfm_coffea.score.export import export_model, read_manifest

    try:
        path = export_model(
            model,
            out,
            formats=formats,
            model_version=model_version,
            overwrite=overwrite,
            allow_modified_weights=allow_modified_weights,
            triton_name=triton_name,
            triton_max_batch_size=triton_max_batch_size,
        )
    except (FileExistsError, ImportError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    manifest = read_manifest(path)
    console.print(f"exported {model} -> {path}")
    console.print(f"model hash {manifest['model_hash']}  version {manifest['model_version']}")
    for name, entry in manifest["files"].items():
        console.print(f"  {name:20s} {entry['role']:14s} {entry['size']:>10d} B")
