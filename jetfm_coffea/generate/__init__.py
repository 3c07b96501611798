"""Built-in event generator: Pythia 8 + FastJet + a parametric CMS-like detector -> NanoAOD.

The heavy dependencies (``pythia8mc``, ``fastjet``) are imported only when events are
generated.  Main entry point: :func:`generate`; see :mod:`.processes` for the process
table and :mod:`.detector` for the detector numbers.
"""

from __future__ import annotations

from jetfm_coffea.generate.processes import (
    PROCESSES,
    SQRTS_CHOICES,
    ProcessSpec,
    register_process,
)
from jetfm_coffea.generate.run import GenerationResult, dataset_name, generate

__all__ = [
    "PROCESSES",
    "SQRTS_CHOICES",
    "GenerationResult",
    "ProcessSpec",
    "dataset_name",
    "generate",
    "register_process",
]
