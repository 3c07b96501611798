"""Score injection: classifier scores and embeddings as coffea columns; model export."""

from jetfm_coffea.score.artifact import ModelInfo, file_sha256, load_model, read_model_info
from jetfm_coffea.score.errors import ModelFileError, ScoreInputError
from jetfm_coffea.score.scorer import JetFMScorer, count_nonfinite, resolve_device, score_fields

__all__ = [
    "JetFMScorer",
    "ModelFileError",
    "ModelInfo",
    "ScoreInputError",
    "count_nonfinite",
    "file_sha256",
    "load_model",
    "read_model_info",
    "resolve_device",
    "score_fields",
]
