"""Errors of score injection and model export (``ModelFileError`` lives in
:mod:`jetfm_coffea.errors`, beside the run directory's other errors)."""

from __future__ import annotations

from jetfm_coffea.errors import JetFMError, MissingCollectionError, ModelFileError

__all__ = ["ModelFileError", "ScoreInputError", "ScoringServerError"]


class ScoreInputError(MissingCollectionError):
    """The events lack a collection the model's token configuration needs.

    The message names the model, the collection (and branches) and the file.
    """

    def __init__(self, model: str, err: MissingCollectionError):
        super().__init__(err.collection, err.path, err.missing)
        self.model = model
        self.args = (f"model {model} needs {err.args[0]}",)


class ScoringServerError(JetFMError, ConnectionError):
    """A scoring server (Triton) is unreachable, fails, or serves another model.

    The message names the server URL and model (``triton+grpc://host:port/model``).
    """

    def __init__(self, server: str, reason: str):
        self.server = str(server)
        self.reason = reason
        super().__init__(f"{self.server}: {reason}")
