"""One event selection per dataset of a store: claimed before the first shard, checked at each.

A store must never mix event selections (golden JSON, its opt-out, blinding) within a
dataset. The selection of a dataset is *claimed* in the store::

    STORE/selections/<dataset>.json   {"format": "jetfm-store-selection", "dataset": ...,
                                       "signature": {...}}

:func:`claim_selection` creates the claim exclusively (a complete temporary file
hard-linked to its final name, so exactly one of two concurrent builds creates it and
the other reads it whole) or, if it exists, compares it: a build with another selection
is refused (:class:`~jetfm_coffea.errors.ConfigError` naming the store, the dataset and
what differs) before it writes a shard. Shard writers claim again just before each
shard commit, so a build whose claim was replaced meanwhile (``--overwrite`` with
another selection) stops instead of mixing. Builds with the same selection share the
claim and may run at once.

The ``signature`` is opaque here (:func:`jetfm_coffea.selection.chunk.selection_signature`
makes it). Readers never need the claims: stores written before they existed (no
``selections/`` folder) are read as they are and get their claims on their next build.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from jetfm_coffea.atomic import atomic_write_json, temporary_sibling
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.shards.format import SELECTIONS_DIR, safe_name

__all__ = ["CLAIM_FORMAT", "claim_path", "claim_selection", "read_claim"]

CLAIM_FORMAT = "jetfm-store-selection"


def claim_path(store: str | Path, dataset: str) -> Path:
    """Where the selection of ``dataset`` is claimed in ``store``."""
    return Path(store) / SELECTIONS_DIR / f"{safe_name(dataset)}.json"


def read_claim(store: str | Path, dataset: str) -> dict[str, Any] | None:
    """The claimed selection signature of ``dataset``, or None if none was claimed."""
    path = claim_path(store, dataset)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise ConfigError(f"{path}: unreadable selection claim ({err})") from err
    return document["signature"]


def _document(dataset: str, signature: dict[str, Any]) -> dict[str, Any]:
    return {"format": CLAIM_FORMAT, "dataset": dataset, "signature": signature}


def claim_selection(
    store: str | Path,
    dataset: str,
    signature: dict[str, Any],
    *,
    replace: bool = False,
    shard: str | None = None,
) -> None:
    """Claim ``signature`` as the selection of ``dataset`` in ``store``, or check the claim.

    ``replace`` (a build with ``--overwrite``) replaces another claim; otherwise a
    claim that differs raises :class:`ConfigError` (``shard``: the shard about to be
    committed, named in the message).
    """
    path = claim_path(store, dataset)
    document = _document(dataset, signature)
    if replace:
        path.parent.mkdir(exist_ok=True)
        atomic_write_json(path, document, indent=1, sort_keys=True)
        return
    found = read_claim(store, dataset)
    if found is None:
        path.parent.mkdir(exist_ok=True)
        tmp = temporary_sibling(path)
        try:
            tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
            with contextlib.suppress(FileExistsError):  # another build claimed it first
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        found = read_claim(store, dataset)
    if found != signature:
        changed = ", ".join(
            f"{k} {found.get(k)!r} (store) vs {signature.get(k)!r} (this build)"
            for k in sorted(set(found) | set(signature))
            if found.get(k) != signature.get(k)
        )
        where = f" (refusing to commit shard {shard})" if shard else ""
        raise ConfigError(
            f"store {store}: dataset {dataset!r} is built with another event selection"
            f"{where}: {changed}; a store holds one selection per dataset: build into a "
            "new --out store, or rebuild this one with --overwrite"
        )
