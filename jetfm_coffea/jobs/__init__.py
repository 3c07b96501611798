"""Jobs that run coffea over a fileset: the layer the CLI and the demo both call.

* :mod:`jetfm_coffea.jobs.execution`: coffea's executors and
  :func:`~jetfm_coffea.jobs.execution.run_coffea` (Runner, or ``apply_to_fileset`` in
  dask mode);
* :mod:`jetfm_coffea.jobs.shards`: ``build_store`` (``jetfm build-shards``);
* :mod:`jetfm_coffea.jobs.score`: ``run_score_analysis`` (``jetfm score``);
* :mod:`jetfm_coffea.jobs.inspect`: ``run_inspection`` (``jetfm inspect``).

Every job takes one :class:`~jetfm_coffea.cluster.Execution` (where and how coffea runs;
it lives below the jobs, so that the CLI and generation read it without coffea). Jobs
import the processors (``processors/``) and everything below them; nothing below
imports a job. This package imports no submodule.
"""

#: The jobs are the submodules above (import them by name); nothing is re-exported here.
__all__: list[str] = []
