"""Jobs that run coffea over a fileset: the layer the CLI and the demo both call.

* :mod:`jetfm_coffea.jobs.options`: the executor vocabulary of every job and command;
* :mod:`jetfm_coffea.jobs.execution`: coffea's executors, :func:`run_processor` (Runner)
  and :func:`run_dask_mode` (``apply_to_fileset``);
* :mod:`jetfm_coffea.jobs.shards`: ``build_store`` (``jetfm build-shards``);
* :mod:`jetfm_coffea.jobs.score`: ``run_score_analysis`` (``jetfm score``);
* :mod:`jetfm_coffea.jobs.inspect`: ``run_inspection`` (``jetfm inspect``).

Jobs import the processors (``processors/``) and everything below them; nothing below
imports a job. This package imports no submodule, so that the CLI can read
:mod:`~jetfm_coffea.jobs.options` without loading coffea.
"""

#: The jobs are the submodules above (import them by name); nothing is re-exported here.
__all__: list[str] = []
