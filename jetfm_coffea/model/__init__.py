"""Event foundation model: transformer encoder over object tokens, and its heads."""

from jetfm_coffea.model.config import PAIR_FEATURES, SIZES, ModelConfig, model_config_for
from jetfm_coffea.model.encoder import EncoderOutput, EventEncoder, pair_features
from jetfm_coffea.model.heads import ClassificationHead, MaskedObjectDecoder, ProjectionHead
from jetfm_coffea.model.model import (
    HEADS,
    EventModel,
    Head,
    ScoredOutputs,
    build_model,
    count_parameters,
    register_head,
    score_head,
)
from jetfm_coffea.model.packing import (
    event_lengths,
    length_batches,
    length_groups,
    pack_tokens,
    packed_width,
)

__all__ = [
    "HEADS",
    "PAIR_FEATURES",
    "SIZES",
    "ClassificationHead",
    "EncoderOutput",
    "EventEncoder",
    "EventModel",
    "Head",
    "MaskedObjectDecoder",
    "ModelConfig",
    "ProjectionHead",
    "ScoredOutputs",
    "build_model",
    "count_parameters",
    "event_lengths",
    "length_batches",
    "length_groups",
    "model_config_for",
    "pack_tokens",
    "packed_width",
    "pair_features",
    "register_head",
    "score_head",
]
