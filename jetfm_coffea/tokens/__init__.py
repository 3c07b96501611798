"""Event tokens: the declarative representation of an event as a set of physics objects."""

from jetfm_coffea.tokens.build import (
    EventObjects,
    EventTokens,
    RaggedObjects,
    build_tokens,
    check_collections,
    select_objects,
    select_ragged,
    token_record,
    tokens_from_objects,
)
from jetfm_coffea.tokens.config import (
    FEATURES,
    CollectionSpec,
    Cut,
    TokenConfig,
    check_token_config,
    load_token_config,
)
from jetfm_coffea.tokens.features import compute_features, energy
from jetfm_coffea.tokens.fields import ID_FIELDS, OBJECT_FIELDS
from jetfm_coffea.tokens.variations import VARIED, Variation, load_variations, standard_variations

__all__ = [
    "FEATURES",
    "ID_FIELDS",
    "OBJECT_FIELDS",
    "VARIED",
    "CollectionSpec",
    "Cut",
    "EventObjects",
    "EventTokens",
    "RaggedObjects",
    "TokenConfig",
    "Variation",
    "build_tokens",
    "check_collections",
    "check_token_config",
    "compute_features",
    "energy",
    "load_token_config",
    "load_variations",
    "select_objects",
    "select_ragged",
    "standard_variations",
    "token_record",
    "tokens_from_objects",
]
