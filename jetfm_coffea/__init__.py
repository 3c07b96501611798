"""jetfm-coffea: foundation models for collider physics inside coffea.

NanoAOD is read with coffea, each event becomes a set of object tokens, physics
augmentations produce views, Zarr shards feed self-supervised pretraining, and the
trained model comes back into coffea analyses as columns.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# OpenMP threads waiting for work spin briefly, then sleep (GNU libgomp, which the Linux
# torch wheels use: GOMP_SPINCOUNT rounds of spinning, read when OMP_WAIT_POLICY is
# unset). libgomp's own default spins 300,000 rounds: fastest on an idle machine, but on
# a CPU shared with other processes (CI, login nodes, parallel workers) the spinning
# threads steal the cores that the threads still computing need; sleeping at once
# (PASSIVE) costs every hand-off a wake-up. Measured on the 2-core machine with
# benchmarks/bench_threads.py, a 2-thread tiny training step (results/threads_policy.json):
# idle 52 ms default / 64 ms with 20,000 rounds / 89 ms PASSIVE; beside two busy
# processes 258 / 142 / 153 ms. Read when torch loads the runtime, so it applies when
# jetfm_coffea is imported before torch (the ``jetfm`` command, workers); a wait policy
# or spin count already set is kept.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "20000")

try:
    __version__ = version("jetfm-coffea")
except PackageNotFoundError:  # source checkout that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
