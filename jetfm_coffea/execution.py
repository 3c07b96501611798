"""Deprecated: the coffea execution helpers live in :mod:`jetfm_coffea.jobs.execution`.

Kept for one release because the README documented
``jetfm_coffea.execution.run_processor``; ``dask_client`` is now
:func:`jetfm_coffea.cluster.dask_client`.
"""

import warnings

from jetfm_coffea.cluster import dask_client
from jetfm_coffea.jobs.execution import EXECUTORS, RunReport, run_dask_mode, run_processor

__all__ = ["EXECUTORS", "RunReport", "dask_client", "run_dask_mode", "run_processor"]

warnings.warn(
    "jetfm_coffea.execution is deprecated; import from jetfm_coffea.jobs.execution "
    "(dask_client: jetfm_coffea.cluster)",
    DeprecationWarning,
    stacklevel=2,
)
