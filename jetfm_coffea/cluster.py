"""Dask distributed clients: a ``LocalCluster`` started for the run, or an existing scheduler.

The one owner of cluster start-up for every job that scales out with dask: the coffea
jobs (:mod:`jetfm_coffea.jobs`) and event generation (:mod:`jetfm_coffea.generate`).
An existing scheduler (dask-jobqueue, coffea-casa, dask-gateway) is given by its address.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["dask_client"]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A distributed client: to ``scheduler`` if given, else to a fresh LocalCluster.

    The LocalCluster has ``workers`` single-threaded worker processes and is closed on exit;
    its HTTP server (the dashboard, when bokeh is installed: ``client.dashboard_link``)
    listens on a free port.
    """
    # distributed is imported only when a cluster is asked for (it starts slowly)
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: no clash (and no warning) beside another cluster
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
