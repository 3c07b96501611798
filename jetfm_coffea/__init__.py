"""jetfm-coffea: foundation models for collider physics inside coffea.

NanoAOD is read with coffea, each event becomes a set of object tokens, physics
augmentations produce views, Zarr shards feed self-supervised pretraining, and the
trained model comes back into coffea analyses as columns.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# OpenMP threads waiting for work sleep instead of spinning. On a CPU shared with other
# processes (CI, login nodes, laptops, parallel workers) spinning threads steal the cores
# that the threads still computing need: a 2-thread training step measured 5-10x slower
# than with sleeping threads on a loaded 2-core machine (issue 27). Read by the OpenMP
# runtime when torch loads it, so it only applies when jetfm_coffea is imported before
# torch (the ``jetfm`` command, workers); a value already set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("jetfm-coffea")
except PackageNotFoundError:  # source checkout that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
