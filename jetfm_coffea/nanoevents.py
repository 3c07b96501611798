"""coffea's NanoAOD schema as jetfm-coffea reads NanoAOD: quiet about what is harmless here.

Every real CMS file this project ships makes coffea's ``NanoAODSchema`` warn, once per
file and worker, about conditions that do not touch anything jetfm-coffea reads:

* ``Missing cross-reference index for Jet_muonIdx1 => Muon`` (and ``... target ...``):
  slim and older NanoAOD files lack some index branches. The token builder never follows
  a cross-reference, so coffea's own switch ``warn_missing_crossrefs`` is turned off.
* ``Branch Photon_charge already exists but its values will be replaced with 0.0`` (and
  ``Photon_mass``): coffea defines photons as neutral and massless whatever the file
  stores; the tokens take coffea's values, as intended.

Exactly these are silenced, by message and by coffea's module, and only while
:class:`JetFMNanoAODSchema` builds its form; every other warning (missing event ids,
missing optional collections, non-finite inputs) still reaches the user. Every coffea
entry point of the package (``execution``, the shard build, the scorer, the training
data reader) uses this schema, so the same holds on dask workers and in every execution
mode. Code that passes coffea's ``NanoAODSchema`` itself sees coffea's warnings as usual.
"""

from __future__ import annotations

import warnings
from typing import Any

from coffea.nanoevents import NanoAODSchema

__all__ = ["HARMLESS_WARNINGS", "JetFMNanoAODSchema"]

#: ``(message regex, category, module regex)`` of the warnings silenced while building a form.
HARMLESS_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (
        r"Branch Photon_(charge|mass) already exists but its values will be replaced with 0\.0",
        RuntimeWarning,
        r"coffea\.nanoevents\.schemas\.nanoaod",
    ),
)


class JetFMNanoAODSchema(NanoAODSchema):
    """``NanoAODSchema`` without the warnings listed in the module docstring."""

    warn_missing_crossrefs = False

    def _build_collections(self, field_names: Any, input_contents: Any) -> Any:
        with warnings.catch_warnings():
            for message, category, module in HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message, category, module)
            return super()._build_collections(field_names, input_contents)
