"""jetfm-coffea: foundation models for collider physics inside coffea.

NanoAOD is read with coffea, each event becomes a set of object tokens, physics
augmentations produce views, Zarr shards feed self-supervised pretraining, and the
trained model comes back into coffea analyses as columns.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jetfm-coffea")
except PackageNotFoundError:  # source checkout that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
