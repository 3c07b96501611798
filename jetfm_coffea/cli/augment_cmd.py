"""``jetfm augment-check``: the dimuon spectrum before/after boosts and rotations."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["augment_check_cmd"]


@click.command("augment-check")
@click.argument(
    "input_path", required=False, type=click.Path(dir_okay=False, path_type=Path), default=None
)
@click.option(
    "--input",
    "input_option",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    hidden=True,
    help="old spelling of the positional INPUT_PATH",
)
@click.option(
    "--pipeline",
    "pipeline_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="augmentation pipeline YAML (default: rotate_phi, boost_z, boost_transverse, reflect_eta)",
)
@click.option("--max-events", type=int, default=None, help="read only the first N events")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("augment-check"),
    show_default=True,
    help="folder for augment_check.png, .json and .md",
)
def augment_check_cmd(
    input_path: Path | None,
    input_option: Path | None,
    pipeline_path: Path | None,
    max_events: int | None,
    out_dir: Path,
) -> None:
    """Check that boosts and rotations leave the dimuon mass spectrum unchanged.

    INPUT_PATH is a muons-only ROOT file (default: the real 2012 DoubleMuParked 100k-event
    file shipped with the package).
    """
    from jetfm_coffea._resources import DIMUON_2012, cms_file
    from jetfm_coffea.augment.check import (
        SYMMETRY_PIPELINE,
        muon_objects,
        plot_spectra,
        spectrum_check,
    )
    from jetfm_coffea.augment.config import load_pipeline
    from jetfm_coffea.errors import JetFMError

    if input_path and input_option and input_path != input_option:
        raise click.UsageError("give the input file once (positional), not also as --input")
    path = input_path or input_option or cms_file(DIMUON_2012)
    if not Path(path).is_file():
        raise click.ClickException(f"{path}: file not found")
    try:
        pipeline = load_pipeline(pipeline_path or SYMMETRY_PIPELINE)
    except JetFMError as err:
        raise click.ClickException(str(err)) from err
    objects = muon_objects(path, 0, max_events)
    result, m0, m1 = spectrum_check(objects, pipeline)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = ", ".join(step.name for step in pipeline.steps)
    png = plot_spectra(m0, m1, out_dir / "augment_check.png", names)
    (out_dir / "augment_check.json").write_text(result.to_json() + "\n")
    (out_dir / "augment_check.md").write_text(result.to_markdown())
    click.echo(result.to_markdown())
    click.echo(f"plot: {png}")
    if not result.passed:
        raise click.ClickException("dimuon spectrum changed under the augmentations")
