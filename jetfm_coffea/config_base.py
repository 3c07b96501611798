"""Common ground of every declarative config: canonical JSON, hash, YAML, loading.

The one config loader: every YAML config file of the package is read by
:func:`read_config_file` and validated by :func:`validate_config` (or both at once,
:func:`load_config`), so every bad file raises the same :class:`ConfigError`.

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

__all__ = [
    "HashedConfig",
    "apply_overrides",
    "config_data",
    "load_config",
    "read_config_file",
    "validate_config",
]

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


def read_config_file(path: str | Path, *, what: str) -> Any:
    """The document of a YAML (or JSON) config file, as :func:`yaml.safe_load` reads it.

    An unreadable file or bad YAML raises :class:`ConfigError` naming ``what`` and the file.
    """
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read {what} {path}: {err}") from err


def config_data(
    source: str | Path | dict | HashedConfig | None, *, what: str, section: str | None = None
) -> dict[str, Any]:
    """A fresh, mutable mapping of a config given as a path, a dict, a config or None.

    A file may hold the config at top level or under ``section``; an empty file is ``{}``.
    Anything but a mapping raises :class:`ConfigError` naming ``what``.

    >>> config_data(None, what="task config")
    {}
    >>> config_data([1], what="task config")
    Traceback (most recent call last):
    ...
    jetfm_coffea.errors.ConfigError: task config: expected a mapping, got list
    """
    if isinstance(source, BaseModel):
        return source.model_dump(mode="json")
    where = what
    if isinstance(source, str | Path):
        where = f"{what} {source}"
        source = read_config_file(source, what=what)
        if section and isinstance(source, dict) and section in source:
            source = source[section]
    if source is None:
        return {}
    if not isinstance(source, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(source).__name__}")
    return dict(source)


def validate_config(cls: type[C], data: Any, *, what: str, hint: str | Callable[[], str] = "") -> C:
    """``cls.model_validate(data)``; invalid fields raise :class:`ConfigError` naming ``what``.

    ``hint`` follows the message (a callable hint is only built when there is an error).
    """
    try:
        return cls.model_validate(data or {})
    except ValidationError as err:
        text = hint() if callable(hint) else hint
        raise ConfigError(f"invalid {what}: {err}{text}") from err


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
        data = read_config_file(source, what=what)
        if section and isinstance(data, dict) and section in data:
            data = data[section]
    else:
        data = source
    return validate_config(cls, data, what=what, hint=hint)


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
