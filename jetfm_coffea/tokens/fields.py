"""Names of the event ids and of the object fields, declared once for the whole package.

Every array of events (NanoAOD branches, :class:`~jetfm_coffea.tokens.EventObjects`,
shard arrays, training batches, score columns) uses these spellings; modules import them
instead of writing the strings again.

>>> ID_FIELDS
('run', 'luminosityBlock', 'event')
>>> OBJECT_FIELDS[:4]
('pt', 'eta', 'phi', 'mass')
"""

from __future__ import annotations

__all__ = ["ID_FIELDS", "OBJECT_FIELDS"]

#: The event id: CMS run, luminosity section and event number (NanoAOD branch names).
ID_FIELDS: tuple[str, str, str] = ("run", "luminosityBlock", "event")
#: The fields of a physics object, in the order of ``EventObjects`` and of the shard
#: format's object columns: kinematics, charge, b-tag score and the object type's index.
OBJECT_FIELDS: tuple[str, ...] = ("pt", "eta", "phi", "mass", "charge", "btag", "type_id")
