"""Event selection applied before anything is learned: certified luminosity, blinding.

- :mod:`~jetfm_coffea.selection.lumi`: golden-JSON masks for collision data in every
  processor and execution mode (``--lumi-mask`` / ``--no-lumi-mask``).
- :mod:`~jetfm_coffea.selection.blinding`: declarative signal regions on the token
  objects that never reach a pretraining shard.
- :mod:`~jetfm_coffea.selection.chunk`: both applied to one shard, with provenance.
"""

from jetfm_coffea.selection.blinding import BlindingConfig, BlindingError, load_blinding
from jetfm_coffea.selection.lumi import (
    CERTIFIED_LUMI,
    LumiMaskWarning,
    LumiPolicy,
    MissingLumiMaskError,
    certify,
    resolve_lumi_masks,
)

__all__ = [
    "CERTIFIED_LUMI",
    "BlindingConfig",
    "BlindingError",
    "LumiMaskWarning",
    "LumiPolicy",
    "MissingLumiMaskError",
    "certify",
    "load_blinding",
    "resolve_lumi_masks",
]
