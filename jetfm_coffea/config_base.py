"""Common ground of every declarative config: canonical JSON, hash, YAML, loading.

Configs are saved next to what they produced with their hash (weaver-style), so a
resolved config identifies a token set, an augmentation pipeline or a model exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from jetfm_coffea.errors import ConfigError

__all__ = ["HashedConfig", "apply_overrides", "load_config"]

C = TypeVar("C", bound="HashedConfig")


class HashedConfig(BaseModel):
    """A pydantic config with a stable canonical JSON form and its sha256 hash."""

    def canonical_json(self) -> str:
        """Stable JSON of every field (defaults included), for hashing and provenance."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def hash(self) -> str:
        """sha256 of the canonical JSON (first 16 hex digits)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        """The config as YAML."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(
    cls: type[C],
    source: str | Path | dict | C | None,
    *,
    what: str,
    section: str | None = None,
    hint: str | Callable[[], str] = "",
) -> C:
    """Build ``cls`` from a YAML/JSON path, a dict, an instance or None (defaults).

    A file may hold the config at top level or under ``section``. Every problem is
    raised as :class:`ConfigError` naming ``what`` (followed by ``hint`` if given; a
    callable hint is only built when there is an error).
    """
    if source is None:
        return cls()
    if isinstance(source, cls):
        return source
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read {what} {path}: {err}") from err
        if section and isinstance(data, dict) and section in data:
            data = data[section]
    else:
        data = source
    try:
        return cls.model_validate(data or {})
    except ValidationError as err:
        text = hint() if callable(hint) else hint
        raise ConfigError(f"invalid {what}: {err}{text}") from err


def apply_overrides(data: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (``{"train.steps": 10}``) in a nested config dict; None is skipped."""
    for dotted, value in updates.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return data
