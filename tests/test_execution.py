"""The LocalCluster helper: quiet beside another cluster."""

from __future__ import annotations

import socket
import warnings

from jetfm_coffea.cluster import dask_client


def test_local_cluster_beside_another_prints_no_port_warning():
    """distributed's default HTTP port 8787 taken (as by another cluster): no warning."""
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 8787))
        blocker.listen()
    except OSError:
        pass  # already taken by someone else: the situation under test anyway
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with dask_client(workers=1) as client:
                assert client.submit(sum, [1, 2]).result() == 3
        assert not [w for w in caught if "already in use" in str(w.message)]
    finally:
        blocker.close()
