"""Score injection: classifier scores and embeddings as coffea columns; model export.

:class:`Variation` and :func:`standard_variations` (systematic variations of the
scorer's inputs) are defined with the token path they vary
(:mod:`jetfm_coffea.tokens.variations`, below this package in the layers) and exported
here, beside the scorer that takes them.
"""

from jetfm_coffea.errors import ModelFileError
from jetfm_coffea.score.artifact import (
    ModelInfo,
    load_model,
    read_model_info,
    weights_to_carry,
)
from jetfm_coffea.score.errors import ScoreInputError
from jetfm_coffea.score.scorer import (
    JetFMScorer,
    count_nonfinite,
    scoped_torch_threads,
    score_fields,
)
from jetfm_coffea.tokens.variations import Variation, standard_variations

__all__ = [
    "JetFMScorer",
    "ModelFileError",
    "ModelInfo",
    "ScoreInputError",
    "Variation",
    "count_nonfinite",
    "load_model",
    "read_model_info",
    "scoped_torch_threads",
    "score_fields",
    "standard_variations",
    "weights_to_carry",
]
