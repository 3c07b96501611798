"""Event-id and object field names are declared once (jetfm_coffea.tokens.fields)."""

from __future__ import annotations

import re
from pathlib import Path

import jetfm_coffea
from jetfm_coffea.shards import format as shard_format
from jetfm_coffea.tokens import EventObjects
from jetfm_coffea.tokens.fields import ID_FIELDS, OBJECT_FIELDS

ROOT = Path(jetfm_coffea.__file__).resolve().parents[1]
# A tuple literal spelling the ids, or the start of the object fields, again.
SPELLED_AGAIN = re.compile(
    r"""["']run["'],\s*["']luminosityBlock["'],\s*["']event["']"""
    r"""|["']pt["'],\s*["']eta["'],\s*["']phi["'],\s*["']mass["'],\s*["']charge["']"""
)
OWNER = Path("jetfm_coffea/tokens/fields.py")
#: The legacy (1.x) shard format is frozen: its field list must not follow the owner.
FROZEN = {Path("jetfm_coffea/shards/migrate.py")}


def test_no_module_spells_the_names_again():
    offenders = []
    for path in sorted(
        [*ROOT.joinpath("jetfm_coffea").rglob("*.py"), *ROOT.glob("processors/*.py")]
    ):
        rel = path.relative_to(ROOT)
        if rel == OWNER or rel in FROZEN:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SPELLED_AGAIN.search(line):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "import ID_FIELDS / OBJECT_FIELDS instead:\n" + "\n".join(offenders)


def test_the_contracts_use_the_owner():
    assert shard_format.ID_ARRAYS == ID_FIELDS
    assert tuple(shard_format.OBJECT_COLUMNS) == OBJECT_FIELDS
    assert shard_format.OBJECT_COLUMNS["type_id"] == "|u1"
    fields = [f for f in EventObjects.__dataclass_fields__ if f in OBJECT_FIELDS]
    assert tuple(fields) == OBJECT_FIELDS  # EventObjects declares them in this order
