"""Declarative token configuration: which NanoAOD collections become tokens and how.

The configuration is a pydantic model, loadable from YAML, whose JSON schema is
committed to ``schemas/`` (``jetfm schema`` regenerates it; a test checks it matches).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jetfm_coffea.config_base import HashedConfig, load_config
from jetfm_coffea.errors import TokenConfigMismatchError

__all__ = [
    "FEATURES",
    "CollectionSpec",
    "Cut",
    "Feature",
    "TokenConfig",
    "check_token_config",
    "load_token_config",
    "token_config_json_schema",
]


class Feature(StrEnum):
    """Per-token features; every one is computed from the token's (pt, eta, phi, mass, ...)."""

    log_pt = "log_pt"  # ln(pT / GeV)
    eta = "eta"
    sin_phi = "sin_phi"
    cos_phi = "cos_phi"
    log_e = "log_e"  # ln(E / GeV)
    log_m = "log_m"  # ln(1 + |m| / GeV): finite for massless (and tiny negative) masses
    charge = "charge"
    btag = "btag"  # b-tag score (jets), 0 otherwise
    type_id = "type_id"  # object-type id as a float


FEATURES: tuple[str, ...] = tuple(f.value for f in Feature)


class Cut(BaseModel):
    """An object-level ID requirement on a branch of the collection, e.g. ``tightId == 1``."""

    model_config = ConfigDict(extra="forbid")

    branch: str = Field(description="field of the collection, e.g. 'tightId' for Muon_tightId")
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">="
    value: float = 1.0


class CollectionSpec(BaseModel):
    """How one NanoAOD collection becomes tokens."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="NanoAOD collection name (Jet, Muon, MET, ...)")
    type_id: int = Field(ge=0, lt=64, description="object-type id written into every token")
    kind: Literal["objects", "met"] = Field(
        "objects", description="'objects': a jagged collection; 'met': one (pt, phi) per event"
    )
    max_count: int = Field(ge=1, le=512, description="keep at most this many objects")
    min_pt: float = Field(0.0, ge=0.0, description="pT threshold in GeV")
    max_abs_eta: float | None = Field(None, gt=0.0, description="|eta| acceptance; None: no cut")
    cuts: list[Cut] = Field(default_factory=list, description="ID requirements")
    order_by: str = Field("pt", description="field to sort by, descending")
    btag_branches: list[str] = Field(
        default_factory=list,
        description="b-tag score fields, first present is used (jets); empty: btag feature is 0",
    )
    has_charge: bool = Field(False, description="read the 'charge' field")
    optional: bool = Field(False, description="missing in a file: no tokens and one warning")

    @model_validator(mode="after")
    def _met_is_single(self) -> CollectionSpec:
        if self.kind == "met" and self.max_count != 1:
            raise ValueError(f"{self.name}: a 'met' collection has exactly one token (max_count=1)")
        return self


def _default_collections() -> list[CollectionSpec]:
    return [
        CollectionSpec(
            name="Jet",
            type_id=1,
            max_count=10,
            min_pt=20.0,
            max_abs_eta=4.7,
            btag_branches=["btagDeepFlavB", "btagDeepB", "btagCSVV2", "btag"],
        ),
        CollectionSpec(
            name="Muon",
            type_id=2,
            max_count=4,
            min_pt=5.0,
            max_abs_eta=2.4,
            cuts=[Cut(branch="tightId", op="==", value=1)],
            has_charge=True,
        ),
        CollectionSpec(
            name="Electron", type_id=3, max_count=4, min_pt=7.0, max_abs_eta=2.5, has_charge=True
        ),
        CollectionSpec(name="Photon", type_id=4, max_count=4, min_pt=10.0, max_abs_eta=2.5),
        CollectionSpec(name="MET", type_id=5, kind="met", max_count=1),
    ]


class TokenConfig(HashedConfig):
    """The event-token representation: collections, token budget and features."""

    model_config = ConfigDict(extra="forbid")

    version: Literal["1.0.0"] = "1.0.0"
    collections: list[CollectionSpec] = Field(default_factory=_default_collections)
    max_tokens: int | None = Field(
        None, ge=1, le=4096, description="tokens per event; default: sum of max_count"
    )
    order: Literal["collection", "pt"] = Field(
        "collection", description="token order: collection blocks in config order, or by pT"
    )
    features: list[Feature] = Field(default_factory=lambda: list(Feature))

    @field_validator("collections")
    @classmethod
    def _unique(cls, value: list[CollectionSpec]) -> list[CollectionSpec]:
        names = [c.name for c in value]
        ids = [c.type_id for c in value]
        if not value:
            raise ValueError("at least one collection is required")
        if len(set(names)) != len(names):
            raise ValueError(f"collection names must be unique: {names}")
        if len(set(ids)) != len(ids):
            raise ValueError(f"type_id values must be unique: {ids}")
        return value

    @property
    def n_tokens(self) -> int:
        """Padded number of tokens per event."""
        return self.max_tokens or sum(c.max_count for c in self.collections)

    @property
    def feature_names(self) -> list[str]:
        return [f.value for f in self.features]

    def collection(self, name: str) -> CollectionSpec:
        for c in self.collections:
            if c.name == name:
                return c
        raise KeyError(name)

    def by_type_id(self) -> dict[int, CollectionSpec]:
        return {c.type_id: c for c in self.collections}


def load_token_config(source: str | Path | dict | TokenConfig | None = None) -> TokenConfig:
    """Build a TokenConfig from a YAML/JSON path (top level or under ``tokens:``), a dict,
    an instance, or None (defaults). Raises ConfigError describing every problem."""
    return load_config(TokenConfig, source, what="token config", section="tokens")


TOKEN_SCHEMA_VERSION = "1.0.0"


def token_config_json_schema() -> dict:
    """JSON schema of :class:`TokenConfig` as committed in ``schemas/1.0.0/token_config.json``."""
    schema = TokenConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://jetfm-coffea/schemas/{TOKEN_SCHEMA_VERSION}/token_config.json"
    return schema


def check_token_config(expected: TokenConfig, found: TokenConfig, where: str = "data") -> None:
    """Raise :class:`TokenConfigMismatchError` naming the differences, if any."""
    if expected.hash() == found.hash():
        return
    a, b = expected.model_dump(mode="json"), found.model_dump(mode="json")
    diffs = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    detail = []
    if "features" in diffs:
        detail.append(f"features {a['features']} (model) vs {b['features']} ({where})")
    if "collections" in diffs:
        na = [(c["name"], c["type_id"]) for c in a["collections"]]
        nb = [(c["name"], c["type_id"]) for c in b["collections"]]
        detail.append(f"collections {na} (model) vs {nb} ({where})" if na != nb else "cuts")
    raise TokenConfigMismatchError(
        f"token config of the {where} (hash {found.hash()}) differs from the model's "
        f"(hash {expected.hash()}) in {diffs}" + (": " + "; ".join(detail) if detail else "")
    )
